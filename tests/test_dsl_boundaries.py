"""Every numeric limit and comparison sema makes, at its boundary: the value on the limit is
accepted and the first value past it is refused with its code. A mutation of a bound (`<=` to
`<`, a limit off by one) turns one of these red; see benchmarks/README.md (mutation score)."""

from __future__ import annotations

import pytest

from schedc.dsl.language import (
    MAX_CLASSES,
    MAX_COUNTERS,
    MAX_PARAMS,
    MAX_QUEUES,
    MAX_TAGS,
    MAX_WEIGHT,
    MAX_WEIGHT_SUM,
)
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


# ---- how many of each a policy may declare: the limit itself is allowed ----------------------


def classes(n: int) -> str:
    """n classes (the last one `otherwise`), all in one queue."""
    names = [f"c{i}" for i in range(n - 1)]
    lines = [f"  class {c} when task.pid == {i}" for i, c in enumerate(names)]
    return "\n".join([*lines, "  class z otherwise", f"  queue q for {', '.join([*names, 'z'])} fifo"])


def queues(n: int) -> str:
    """n classes and n queues, one each, in strict order."""
    lines = [f"  class c{i} when task.pid == {i}" for i in range(n - 1)] + ["  class z otherwise"]
    names = [f"c{i}" for i in range(n - 1)] + ["z"]
    lines += [f"  queue q{c} for {c} fifo" for c in names]
    lines.append("  dispatch " + " then ".join(f"q{c}" for c in names) + ", aging 100ms")
    return "\n".join(lines)


def params(n: int) -> str:
    lines = [f"  param p{i} = {i + 1}ms" for i in range(n)]
    return "\n".join([*lines, ONE_QUEUE, "  slice all = p0"])


def counters(n: int) -> str:
    lines = [f"  counter n{i} counts enqueue" for i in range(n)]
    return "\n".join([ONE_QUEUE, *lines])


def tags(n: int) -> str:
    return "  tags " + ", ".join(f"t{i}" for i in range(n)) + "\n" + ONE_QUEUE


@pytest.mark.parametrize(
    ("make", "limit", "code"),
    [
        (classes, MAX_CLASSES, "E305"),
        (queues, MAX_QUEUES, "E304"),
        (params, MAX_PARAMS, "E306"),
        (counters, MAX_COUNTERS, "E307"),
        (tags, MAX_TAGS, "E310"),
    ],
    ids=["classes", "queues", "params", "counters", "tags"],
)
def test_a_policy_may_declare_up_to_the_limit_and_not_one_more(make, limit: int, code: str):
    assert error_codes(make(limit)) == []
    assert error_codes(make(limit + 1)) == [code]


