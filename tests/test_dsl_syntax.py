"""Syntax errors, exactly: code, message, place (line, first and last column) and hint for
each kind the parser reports (dsl/parser.py `_syntax_diagnostic` and the literal rules). The
golden files render a few; this file pins each branch, so that a mutation of a hint, a code,
a column or a condition (benchmarks/mutation.py on dsl/parser.py) turns a test red."""

from __future__ import annotations

import pytest

from schedc.dsl.language import MAX_SOURCE_BYTES
from schedc.dsl.parser import parse_policy

HEAD = 'scheduler t "x" {\n  class all otherwise\n  queue q for all fifo\n'
STATEMENT_HINT = (
    "a statement starts with one of: tags, param, counter, class, queue, dispatch, slice, "
    "select, watchdog, latency"
)
STATEMENTS = (
    "expected one of 'class', 'counter', 'dispatch', 'lag', 'latency', 'max_wait', 'param', "
    "'queue', 'select', 'slice', 'strict', 'tags', 'watchdog', '}'"
)
AFTER_VALUE = (
    "expected one of ')', '*' or '/', '+' or '-', ',', ']', 'and', 'ascending' or "
    "'descending', 'class', 'counter', 'dispatch', 'in', 'lag', 'latency', 'matches', "
    "'startswith' or 'under', 'max_wait', 'on', ..."
)
AN_EXPRESSION = "expected an expression (a value, a name, task.ATTRIBUTE or '(')"
NUMBER_HINT = "durations are a number and a unit: ns, us, ms or s (e.g. 10ms)"
DECIMALS = "numbers are integers; only durations have decimals (1.5ms)"
CLOSING = "is a closing '}' missing?"
IN_EXPRESSION = "the file ends inside an expression: finish it, then close the scheduler with '}'"


def cond(text: str) -> str:
    return HEAD.replace("otherwise", text) + "}\n"


def stmt(text: str) -> str:
    return HEAD + text + "\n}\n"


