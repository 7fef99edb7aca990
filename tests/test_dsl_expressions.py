"""The expression checker's errors, exactly: code, message, where the caret goes and the hint,
for each rule of class conditions (cgroup paths, lists, string tests, comparisons, operators,
names, constants and nesting), with the value on each limit accepted and the first one past it
refused. The golden files show a few of these rendered; this file pins every branch, so a
mutation of a message, a span, a bound or an operand (benchmarks/mutation.py on dsl/expr.py)
turns a test red."""

from __future__ import annotations

import pytest

from schedc.dsl.language import (
    COMM_LEN,
    MAX_CGROUP_DEPTH,
    MAX_CGROUP_NAME,
    MAX_EXPR_DEPTH,
    MAX_GLOB_LEN,
    MAX_LIST_ITEMS,
    MAX_NUMBER,
)
from schedc.dsl.parser import parse_policy
from schedc.dsl.sema import analyze

HEAD = '  class a when '
COL = len(HEAD) + 1  # the condition's first column on line 2


def errors(cond: str, rest: str = "  class b otherwise") -> list[tuple]:
    """(code, message, line, first column, last column, hint) of each error of a policy whose
    first class has the condition `cond` (on line 2, from column COL), followed by `rest`
    (the other class, and the policy's params)."""
    text = (
        f'scheduler t "expressions" {{\n{HEAD}{cond}\n{rest}\n'
        "  queue qa for a fifo\n  queue qb for b fifo\n  dispatch qa then qb, aging 100ms\n}\n"
    )
    return diagnostics(text)


def diagnostics(text: str) -> list[tuple]:
    policy, diags = parse_policy(text, "t.sched")
    assert policy is not None, diags
    _typed, found = analyze(policy, text)
    return [
        (d.code, d.message, d.line, d.column, d.end_column, d.hint)
        for d in [*diags, *found]
        if d.severity == "error"
    ]


def at(cond: str, part: str) -> tuple[int, int]:
    """The first and last column of `part` inside the condition on line 2."""
    start = cond.index(part)
    return COL + start, COL + start + len(part) - 1


def one(cond: str, part: str, code: str, message: str, hint: str | None) -> list[tuple]:
    return [(code, message, 2, *at(cond, part), hint)]


# ---- cgroup paths (E202) ------------------------------------------------------------------

DOTS_HINT = "write the path from the cgroup root without . or .. parts"
ABSOLUTE_HINT = 'write it from the cgroup root, e.g. "/system.slice/nginx.service"'
TOO_DEEP = (
    f"cgroup paths may have at most {MAX_CGROUP_DEPTH} parts of {MAX_CGROUP_NAME} characters"
)


@pytest.mark.parametrize(
    ("path", "message", "hint"),
    [
        ("/a/./b", 'cgroup path "/a/./b" contains "." or ".."', DOTS_HINT),
        ("/a/../b", 'cgroup path "/a/../b" contains "." or ".."', DOTS_HINT),
        ("..", 'cgroup path ".." contains "." or ".."', DOTS_HINT),
        ("/sys/fs/cgroup/a/b", '"/sys/fs/cgroup/a/b" is a file-system path; cgroup paths start '
         "at the cgroup root", 'drop the mount point: "/a/b"'),
        ("/sys/fs/cgroup", '"/sys/fs/cgroup" is a file-system path; cgroup paths start at the '
         "cgroup root", 'drop the mount point: "/"'),
        ("/a//b", '"/a//b" is not an absolute cgroup path', ABSOLUTE_HINT),
        ("a/b", '"a/b" is not an absolute cgroup path', ABSOLUTE_HINT),
        ("/" + "/".join("p" * (MAX_CGROUP_DEPTH + 1)), TOO_DEEP, None),
        ("/" + "x" * (MAX_CGROUP_NAME + 1), TOO_DEEP, None),
        ("/" + "X" * (MAX_CGROUP_NAME + 1), TOO_DEEP, None),  # any letters: only "/" is cut
    ],
    ids=["dot", "dotdot", "only-dotdot", "mount-point", "mount-point-alone", "empty-part",
         "relative", "too-deep", "name-too-long", "capital-name-too-long"],
)
def test_a_bad_cgroup_path_is_refused_with_its_reason(path: str, message: str, hint: str | None):
    cond = f'task.cgroup under "{path}"'
    assert errors(cond) == one(cond, f'"{path}"', "E202", message, hint)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/a/",
        "/a/.hidden/b..c",
        "/" + "/".join("p" * MAX_CGROUP_DEPTH),
        "/" + "x" * MAX_CGROUP_NAME,
        "/system.slice/sys/fs/cgroup",  # the mount point only counts at the start
    ],
    ids=["root", "trailing-slash", "dots-inside-names", "deepest", "longest-name", "mount-later"],
)
def test_a_good_cgroup_path_is_accepted(path: str):
    assert errors(f'task.cgroup under "{path}"') == []


