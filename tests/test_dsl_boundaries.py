"""Every numeric limit and comparison sema makes, at its boundary: the value on the limit is
accepted and the first value past it is refused with its code. A mutation of a bound (`<=` to
`<`, a limit off by one) turns one of these red; see benchmarks/README.md (mutation score)."""

from __future__ import annotations

import pytest

from schedc.dsl.parser import parse_policy
from schedc.dsl.sema import analyze


def error_codes(body: str) -> list[str]:
    """The error codes of a policy made of one class `all`, its queue and `body`."""
    text = f'scheduler t "boundaries" {{\n{body}\n}}\n'
    policy, diags = parse_policy(text, "t.sched")
    assert policy is not None, diags
    _typed, found = analyze(policy, text)
    return [d.code for d in [*diags, *found] if d.severity == "error"]


ONE_QUEUE = "  class all otherwise\n  queue q for all fifo"
TWO_QUEUES = (
    '  class a when task.comm == "a"\n  class b otherwise\n'
    "  queue qa for a fifo\n  queue qb for b fifo"
)


def queue_with_lag(lag: str) -> str:
    return f"  class all otherwise\n  queue q for all vtime lag {lag}"


# (what, policy body, expected error codes)
CASES = [
    # time slices: 10us..1s (E302)
    ("slice at its minimum", ONE_QUEUE + "\n  slice all = 10us", []),
    ("slice below its minimum", ONE_QUEUE + "\n  slice all = 9999ns", ["E302"]),
    ("slice at its maximum", ONE_QUEUE + "\n  slice all = 1s", []),
    ("slice above its maximum", ONE_QUEUE + "\n  slice all = 1000000001ns", ["E302"]),
    # lag: 1ns..10s (E303)
    ("lag at its minimum", queue_with_lag("1ns"), []),
    ("lag below its minimum", queue_with_lag("0ns"), ["E303"]),
    ("lag at its maximum", queue_with_lag("10s"), []),
    ("lag above its maximum", queue_with_lag("10000000001ns"), ["E303"]),
    # aging bound: 1ms..10s (E303)
    ("aging at its minimum", TWO_QUEUES + "\n  dispatch qa then qb, aging 1ms", []),
    ("aging below its minimum", TWO_QUEUES + "\n  dispatch qa then qb, aging 999999ns", ["E303"]),
    ("aging at its maximum", TWO_QUEUES + "\n  dispatch qa then qb, aging 10s", []),
    ("aging above its maximum", TWO_QUEUES + "\n  dispatch qa then qb, aging 10001ms", ["E303"]),
    # max_wait: 1ms..10s (E311), with a param too
    ("max_wait at its minimum", queue_with_lag("20ms max_wait 1ms"), []),
    ("max_wait below its minimum", queue_with_lag("20ms max_wait 999999ns"), ["E311"]),
    ("max_wait at its maximum", queue_with_lag("20ms max_wait 10s"), []),
    ("max_wait above its maximum", queue_with_lag("20ms max_wait 10001ms"), ["E311"]),
    ("max_wait from a param", "  param w = 200ms\n" + queue_with_lag("20ms max_wait w * 2"), []),
    # watchdog: 100ms..30s (E301)
    ("watchdog at its minimum", ONE_QUEUE + "\n  watchdog 100ms", []),
    ("watchdog below its minimum", ONE_QUEUE + "\n  watchdog 99999999ns", ["E301"]),
    ("watchdog at its maximum", ONE_QUEUE + "\n  watchdog 30s", []),
    ("watchdog above its maximum", ONE_QUEUE + "\n  watchdog 30001ms", ["E301"]),
    # a param's default within its own range (E122), both ends inclusive
    ("param default on the low end", "  param s = 1ms in 1ms..5ms\n" + ONE_QUEUE + "\n  slice all = s", []),
    ("param default on the high end", "  param s = 5ms in 1ms..5ms\n" + ONE_QUEUE + "\n  slice all = s", []),
    ("param default below", "  param s = 999us in 1ms..5ms\n" + ONE_QUEUE + "\n  slice all = s", ["E122"]),
    ("param default above", "  param s = 5001us in 1ms..5ms\n" + ONE_QUEUE + "\n  slice all = s", ["E122"]),
    ("int param on the ends", "  param n: int = 3 in 3..3\n" + ONE_QUEUE + "\n  slice all = 1ms * n", []),
    # CPU ids: at most 1023 (E147); a range may be a single CPU, not backwards (E146)
    ("highest CPU id", "  class all otherwise on cpus 1023\n  queue q for all fifo", []),
    ("CPU id past the limit", "  class all otherwise on cpus 1024\n  queue q for all fifo", ["E147"]),
    ("one-CPU range", "  class all otherwise on cpus 3-3\n  queue q for all fifo", []),
    ("backwards range", "  class all otherwise on cpus 4-3\n  queue q for all fifo", ["E146"]),
    # weights: 1..100 each (E164)
    ("weights on the ends", TWO_QUEUES + "\n  dispatch weighted qa: 1, qb: 100", []),
    ("weight zero", TWO_QUEUES + "\n  dispatch weighted qa: 0, qb: 100", ["E164"]),
    ("weight past the limit", TWO_QUEUES + "\n  dispatch weighted qa: 1, qb: 101", ["E164"]),
]


@pytest.mark.parametrize(("what", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_limit_at_its_boundary(what: str, body: str, expected: list[str]):
    assert error_codes(body) == expected, what


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_conditions_cannot_be_ordered(op: str):
    body = f"  class k when task.kthread {op} task.pinned\n  class all otherwise\n"
    body += "  queue q for k, all fifo"
    assert error_codes(body) == ["E105"]


@pytest.mark.parametrize("op", ["==", "!="])
def test_conditions_can_be_compared_for_equality(op: str):
    body = f"  class k when task.kthread {op} task.pinned\n  class all otherwise\n"
    body += "  queue q for k, all fifo"
    assert error_codes(body) == []