CASES = [
    # (what, policy text, code, message, line, first column, last column, hint)
    ("unterminated string", stmt('  tags "abc'), "E003", "unterminated string", 4, 8, 8,
     "close the string with '\"' on the same line"),
    ("single quotes", stmt("  class b when task.comm == 'x'"), "E002",
     "unexpected character \"'\"", 4, 29, 29, 'strings use double quotes: "..."'),
    ("&", cond("when task.nice > 0 & task.pid > 1"), "E002", "unexpected character '&'",
     2, 32, 32, "write 'and'"),
    ("|", cond("when task.nice > 0 | task.pid > 1"), "E002", "unexpected character '|'",
     2, 32, 32, "write 'or'"),
    ("!", cond("when !task.kthread"), "E002", "unexpected character '!'", 2, 18, 18,
     "write 'not' (and '!=' for 'not equal')"),
    ("; after a duration", stmt("  slice all = 1ms;"), "E002", "unexpected character ';'",
     4, 18, 18, "statements end at the line break; no ';' is needed"),
    ("a control character", stmt("  slice all = 1ms\x01"), "E002",
     "unexpected character 'U+0001'", 4, 18, 18, None),
    ("a word that is no number", stmt("  slice all = 20xs"), "E002",
     "'20xs' is not a number or a duration", 4, 15, 18, NUMBER_HINT),
    ("control flow", 'scheduler t "x" {\n  if task.nice > 0\n}\n', "E001",
     "unexpected 'if'; expected one of 'class', 'counter', 'dispatch', 'latency', 'param', "
     "'queue', 'select', 'slice', 'tags', 'watchdog', '}'", 2, 3, 4,
     "the DSL has no control flow: describe classes, queues and their order instead"),
    ("else", 'scheduler t "x" {\n  class a else\n}\n', "E001",
     "unexpected 'else'; expected one of 'otherwise', 'when'", 2, 11, 14,
     "the default class is written: class NAME otherwise"),
    ("a space before the unit", stmt("  slice all = 20 ms"), "E001",
     f"unexpected 'ms'; {AFTER_VALUE}", 4, 18, 19, "no space between a number and its unit: 20ms"),
    ("a unit after a name is no unit", stmt("  slice all = slice ms"), "E001",
     "unexpected 'ms'; expected one of '(', ')', '*' or '/', '+' or '-', ',', ']', 'and', "
     "'ascending' or 'descending', 'class', 'counter', 'dispatch', 'in', 'lag', 'latency', "
     "'matches', 'startswith' or 'under', 'max_wait', ...", 4, 21, 22, None),
    ("a decimal count", cond("when task.nice > 1.5"), "E001", f"unexpected '.'; {AFTER_VALUE}",
     2, 31, 31, DECIMALS),
    ("a decimal alone", stmt("  slice all = .5ms"), "E001", f"unexpected '.'; {AN_EXPRESSION}",
     4, 15, 15, None),
    ("= for ==", cond("when task.nice = 1"), "E001",
     "unexpected '='; expected one of ')', '*' or '/', '+' or '-', ',', '.', ']', 'and', "
     "'ascending' or 'descending', 'class', 'counter', 'dispatch', 'in', 'lag', 'latency', "
     "'matches', 'startswith' or 'under', 'max_wait', ...", 2, 28, 28, "compare with '=='"),
    ("an unknown statement", stmt("  bogus x"), "E001", f"unexpected 'bogus'; {STATEMENTS}",
     4, 3, 7, STATEMENT_HINT),
    ("a string as a statement", stmt('  "oops"'), "E001", f"unexpected '\"oops\"'; {STATEMENTS}",
     4, 3, 8, STATEMENT_HINT),
    ("a number as a statement", stmt("  42"), "E001", f"unexpected '42'; {STATEMENTS}",
     4, 3, 4, STATEMENT_HINT),
    ("a closing brace too early", 'scheduler t "x" {\n  class all when (((task.nice > 0)\n}\n',
     "E001", "unexpected '}'; expected ')'", 3, 1, 1, None),
    # the end of the file: the caret goes after its last character
    ("end of file", HEAD, "E004", f"unexpected end of file; {STATEMENTS}", 3, 23, 23, CLOSING),
    ("end of file after a blank line", HEAD + "\n", "E004",
     f"unexpected end of file; {STATEMENTS}", 4, 1, 1, CLOSING),
    ("end of file without a newline", 'scheduler t "x"', "E004",
     "unexpected end of file; expected '{'", 1, 16, 16, CLOSING),
    ("end of file in an expression", 'scheduler t "x" {\n  class a when task.nice >', "E004",
     f"unexpected end of file; {AN_EXPRESSION}", 2, 27, 27, IN_EXPRESSION),
    ("end of file after an operator", 'scheduler t "x" {\n  slice all = 2ms +', "E004",
     f"unexpected end of file; {AN_EXPRESSION}", 2, 20, 20, IN_EXPRESSION),
    # literals the grammar accepts and the parser then refuses
    ("an integer past 64 bits", cond("when task.nice > 99999999999999999999"), "E008",
     "number 99999999999999999999 is too large", 2, 30, 49,
     "integers are 64-bit: at most 9223372036854775807"),
    ("a duration past 2^63 ns", stmt("  slice all = 99999999999s"), "E008",
     "duration '99999999999s' is too large", 4, 15, 26,
     "durations must stay below 292 years (2^63 ns)"),
    ("a fraction of a nanosecond", stmt("  slice all = 1.5ns"), "E005",
     "duration '1.5ns' is not a whole number of nanoseconds", 4, 15, 19,
     "durations are whole nanoseconds: round it, e.g. 2ns instead of 2.5ns"),
]