# ---- lists (E111, E308, E105) -------------------------------------------------------------


def test_a_list_holds_at_most_the_limit():
    items = ", ".join(str(i) for i in range(MAX_LIST_ITEMS))
    assert errors(f"task.nice in [{items}]") == []
    cond = f"task.nice in [{items}, {MAX_LIST_ITEMS}]"
    assert errors(cond) == one(
        cond, cond[cond.index("["):], "E308",
        f"a list may hold at most {MAX_LIST_ITEMS} items, this one has {MAX_LIST_ITEMS + 1}",
        "use startswith or matches with a glob to cover many names",
    )


def test_an_empty_list_never_matches():
    cond = "task.nice in []"
    assert errors(cond) == one(cond, "[]", "E111", "an empty list never matches", None)


def test_each_list_item_that_is_not_a_constant_of_the_left_sides_type_is_reported():
    cond = "task.nice in [1, task.pid, 2ms, min(1, 2), clamp(5, 1, 3), -3]"
    message = "list items must be constants of the left side's type, a count (int)"
    assert errors(cond) == [
        ("E105", message, 2, *at(cond, "task.pid"), None),
        ("E105", message, 2, *at(cond, "2ms"), None),
    ]
    cond = "task.avg_runtime in [1ms, 2]"
    assert errors(cond) == one(
        cond, "2", "E105", "list items must be constants of the left side's type, a duration",
        None,
    )


def test_a_list_item_with_a_task_attribute_inside_is_not_constant():
    cond = "task.nice in [min(1, task.pid)]"
    assert errors(cond) == one(
        cond, "min(1, task.pid)", "E105",
        "list items must be constants of the left side's type, a count (int)", None,
    )


def test_task_names_are_listed_as_strings_and_each_is_checked():
    cond = 'task.comm in ["a", 3, "' + "n" * (COMM_LEN + 1) + '"]'
    long = '"' + "n" * (COMM_LEN + 1) + '"'
    assert errors(cond) == [
        ("E105", "task names can only be listed as strings", 2, *at(cond, "3"), None),
        ("E201", f"task names are at most {COMM_LEN} bytes: {long} can never match", 2,
         *at(cond, long), f"the kernel keeps the first {COMM_LEN} bytes of a task name: "
         f'compare with "{"n" * COMM_LEN}"'),
    ]


def test_in_cannot_test_a_cgroup_and_says_so_once():
    cond = 'task.cgroup in ["/a", "/b"]'
    assert errors(cond) == one(cond, "task.cgroup", "E105", "'in' cannot test a cgroup path",
                               None)


def test_an_unknown_name_in_a_list_is_reported_once_and_the_items_after_it_still_checked():
    cond = "task.nice in [x, 1, task.pid]"
    assert errors(cond) == [
        ("E107", "unknown name 'x'", 2, *at(cond, "x"), None),
        ("E105", "list items must be constants of the left side's type, a count (int)", 2,
         *at(cond, "task.pid"), None),
    ]


def test_a_param_is_not_a_list_constant_a_loader_may_change_it():
    cond = "task.nice in [1, p, p + 1]"
    message = "list items must be constants of the left side's type, a count (int)"
    assert errors(cond, "  class b otherwise\n  param p: int = 3") == [
        ("E105", message, 2, *at(cond, "p,"[0]), None),
        ("E105", message, 2, *at(cond, "p + 1"), None),
    ]


