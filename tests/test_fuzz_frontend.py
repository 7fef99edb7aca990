"""The DSL front end is total: every input gives C text or diagnostics inside the file.

Regression tests for each crash the fuzzer found (the exact input, shortened where the
shape is what matters), then a hypothesis fuzz test over the three input strategies of
tests/fuzzgen.py. The long run is `python benchmarks/fuzz_frontend.py`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedc.compiler.pipeline import translate
from schedc.diagnostics import Diagnostic, render_human
from tests.fuzzgen import EXAMPLES, MUTATIONS, STRATEGIES, check_front_end, mutate
from tests.policygen import PolicyGen


def _policy(cls: str = "", body: str = "") -> str:
    when = f"  class x when {cls}\n" if cls else ""
    queue = "x, b" if cls else "b"
    return f"scheduler a {{\n{when}  class b otherwise\n  queue q for {queue} fifo\n{body}}}\n"


def _run(text: str, tmp_path: Path) -> list[Diagnostic]:
    return check_front_end(text, tmp_path / "p.sched")


def _codes(diags: list[Diagnostic]) -> list[str]:
    return [d.code for d in diags]


# ---- literals past Python's 4300-digit int-string limit ---------------------------------
HUGE = "9" * 5000

LITERAL_CASES = {
    "int": _policy(f"task.nice < {HUGE}"),  # VisitError from rule "int"
    "neg_int": "scheduler a {\n  param p = -" + HUGE + "\n" + _policy()[14:],  # "neg_int"
    "duration": _policy(body=f"  slice b = {HUGE}ms\n"),  # VisitError from rule "duration"
    "list_item": _policy(f"task.nice in [1, {HUGE}]"),
    "cpu_range": _policy().replace("b otherwise", f"b otherwise on cpus 0-{HUGE}"),  # ValueError
    "weight": (  # ValueError in _build_policy
        "scheduler a {\n  class b otherwise\n  class c when task.nice < 0\n"
        "  queue q for b fifo\n  queue r for c fifo\n"
        f"  dispatch weighted q: {HUGE}, r: 1\n}}\n"
    ),
}


@pytest.mark.parametrize("case", list(LITERAL_CASES), ids=list(LITERAL_CASES))
def test_huge_literal_is_e008_at_its_position(case: str, tmp_path: Path) -> None:
    text = LITERAL_CASES[case]
    diags = _run(text, tmp_path)
    assert _codes(diags) == ["E008"], diags
    line = next(i for i, ln in enumerate(text.split("\n"), 1) if HUGE in ln)
    column = text.split("\n")[line - 1].index(HUGE) + 1
    if case == "neg_int":
        column -= 1  # the span includes the sign
    assert (diags[0].line, diags[0].column) == (line, column)
    assert diags[0].end_column == column + len(HUGE) - 1 + (case == "neg_int") + 2 * (
        case == "duration"
    )
    assert (
        "(5000 digits) is too large" in diags[0].message or "(5002 characters)" in diags[0].message
    )
    assert len(diags[0].message) < 120


def test_leading_zeros_do_not_make_a_number_large(tmp_path: Path) -> None:
    diags = _run(_policy(f"task.nice < {'0' * 5000}1"), tmp_path)
    assert "E008" not in _codes(diags)


@pytest.mark.parametrize(
    ("literal", "code"),
    [
        ("10000000000000000000s", "E008"),  # 10^19 s: overflows u64 once scaled to ns
        ("10000000000s", "E008"),  # 10^19 ns
        ("9223372036854775807ns", None),
        ("9223372036854775808ns", "E008"),
        ("1." + "0" * 5000 + "ms", None),  # exactly 1ms, however many zeros
        ("1." + "0" * 5000 + "1ms", "E005"),
        ("0." + "0" * 9 + "1s", "E005"),
    ],
)
def test_duration_bounds(literal: str, code: str | None, tmp_path: Path) -> None:
    diags = _run(_policy(body=f"  param d = {literal}\n"), tmp_path)
    if code is None:
        assert not [d for d in diags if d.code.startswith("E")], diags
    else:
        assert code in _codes(diags)
        assert diags[0].line == 4


# ---- nesting and long chains: RecursionError, and E009 without a line --------------------
DEEP_CASES = {
    "parens_100k": _policy("(" * 100_000 + "true" + ")" * 100_000),
    "brackets_100k": _policy("task.nice in " + "[" * 100_000),
    "or_chain": _policy(" or ".join(["task.pinned"] * 10_000)),
    "not_chain": _policy("not " * 40_000 + "true"),
    "neg_chain": _policy("task.nice < " + "- " * 60_000 + "1"),
    "min_nesting": _policy(body="  slice b = " + "min(" * 5_000 + "1ms" + ", 2ms)" * 5_000 + "\n"),
    "sum_700": _policy(body="  slice b = " + " + ".join(["1us"] * 700) + "\n"),
}


@pytest.mark.parametrize("case", list(DEEP_CASES), ids=list(DEEP_CASES))
def test_deep_or_long_expression_is_e009_with_a_location(case: str, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    diags = _run(DEEP_CASES[case], tmp_path)
    assert _codes(diags) == ["E009"]
    assert diags[0].line in (2, 4) and diags[0].column is not None
    assert time.perf_counter() - t0 < 10


def test_an_or_chain_within_the_limit_still_compiles(tmp_path: Path) -> None:
    diags = _run(_policy(" or ".join(["task.pinned"] * 100)), tmp_path)
    assert not [d for d in diags if d.code.startswith("E")], diags


def test_brackets_in_strings_and_comments_do_not_count(tmp_path: Path) -> None:
    text = _policy('task.comm == "' + "(" * 10 + '"') + "# " + "(" * 500 + "\n"
    assert "E009" not in _codes(_run(text, tmp_path))


# ---- constant folding past 64 bits ------------------------------------------------------
def _balanced(depth: int) -> str:
    return "9" if depth == 0 else f"({_balanced(depth - 1)}*{_balanced(depth - 1)})"


def test_constant_overflow_is_e115_not_a_crash(tmp_path: Path) -> None:
    # ValueError in sema's _fmt_ns: 9^16384 has more than 4300 digits
    diags = _run(_policy(body=f"  slice b = 1ns * {_balanced(14)}\n"), tmp_path)
    assert _codes(diags) == ["E115"]
    assert diags[0].line == 4


@pytest.mark.parametrize(
    "expr",
    ["9223372036854775807 + 1 > 0", "-9223372036854775807 - 2 < 0", "5000000000s * 5 > 1ms"],
)
def test_constant_overflow_in_a_condition(expr: str, tmp_path: Path) -> None:
    assert "E115" in _codes(_run(_policy(expr), tmp_path))


def test_constant_at_the_limit_is_fine(tmp_path: Path) -> None:
    diags = _run(_policy("9223372036854775806 + 1 > task.nice"), tmp_path)
    assert "E115" not in _codes(diags)


def test_sema_e009_has_a_location_even_for_a_tree_the_parser_never_builds() -> None:
    from schedc.dsl import ast
    from schedc.dsl.parser import parse_policy
    from schedc.dsl.sema import analyze

    policy, _ = parse_policy(_policy(body="  slice b = 1ms\n"), "p.sched")
    assert policy is not None
    deep: ast.Expr = policy.slices[0].value
    for _ in range(20_000):  # far deeper than the parser's limit allows
        deep = ast.Binary(deep.span, "+", deep, ast.DurationLit(deep.span, 1, "1ns"))
    policy.slices[0] = ast.SliceEntry(policy.slices[0].cls, deep, policy.slices[0].span)
    _, diags = analyze(policy)
    assert [(d.code, d.line, d.column) for d in diags] == [("E009", 1, 11)]


# ---- line numbers are lark's: '\n' only ----------------------------------------------------
@pytest.mark.parametrize("sep", ["\x0c", "\u2028", "\x1c", "\x85"])
def test_end_of_file_after_other_line_breaks_is_inside_the_file(sep: str, tmp_path: Path):
    # str.splitlines() also splits at these; lark does not, so the E004 line was past the end
    text = f"# a comment{sep}with a form feed{sep}\nscheduler a {{\n  class b otherwise"
    diags = _run(text, tmp_path)
    assert _codes(diags) == ["E004"]
    assert diags[0].line == 3


def test_render_shows_the_line_lark_counted(tmp_path: Path) -> None:
    path = tmp_path / "p.sched"
    path.write_text("# a\x0cb\nscheduler a {\n  class b otherwise\n  queue q for b fifo\n  x\n}\n")
    out = render_human(translate(path).diagnostics)
    assert "    5 |   x" in out


def test_non_printable_character_is_named(tmp_path: Path) -> None:
    diags = _run(_policy("task.nice < 0\x00"), tmp_path)
    assert _codes(diags) == ["E002"]
    assert "U+0000" in diags[0].message


# ---- the fuzz test ---------------------------------------------------------------------
@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    op=st.none() | st.integers(0, MUTATIONS - 1),
    rnd=st.randoms(use_true_random=False),
)
def test_front_end_never_raises(
    strategy: str, op: int | None, rnd: random.Random, tmp_path: Path
) -> None:
    """Random inputs; or an example or generated policy with mutation `op` applied first
    (hypothesis picks the op, so that each kind of mutation is tried in a short run)."""
    if op is None or strategy == "random":
        data = STRATEGIES[strategy](rnd)
    else:
        base = rnd.choice(EXAMPLES) if strategy == "mutated-example" else PolicyGen(rnd).policy()
        data = mutate(rnd, base, rounds=rnd.choice([1, 2]), op=op)
    check_front_end(data, tmp_path / "fuzz.sched")


def test_every_example_passes_the_check(tmp_path: Path) -> None:
    for example in sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.sched")):
        assert _run(example.read_text(encoding="utf-8"), tmp_path) == []
