"""Diagnostics as data: every stage returns these; only the outer shells render them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Span:
    """A source range; lines and columns are 1-based, the end is inclusive of the last char."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(line: int, column: int) -> Span:
        return Span(line, column, line, column)


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    hint: str | None = None

    @staticmethod
    def at(
        severity: Severity,
        code: str,
        message: str,
        file: str | None,
        span: Span | None,
        hint: str | None = None,
    ) -> Diagnostic:
        if span is None:
            return Diagnostic(severity, code, message, file, hint=hint)
        return Diagnostic(
            severity,
            code,
            message,
            file,
            span.line,
            span.column,
            span.end_line,
            span.end_column,
            hint,
        )

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = str(self.severity)
        return data

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


def render_human(diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """Render like clang: `file:line:col: error[E001]: msg`, the line, a caret underline, hint."""
    sources = {} if sources is None else sources
    out: list[str] = []
    for d in diagnostics:
        where = d.file or "schedc"
        if d.line is not None:
            where += f":{d.line}"
            if d.column is not None:
                where += f":{d.column}"
        out.append(f"{where}: {d.severity}[{d.code}]: {d.message}")
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
                out.append("      | " + " " * (col - 1) + "^" + "~" * (width - 1))
        if d.hint:
            out.append(f"  hint: {d.hint}")
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