@pytest.mark.parametrize(
    ("cond", "part", "code", "message", "hint"),
    [
        ("task.nice in [min(1)]", "min(1)", "E109", "min() takes 2 arguments, got 1", None),
        ("task.nice in [min(1, 2ms)]", "min(1, 2ms)", "E101",
         "min() needs arguments of one numeric kind, got a count (int), a duration",
         "durations and counts do not mix: write 5ms, not 5"),
        ("task.nice > max(2ms, 1)", "max(2ms, 1)", "E101",
         "max() needs arguments of one numeric kind, got a duration, a count (int)",
         "durations and counts do not mix: write 5ms, not 5"),
        ("task.avg_runtime in [1ms * 1ms]", "1ms * 1ms", "E102",
         "unit mismatch: a duration times a duration has no meaning here",
         "scale a duration by a count: slice * 2"),
    ],
)
def test_a_bad_call_or_product_inside_a_constant_is_reported_not_folded(
    cond: str, part: str, code: str, message: str, hint: str | None
):
    assert errors(cond) == one(cond, part, code, message, hint)


# ---- string tests (E105, E201, E203) ------------------------------------------------------

GLOB_TOO_LONG_HINT = f"task names have at most {COMM_LEN} characters"


def test_startswith_takes_a_prefix_up_to_a_task_names_length():
    assert errors(f'task.comm startswith "{"p" * COMM_LEN}"') == []
    long = '"' + "p" * (COMM_LEN + 1) + '"'
    cond = f"task.comm startswith {long}"
    # A prefix gets no "compare with" hint: a shorter prefix would match other names.
    assert errors(cond) == one(
        cond, long, "E201", f"task names are at most {COMM_LEN} bytes: {long} can never match",
        f"the kernel keeps the first {COMM_LEN} bytes of a task name",
    )


@pytest.mark.parametrize(
    ("glob", "ok"),
    [
        ("g" * COMM_LEN, True),
        ("g" * (COMM_LEN + 1), False),
        ("*" * MAX_GLOB_LEN, True),  # stars do not count towards the name's length
        ("*" * (MAX_GLOB_LEN + 1), False),  # but the glob itself is bounded
    ],
    ids=["name-length", "past-name-length", "glob-length", "past-glob-length"],
)
def test_a_glob_is_bounded_by_the_name_and_its_own_length(glob: str, ok: bool):
    cond = f'task.comm matches "{glob}"'
    expected = [] if ok else one(
        cond, f'"{glob}"', "E203", f'glob "{glob}" is longer than a task name can be',
        GLOB_TOO_LONG_HINT,
    )
    assert errors(cond) == expected


@pytest.mark.parametrize("glob", ["[ab]c", "a]", "[a"])
def test_a_glob_with_either_bracket_is_refused(glob: str):
    cond = f'task.comm matches "{glob}"'
    assert errors(cond) == one(
        cond, f'"{glob}"', "E203", "character classes ([...]) are not supported in globs",
        "use * and ?, or list the names with in [...]",
    )


def test_a_string_test_of_something_else_says_what_it_tests():
    cond = 'task.cgroup startswith "a"'
    assert errors(cond) == one(
        cond, cond, "E105", "'startswith' tests a task name, not a cgroup path",
        'for cgroups write task.cgroup under "/path"',
    )
    cond = 'task.nice matches "a*"'
    assert errors(cond) == one(cond, cond, "E105", "'matches' tests a task name, not a count "
                               "(int)", None)
    cond = 'task.comm under "/a"'
    assert errors(cond) == one(
        cond, cond, "E105", "'under' tests a cgroup path: task.cgroup under \"/a/b\"", None
    )


# ---- comparisons and operators (E105, E101) -----------------------------------------------

COMM_HINT = 'use task.comm == "name", startswith "pre", matches "glob*" or in [...]'


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ("task.comm == 3", "a task name can only be compared with == or != to a string, not "
         "with '==' to a count (int)"),
        ('task.comm < "x"', "a task name can only be compared with == or != to a string, not "
         "with '<' to a string"),
        ("3 != task.comm", "a task name can only be compared with == or != to a string, not "
         "with '!=' to a count (int)"),
    ],
)
def test_a_task_name_is_compared_only_for_equality_with_a_string(cond: str, message: str):
    assert errors(cond) == one(cond, cond, "E105", message, COMM_HINT)


