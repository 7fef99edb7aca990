"""A Diagnostic's place is one frozen Span; the four loose keywords (and positions) that built
it before still build, replace and read it, and its JSON is what it always was."""

from __future__ import annotations

import dataclasses
import json

import pytest

from schedc.diagnostics import Diagnostic, Severity, Span, to_json_text

E = Severity.ERROR


def test_the_old_keywords_and_positions_build_a_span():
    by_keyword = Diagnostic(E, "E001", "m", "p.sched", line=3, column=5, end_line=3, end_column=9)
    by_position = Diagnostic(E, "E001", "m", "p.sched", 3, 5, 3, 9)
    by_span = Diagnostic(E, "E001", "m", "p.sched", span=Span(3, 5, 3, 9))
    assert by_keyword == by_position == by_span
    assert by_keyword.span == Span(3, 5, 3, 9)
    assert (by_span.line, by_span.column, by_span.end_line, by_span.end_column) == (3, 5, 3, 9)
    assert Diagnostic.at(E, "E001", "m", "p.sched", Span(3, 5, 3, 9)) == by_span
    assert hash(by_keyword) == hash(by_span)


def test_a_partial_place_keeps_what_is_known():
    line_only = Diagnostic(E, "V001", "m", "p.bpf.c", 7)
    assert line_only.span == Span(7)
    assert (line_only.column, line_only.end_line, line_only.end_column) == (None, None, None)
    start = Diagnostic(E, "K063", "m", "p.bpf.c", 7, 2, hint="h")
    assert start.span == Span(7, 2) and start.hint == "h"
    nowhere = Diagnostic(E, "C001", "m", "p.bpf.c")
    assert nowhere.span is None and nowhere.line is None and nowhere.column is None
    # a place without a line is no place
    assert Diagnostic(E, "C001", "m", None, None, 4, None, 9).span is None


def test_replace_changes_the_span_a_field_at_a_time():
    d = Diagnostic(E, "K061", "m", "a.bpf.c", 3, 5, 3, 9, "h")
    assert dataclasses.replace(d, hint="x").span == Span(3, 5, 3, 9)
    assert dataclasses.replace(d, line=8, column=1).span == Span(8, 1, 3, 9)
    moved = dataclasses.replace(d, line=2, column=None, end_line=None, end_column=None)
    assert moved.span == Span(2) and moved.hint == "h" and moved.file == "a.bpf.c"
    assert dataclasses.replace(d, span=Span(1, 1, 1, 4)).span == Span(1, 1, 1, 4)
    assert dataclasses.replace(d, line=None).span is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.span = None  # type: ignore[misc]
    with pytest.raises(AttributeError):
        d.line = 4  # type: ignore[misc]


def test_the_json_is_byte_for_byte_the_loose_fields():
    diags = [
        Diagnostic(E, "E001", "bad", "p.sched", span=Span(3, 5, 3, 9), hint="fix it"),
        Diagnostic(Severity.WARNING, "V001", "w", "p.bpf.c", 7),
        Diagnostic(Severity.NOTE, "C001", "n"),
    ]
    text = to_json_text({"diagnostics": [d.to_json() for d in diags]})
    assert text == (
        '{\n  "diagnostics": [\n'
        '    {\n      "severity": "error",\n      "code": "E001",\n      "message": "bad",\n'
        '      "file": "p.sched",\n      "line": 3,\n      "column": 5,\n      "end_line": 3,\n'
        '      "end_column": 9,\n      "hint": "fix it"\n    },\n'
        '    {\n      "severity": "warning",\n      "code": "V001",\n      "message": "w",\n'
        '      "file": "p.bpf.c",\n      "line": 7,\n      "column": null,\n'
        '      "end_line": null,\n      "end_column": null,\n      "hint": null\n    },\n'
        '    {\n      "severity": "note",\n      "code": "C001",\n      "message": "n",\n'
        '      "file": null,\n      "line": null,\n      "column": null,\n'
        '      "end_line": null,\n      "end_column": null,\n      "hint": null\n    }\n'
        "  ]\n}"
    )
    assert [Diagnostic.from_json(json.loads(json.dumps(d.to_json()))) for d in diags] == diags
