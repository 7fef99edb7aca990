"""Param values given when a policy is built for a run (`--set NAME=VALUE` on `verify`, `test`
and `bench`; `set` in MCP `verify_policy` and `test_policy`): each replaces its param's
default before the policy is lowered, so the object starts with it, exactly as a loader
writing the `const volatile` global before load would. A value is checked like the param's
own literal: its type (duration `5ms`, count `-3`, bool `true`) and its `in LOW..HIGH` range.
Errors (docs/errors.md) are at the param's line: the value on the command line is the mistake,
the param is what it is measured against.

    parse_set(text) -> (name, value text)     "slice=5ms" -> ("slice", "5ms")
    apply_sets(policy, sets, file) -> (values, diagnostics)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from schedc.diagnostics import Diagnostic, Severity
from schedc.dsl.ir import TypedPolicy
from schedc.dsl.language import MAX_NUMBER, Ty
from schedc.dsl.parser import duration_ns
from schedc.dsl.sema import format_ns

_INT = re.compile(r"-?\d{1,19}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXAMPLE = {
    Ty.DURATION: "a duration such as 5ms",
    Ty.INT: "an integer such as 3",
    Ty.BOOL: "true or false",
}


class SetError(ValueError):
    """`--set` given something that is not NAME=VALUE."""


def parse_set(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not _NAME.fullmatch(name) or not value:
        raise SetError(f"--set takes NAME=VALUE (e.g. --set slice=5ms), not '{text}'")
    return name, value


def _value(text: str, ty: Ty) -> int | None:
    """The value of `text` as a literal of type `ty` (durations in ns, bools 0/1), or None."""
    if ty == Ty.DURATION:
        ns = duration_ns(text)
        return ns if isinstance(ns, int) else None
    if ty == Ty.BOOL:
        return {"true": 1, "false": 0}.get(text)
    if ty == Ty.INT and _INT.fullmatch(text) and abs(int(text)) <= MAX_NUMBER:
        return int(text)  # 64-bit, as the parser takes an int literal
    return None


def _shown(value: int, ty: Ty) -> str:
    if ty == Ty.BOOL:
        return "true" if value else "false"
    return format_ns(value) if ty == Ty.DURATION else str(value)


def apply_sets(
    policy: TypedPolicy, sets: Sequence[str], file: str
) -> tuple[dict[str, str], list[Diagnostic]]:
    """Each NAME=VALUE of `sets` becomes its param's value in `policy` (changed in place);
    what was set (name -> value as written back), or the errors and nothing changed."""
    by_name = {p.name: p for p in policy.params}
    diags: list[Diagnostic] = []
    wanted: dict[str, int] = {}
    for text in sets:
        try:
            name, raw = parse_set(text)
        except SetError as exc:
            diags.append(Diagnostic(Severity.ERROR, "E123", str(exc), file, 1, 1))
            continue
        param = by_name.get(name)
        if param is None:
            known = ", ".join(sorted(by_name)) or "none"
            diags.append(
                Diagnostic(
                    Severity.ERROR,
                    "E123",
                    f"--set {name}=...: the policy has no param '{name}' (its params: {known})",
                    file,
                    1,
                    1,
                    hint="--set changes a `param` of the policy; declare it first: "
                    f"param {name} = VALUE",
                )
            )
            continue
        value = _value(raw, param.ty)
        if value is None:
            diags.append(
                Diagnostic.at(
                    Severity.ERROR,
                    "E124",
                    f"--set {name}={raw}: '{name}' is {param.ty.describe()} param, "
                    f"give {_EXAMPLE[param.ty]}",
                    file,
                    param.span,
                )
            )
            continue
        low, high = param.low, param.high
        if low is not None and high is not None and not low <= value <= high:
            diags.append(
                Diagnostic.at(
                    Severity.ERROR,
                    "E125",
                    f"--set {name}={raw}: outside the param's range "
                    f"{_shown(low, param.ty)}..{_shown(high, param.ty)}",
                    file,
                    param.span,
                    hint="the range is the param's `in LOW..HIGH`: a value the policy's "
                    "author allows",
                )
            )
            continue
        wanted[name] = value
    if diags:
        return {}, diags
    for name, value in wanted.items():
        by_name[name].value = value
    return {n: _shown(v, by_name[n].ty) for n, v in wanted.items()}, []
