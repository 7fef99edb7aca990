"""JSON from the repository, parsed within bounds.

Everything in a policy repository may come from someone else (a pulled remote, a hand edit),
so one file must never take a reader down: `json.loads` recurses in C and raises
RecursionError on deeply nested input, Python refuses integers longer than 4,300 digits with a
ValueError, and a huge file is read whole into memory. `loads` refuses all of these up front
with `JSONBoundsError` (a ValueError), which readers report as a problem of that one file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

MAX_JSON_BYTES = 1 << 20  # meta.json, verification.json, a performance record, a bench file
MAX_DEPTH = 64  # nesting of arrays and objects; schedc's own files nest 4 deep
MAX_NUMBER_CHARS = 40  # an int of up to 40 digits, a float like -1.2345678901234567e-308

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JSONBoundsError(ValueError):
    """The text is not JSON schedc accepts (malformed, or beyond a bound)."""


def _depth_problem(raw: bytes) -> str | None:
    brackets = _STRING.sub(b'""', raw).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_DEPTH:
        return None  # cannot nest deeper than there are brackets
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep"
        else:
            depth -= 1
    return None


def _number(kind: Callable[[str], int | float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise JSONBoundsError(
                f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS}): {text[:20]}…"
            )
        return kind(text)

    return parse


def _constant(name: str) -> object:
    raise JSONBoundsError(f"{name} is not JSON")


def loads(raw: bytes | str, limit: int = MAX_JSON_BYTES) -> Any:
    """Parse JSON text of at most `limit` bytes, nested at most MAX_DEPTH deep, with numbers of
    at most MAX_NUMBER_CHARS characters and no NaN/Infinity. Raises JSONBoundsError."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > limit:
        raise JSONBoundsError(f"{len(data)} bytes: larger than the limit of {limit} bytes")
    problem = _depth_problem(data)
    if problem:
        raise JSONBoundsError(problem)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONBoundsError(f"not UTF-8: {exc}") from None
    try:
        return json.loads(
            text,
            parse_int=_number(int),
            parse_float=_number(float),
            parse_constant=_constant,
        )
    except JSONBoundsError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONBoundsError(f"not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a backstop: the checks above come first
        raise JSONBoundsError(f"not valid JSON: {exc}") from None