@pytest.mark.parametrize("cond", ['task.comm != "x"', '"x" == task.comm', 'task.comm == "x"'])
def test_a_task_name_equal_to_a_string_is_fine_on_either_side(cond: str):
    assert errors(cond) == []


def test_a_count_and_a_duration_are_not_compared_and_the_hint_says_why():
    cond = "task.nice > 1ms"
    assert errors(cond) == one(
        cond, cond, "E105", "cannot compare a count (int) with a duration",
        "a count and a duration cannot be compared: compare like with like",
    )
    cond = "task.avg_runtime > 3"
    assert errors(cond) == one(
        cond, cond, "E105", "cannot compare a duration with a count (int)",
        "durations need a unit: write 10ms, not 10",
    )
    cond = "3 < task.avg_runtime"
    assert errors(cond) == one(
        cond, cond, "E105", "cannot compare a count (int) with a duration",
        "durations need a unit: write 10ms, not 10",
    )


@pytest.mark.parametrize(
    ("cond", "part", "message"),
    [
        ("task.comm + 1 > 0", "task.comm + 1", "'+' cannot be applied to a task name (comm)"),
        ("1 + task.comm > 0", "1 + task.comm", "'+' cannot be applied to a task name (comm)"),
        ("task.nice * task.cgroup > 0", "task.nice * task.cgroup",
         "'*' cannot be applied to a cgroup path"),
    ],
)
def test_an_operator_on_a_non_number_names_the_operand_that_is_not(
    cond: str, part: str, message: str
):
    assert errors(cond) == one(cond, part, "E105", message, None)


@pytest.mark.parametrize(
    ("cond", "part", "message"),
    [
        ("task.nice > \"x\"", "task.nice > \"x\"", "cannot compare a count (int) with a string"),
        ("task.kthread == 1", "task.kthread == 1",
         "cannot compare a condition (bool) with a count (int)"),
        # the caret spans the two conditions, inside their parentheses
        ("(task.nice > 0) < (task.pid > 1)", "task.nice > 0) < (task.pid > 1",
         "conditions cannot be ordered with '<'"),
    ],
)
def test_other_mismatched_comparisons_have_no_hint(cond: str, part: str, message: str):
    assert errors(cond) == one(cond, part, "E105", message, None)


def test_a_cgroup_is_only_tested_with_under():
    cond = "task.cgroup > 1"
    assert errors(cond) == one(cond, cond, "E105", "a cgroup path can only be tested with "
                               "'under'", 'write task.cgroup under "/system.slice"')


def test_an_operator_on_two_non_numbers_is_one_error():
    cond = "task.comm * task.cgroup > 0"
    assert errors(cond) == one(cond, "task.comm * task.cgroup", "E105",
                               "'*' cannot be applied to a task name (comm)", None)


def test_adding_a_duration_to_a_count_is_a_unit_mismatch():
    cond = "task.nice + 1ms > 0"
    assert errors(cond) == one(
        cond, "task.nice + 1ms", "E101", "unit mismatch: cannot add a duration to a count (int)",
        "give the count a unit (e.g. 5ms) or scale a duration by a count with '*'",
    )


# ---- names (E106, E107) -------------------------------------------------------------------


def test_a_misspelt_task_attribute_gets_the_closest_one():
    cond = "task.nicee > 0"
    assert errors(cond) == one(cond, "task.nicee", "E106",
                               "unknown task attribute 'task.nicee'", "did you mean 'task.nice'?")


def test_a_misspelt_nested_attribute_gets_the_closest_nested_one():
    cond = 'task.parent.comn == "x"'
    assert errors(cond) == one(cond, "task.parent.comn", "E106",
                               "unknown task attribute 'task.parent.comn'",
                               "did you mean 'task.parent.comm'?")


def test_an_unknown_task_attribute_far_from_all_lists_them():
    cond = "task.zzzzqq > 0"
    (found,) = errors(cond)
    assert found[:5] == ("E106", "unknown task attribute 'task.zzzzqq'", 2,
                         *at(cond, "task.zzzzqq"))
    listed = found[5].removeprefix("task attributes: ").split(", ")
    assert found[5].startswith("task attributes: task.comm, ")
    assert {"task.nice", "task.pid", "task.cgroup", "task.avg_runtime"} <= set(listed)
    assert all(name.startswith("task.") for name in listed)