@pytest.mark.parametrize(
    ("what", "text", "code", "message", "line", "first", "last", "hint"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_a_syntax_error_says_what_and_where(
    what: str, text: str, code: str, message: str, line: int, first: int, last: int,
    hint: str | None,
):
    policy, diags = parse_policy(text, "t.sched")
    assert policy is None, what
    assert [(d.code, d.message, d.line, d.column, d.end_line, d.end_column, d.hint)
            for d in diags] == [(code, message, line, first, line, last, hint)], what


def test_a_tab_counts_as_one_column():
    _policy, diags = parse_policy(HEAD + "\tslice all = 1ms;\n}\n", "t.sched")
    assert [(d.code, d.line, d.column) for d in diags] == [("E002", 4, 17)]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("#" * MAX_SOURCE_BYTES, True),  # on the limit: read (and then it holds no policy)
        ("#" * (MAX_SOURCE_BYTES + 1), False),
        ("#" + "é" * (MAX_SOURCE_BYTES // 2), False),  # bytes are counted, not characters
    ],
    ids=["on-the-limit", "one-byte-past", "multi-byte"],
)
def test_a_policy_may_be_up_to_the_size_limit(text: str, ok: bool):
    _policy, diags = parse_policy(text, "t.sched")
    [d] = diags
    if ok:
        assert (d.code, d.message) == ("E004", "the file holds no policy")
        assert d.hint == 'a policy is: scheduler NAME "description" { ... }'
    else:
        assert (d.code, d.message, d.line, d.column) == (
            "E007", f"policy is larger than {MAX_SOURCE_BYTES // 1024} KiB", 1, 1
        )
        assert d.hint == "split it or remove generated content; policies are meant to be short"


@pytest.mark.parametrize(
    ("text", "ns"),
    [("1.5ms", 1_500_000), ("2us", 2_000), ("3s", 3_000_000_000), ("7ns", 7), ("0.5s", 500_000_000)],
)
def test_a_duration_literal_is_its_nanoseconds(text: str, ns: int):
    policy, diags = parse_policy(stmt(f"  slice all = {text}"), "t.sched")
    assert policy is not None, diags
    [entry] = policy.slices
    assert entry.value.ns == ns


def test_windows_line_ends_are_read_like_unix_ones():
    policy, diags = parse_policy(HEAD.replace("\n", "\r\n") + "}\r\n", "t.sched")
    assert policy is not None and diags == []


def _cond_policy(cond: str) -> str:
    return (
        'scheduler t "x" {\n  class a when ' + cond + "\n  class b otherwise\n"
        "  queue q for a, b fifo\n}\n"
    )


def _codes(text: str) -> list[tuple[str, int, int | None]]:
    return [(d.code, d.line, d.column) for d in parse_policy(text, "t.sched")[1]]


def test_brackets_are_counted_open_minus_closed_up_to_the_limit():
    """E009 counts brackets nested, not brackets seen: a closed group gives its depth back,
    so a group before a nest of exactly MAX_NESTING (128) is fine and one more is too deep,
    reported at the bracket past the limit."""
    nest = "(" * 128 + "true" + ")" * 128
    assert _codes(_cond_policy("(true) and task.nice in [1, 2] and " + nest)) == []
    deeper = "(true) and " + "(" * 129 + "true" + ")" * 129
    col = len("  class a when (true) and ") + 129  # the 129th '(' of the nest
    assert _codes(_cond_policy(deeper)) == [("E009", 2, col)]


def test_an_operator_chain_is_too_deep_one_past_the_limit():
    """The tree's depth, counted from the statement: 126 `not`s are within the limit, 127 are
    E009 at the statement."""
    assert _codes(_cond_policy("not " * 126 + "true")) == []
    assert _codes(_cond_policy("not " * 127 + "true")) == [("E009", 2, 3)]


def test_string_escapes_are_read_and_an_unknown_one_is_placed_on_its_backslash():
    policy, diags = parse_policy(_cond_policy('task.comm == "a\\"b\\\\c\\"\\"d"'), "t.sched")
    assert policy is not None and diags == []
    assert policy.classes[0].when.right.value == 'a"b\\c""d'
    _, diags = parse_policy(_cond_policy('task.comm == "ab\\qc"'), "t.sched")
    [d] = diags
    # the string's quote is at column 29: the backslash is 3 characters in
    assert (d.code, d.line, d.column, d.end_line, d.end_column) == ("E006", 2, 32, 2, 33)
    assert d.message == "unknown escape '\\q' in string"
