"""Diagnostics as data: every stage returns these; only the outer shells render them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Literal


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Span:
    """A source range; lines and columns are 1-based, the end is inclusive of the last char.
    A diagnostic may know only the line, or only where the range starts (the rest None); the
    DSL's spans are always whole."""

    line: int
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None

    @staticmethod
    def point(line: int, column: int) -> Span:
        return Span(line, column, line, column)


class _Unset(Enum):
    """Not given, as opposed to given as None (for dataclasses.replace(d, column=None))."""

    UNSET = "unset"


_UNSET = _Unset.UNSET
_Position = int | None | Literal[_Unset.UNSET]


@dataclass(frozen=True, init=False)
class Diagnostic:
    """A finding at a place in a file. The place is one Span; the keywords line, column,
    end_line and end_column (and the same four positional arguments after `file`) still build
    and replace it, and read back as properties. A place without a line is no place."""

    severity: Severity
    code: str
    message: str
    file: str | None
    span: Span | None
    hint: str | None

    def __init__(
        self,
        severity: Severity,
        code: str,
        message: str,
        file: str | None = None,
        line: _Position = _UNSET,
        column: _Position = _UNSET,
        end_line: _Position = _UNSET,
        end_column: _Position = _UNSET,
        hint: str | None = None,
        *,
        span: Span | None = None,
    ) -> None:
        given = (line, column, end_line, end_column)
        if any(x is not _UNSET for x in given):
            had = (None,) * 4 if span is None else astuple(span)
            where = [h if g is _UNSET else g for g, h in zip(given, had, strict=True)]
            span = None if where[0] is None else Span(*where)
        for name, value in (
            ("severity", severity),
            ("code", code),
            ("message", message),
            ("file", file),
            ("span", span),
            ("hint", hint),
        ):
            object.__setattr__(self, name, value)

    @property
    def line(self) -> int | None:
        return None if self.span is None else self.span.line

    @property
    def column(self) -> int | None:
        return None if self.span is None else self.span.column

    @property
    def end_line(self) -> int | None:
        return None if self.span is None else self.span.end_line

    @property
    def end_column(self) -> int | None:
        return None if self.span is None else self.span.end_column

    @staticmethod
    def at(
        severity: Severity,
        code: str,
        message: str,
        file: str | None,
        span: Span | None,
        hint: str | None = None,
    ) -> Diagnostic:
        return Diagnostic(severity, code, message, file, hint=hint, span=span)

    def to_json(self) -> dict[str, object]:
        return {
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "hint": self.hint,
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> Diagnostic:
        """The inverse of to_json (a worker's answer)."""

        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        def number(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) else None

        return Diagnostic(
            Severity(str(data["severity"])),
            str(data["code"]),
            str(data["message"]),
            text("file"),
            number("line"),
            number("column"),
            number("end_line"),
            number("end_column"),
            text("hint"),
        )

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.code)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def _source_line(path: str | None, line: int, sources: dict[str, str]) -> str | None:
    if path is None:
        return None
    text = sources.get(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        sources[path] = text
    lines = text.split("\n")  # as the parser and clang count lines, not str.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1].removesuffix("\r")
    return None


# ANSI styles of the human format with colour on (clang's choice of colours).
_STYLE = {
    "where": "\x1b[1m",
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;35m",
    Severity.NOTE: "\x1b[1;36m",
    "caret": "\x1b[1;32m",
    "hint": "\x1b[1;36m",
}
_RESET = "\x1b[0m"


def render_human(
    diagnostics: Iterable[Diagnostic],
    sources: dict[str, str] | None = None,
    *,
    color: bool = False,
) -> str:
    """Render like clang: `file:line:col: error[E001]: msg`, the line, a caret underline, hint.
    With `color`, the place, the severity, the caret and `hint:` carry ANSI styles."""
    sources = {} if sources is None else sources

    def paint(style: object, text: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if color else text

    out: list[str] = []
    for d in diagnostics:
        where = d.file or "schedc"
        if d.line is not None:
            where += f":{d.line}"
            if d.column is not None:
                where += f":{d.column}"
        out.append(
            f"{paint('where', where + ':')} {paint(d.severity, f'{d.severity}[{d.code}]:')} "
            f"{d.message}"
        )
        if d.line is not None:
            text = _source_line(d.file, d.line, sources)
            if text is not None:
                text = text.replace("\t", " ")
                col = max(1, d.column or 1)
                if d.end_line == d.line and d.end_column is not None and d.end_column >= col:
                    width = d.end_column - col + 1
                else:
                    width = max(1, len(text.rstrip()) - col + 1)
                out.append(f"{d.line:5d} | {text}")
                out.append("      | " + " " * (col - 1) + paint("caret", "^" + "~" * (width - 1)))
        if d.hint:
            out.append(f"  {paint('hint', 'hint:')} {d.hint}")
    return "\n".join(out) + ("\n" if out else "")


def summary_line(diagnostics: list[Diagnostic]) -> str:
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    warnings = sum(1 for d in diagnostics if d.severity is Severity.WARNING)
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return " and ".join(parts) + " generated." if parts else ""


def to_json_text(payload: dict[str, object]) -> str:
    return json.dumps(payload, indent=2, sort_keys=False)