@pytest.mark.parametrize("name", ["comm", "pid", "nice", "weight", "uid", "cgroup"])
def test_a_bare_task_attribute_name_says_how_to_write_it(name: str):
    cond = f"{name} > 0"
    assert errors(cond) == one(cond, name, "E107", f"unknown name '{name}'",
                               f"task attributes are written task.{name}")


def test_another_unknown_name_gets_no_task_hint():
    cond = "tgidx > 0"
    assert errors(cond) == one(cond, "tgidx", "E107", "unknown name 'tgidx'", None)


# ---- constants and nesting (E115, E309) ---------------------------------------------------

OVERFLOW = "this constant expression overflows 64 bits"
OVERFLOW_HINT = "counts and durations (in ns) stay below 2^63; the C would wrap around"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (f"{MAX_NUMBER}", True),
        (f"{MAX_NUMBER - 1} + 1", True),
        (f"{MAX_NUMBER} + 1", False),
        (f"-{MAX_NUMBER} - 1", True),
        (f"-{MAX_NUMBER} - 2", False),
        (f"min({MAX_NUMBER} + 1, 0)", False),
        (f"clamp({MAX_NUMBER} + 1, 0, 1)", False),
    ],
)
def test_a_constant_may_reach_but_not_pass_the_ends_of_s64(value: str, ok: bool):
    cond = f"task.nice > {value}"
    if ok:
        assert errors(cond) == []
        return
    part = f"{MAX_NUMBER} + 1" if "+ 1" in value else value
    assert errors(cond) == one(cond, part, "E115", OVERFLOW, OVERFLOW_HINT)


def test_an_overflow_is_reported_once_per_line():
    big = f"{MAX_NUMBER // 2 + 1}"
    cond = f"task.nice > {big} * 2 + {big} * 2"
    assert errors(cond) == one(cond, f"{big} * 2", "E115", OVERFLOW, OVERFLOW_HINT)


def test_each_line_with_an_overflow_gets_its_error():
    big = f"{MAX_NUMBER} + 1"
    text = (
        'scheduler t "overflows" {\n'
        f"  class a when task.nice > {big} or task.pid > {big}\n"
        "  class c when task.nice < 0\n"
        f"  class b when task.uid == {big}\n"
        "  class d otherwise\n"
        "  queue qa for a fifo\n  queue qc for c fifo\n  queue qb for b fifo\n"
        "  queue qd for d fifo\n  dispatch qa then qc then qb then qd, aging 100ms\n}\n"
    )
    found = diagnostics(text)
    assert [(e[0], e[2]) for e in found] == [("E115", 2), ("E115", 4)]
    line2 = f"  class a when task.nice > {big} or task.pid > {big}"
    assert found[0][3:5] == (line2.index(big) + 1, line2.index(big) + len(big))


def test_a_negated_or_called_constant_folds_to_its_value():
    # Folded values decide the overflow: -(MAX) - 1 fits, -(-MAX - 1) does not.
    assert errors(f"task.nice > -({MAX_NUMBER}) - 1") == []
    cond = f"task.nice > -(-{MAX_NUMBER} - 1)"
    assert [e[0] for e in errors(cond)] == ["E115"]
    assert errors(f"task.nice > max({MAX_NUMBER}, 1) - {MAX_NUMBER}") == []
    assert [e[0] for e in errors(f"task.nice > max({MAX_NUMBER}, 1) + 1")] == ["E115"]
    assert errors(f"task.nice > min({MAX_NUMBER}, 1) + {MAX_NUMBER - 1}") == []
    assert [e[0] for e in errors(f"task.nice > min({MAX_NUMBER}, 2) + {MAX_NUMBER - 1}")] == [
        "E115"
    ]


def test_expressions_nest_up_to_the_limit():
    # a comparison of a chain of n additions is n + 2 levels deep
    ok = "task.nice > " + "1 + " * (MAX_EXPR_DEPTH - 2) + "1"
    assert errors(ok) == []
    deep = "task.nice > " + "1 + " * (MAX_EXPR_DEPTH - 1) + "1"
    assert errors(deep) == one(
        deep, deep, "E309", f"expression is nested more than {MAX_EXPR_DEPTH} levels deep",
        "split it into params or simplify it",
    )