def test_the_weights_may_add_up_to_the_limit():
    def weighted(weights: list[int]) -> str:
        n = len(weights)
        lines = [f"  class c{i} when task.pid == {i}" for i in range(n - 1)]
        lines.append("  class z otherwise")
        names = [f"c{i}" for i in range(n - 1)] + ["z"]
        lines += [f"  queue q{c} for {c} fifo" for c in names]
        pairs = ", ".join(f"q{c}: {w}" for c, w in zip(names, weights, strict=True))
        return "\n".join([*lines, f"  dispatch weighted {pairs}"])

    full = [MAX_WEIGHT] * (MAX_WEIGHT_SUM // MAX_WEIGHT)  # ten queues at 100: exactly 1000
    assert error_codes(weighted(full)) == []
    assert error_codes(weighted([*full, 1])) == ["E165"]


def test_one_queue_needs_no_dispatch_order_and_two_do():
    assert error_codes(ONE_QUEUE) == []
    assert error_codes(TWO_QUEUES) == ["E160"]


# ---- a mistake made twice is reported twice: no check stops at its first finding -----------

Q = "  class all otherwise\n  queue q for all fifo\n"
TWO_CLASSES = "  class a when task.pid == 1\n  class all otherwise\n"
TWICE = [
    ("param defined again", "  param p = 1ms\n  param p = 2ms\n  param p = 3ms\n" + Q
     + "  slice all = p", [("E130", 3, 9), ("E130", 4, 9)]),
    ("built-in names as params", "  param min = 1ms\n  param max = 2ms\n" + Q,
     [("E130", 2, 9), ("E130", 3, 9)]),
    ("class defined again", "  class a when task.pid == 1\n  class a when task.pid == 2\n"
     "  class a when task.pid == 3\n  class all otherwise\n  queue q for a, all fifo",
     [("E130", 3, 9), ("E130", 4, 9)]),
    ("backwards CPU ranges", "  class all otherwise on cpus 4-3, 6-5\n  queue q for all fifo",
     [("E146", 2, 31), ("E146", 2, 36)]),
    ("CPUs past the limit", "  class all otherwise on cpus 1024, 1025\n  queue q for all fifo",
     [("E147", 2, 31), ("E147", 2, 37)]),
    ("queue defined again", Q + "  queue q for all fifo\n  queue q for all fifo",
     [("E130", 4, 9), ("E130", 5, 9)]),
    ("unknown classes in a queue", "  class all otherwise\n  queue q for x, all, y fifo",
     [("E150", 3, 15), ("E150", 3, 23)]),
    ("classes already queued", TWO_CLASSES + "  queue q for a, all fifo\n  queue r for a, all fifo",
     [("E160", 5, 3), ("E145", 5, 15), ("E145", 5, 18)]),
    ("unknown queues in the order", TWO_CLASSES + "  queue qa for a fifo\n  queue q for all fifo\n"
     "  dispatch x then qa then y then q, aging 100ms", [("E162", 6, 12), ("E162", 6, 27)]),
    ("queues twice in the order", TWO_CLASSES + "  queue qa for a fifo\n  queue q for all fifo\n"
     "  dispatch qa then qa then q then q, aging 100ms", [("E163", 6, 20), ("E163", 6, 35)]),
    ("slices of unknown classes", Q + "  slice x = 1ms\n  slice y = 1ms",
     [("E170", 4, 9), ("E170", 5, 9)]),
    ("a slice given again", Q + "  slice all = 1ms\n  slice all = 2ms\n  slice all = 3ms",
     [("E171", 5, 9), ("E171", 6, 9)]),
    ("unknown latency defaults", Q + "  latency kick = true, preempt = false",
     [("E193", 4, 11), ("E193", 4, 24)]),
    ("a latency default given again",
     Q + "  latency kick_idle = true, kick_idle = false, kick_idle = true",
     [("E131", 4, 29), ("E131", 4, 48)]),
    ("latency values that are not booleans", Q + "  latency kick_idle = 1, wakeup_preempt = 2",
     [("E194", 4, 23), ("E194", 4, 43)]),
    ("counter defined again", Q + "  counter n counts enqueue\n  counter n counts enqueue\n"
     "  counter n counts enqueue", [("E130", 5, 11), ("E130", 6, 11)]),
    ("unknown counter events", Q + "  counter n counts foo\n  counter m counts bar",
     [("E190", 4, 20), ("E190", 5, 20)]),
]


@pytest.mark.parametrize(("what", "body", "expected"), TWICE, ids=[c[0] for c in TWICE])
def test_each_repeated_mistake_is_reported_where_it_is(what: str, body: str, expected: list):
    text = f'scheduler t "boundaries" {{\n{body}\n}}\n'
    policy, diags = parse_policy(text, "t.sched")
    assert policy is not None, diags
    _typed, found = analyze(policy, text)
    errors = [(d.code, d.line, d.column) for d in [*diags, *found] if d.severity == "error"]
    assert errors == expected, what


def test_a_repeated_tag_is_warned_about_each_time():
    text = f'scheduler t "tags" {{\n  tags a, b, a, a\n{Q}}}\n'
    policy, _ = parse_policy(text, "t.sched")
    assert policy is not None
    _typed, found = analyze(policy, text)
    assert [(d.code, d.column) for d in found if d.code == "W008"] == [("W008", 14), ("W008", 17)]


def test_an_unknown_latency_default_far_from_all_lists_them():
    text = f'scheduler t "latency" {{\n{Q}  latency zzz = true\n}}\n'
    policy, _ = parse_policy(text, "t.sched")
    assert policy is not None
    _typed, found = analyze(policy, text)
    [d] = [d for d in found if d.code == "E193"]
    assert d.hint == "the defaults: kick_idle, wakeup_preempt, slice_scaling"


@pytest.mark.parametrize(
    ("body", "message", "hint"),
    [
        (queue_with_lag("0ns"), "lag 0ns is outside 1ns..10s", None),
        (ONE_QUEUE + "\n  slice all = 9999ns", "time slice 9999ns is outside 10us..1s", None),
        (ONE_QUEUE + "\n  slice all = 1500ms", "time slice 1500ms is outside 10us..1s", None),
        (ONE_QUEUE + "\n  watchdog 99999999ns", "watchdog 99999999ns is outside 100ms..30s",
         "a shorter timeout ejects schedulers for ordinary scheduling delays"),
        (ONE_QUEUE + "\n  watchdog 30001ms", "watchdog 30001ms is outside 100ms..30s",
         "sched_ext allows at most 30s (SCX_WATCHDOG_MAX_TIMEOUT)"),
    ],
)
def test_a_duration_out_of_range_is_shown_as_written_with_its_range(
    body: str, message: str, hint: str | None
):
    text = f'scheduler t "boundaries" {{\n{body}\n}}\n'
    policy, diags = parse_policy(text, "t.sched")
    assert policy is not None, diags
    _typed, found = analyze(policy, text)
    assert [(d.message, d.hint) for d in found if d.severity == "error"] == [(message, hint)]
