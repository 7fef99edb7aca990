"""Diagnostics as SARIF 2.1.0, the format code-scanning services read.

One run, one tool (schedc), one result per diagnostic. Paths under `root` are written relative
to it (with the SRCROOT base id) so that results line up with the repository's files; columns
follow SARIF's convention, where the end column is the one just past the region.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from schedc import __version__
from schedc.diagnostics import Diagnostic, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


@dataclass(frozen=True)
class SarifRule:
    id: str
    name: str
    summary: str
    level: str = "error"
    help_uri: str | None = None


def sarif_log(
    diagnostics: Iterable[Diagnostic],
    rules: Iterable[SarifRule],
    *,
    root: Path | None = None,
    tool_name: str = "schedc",
) -> dict[str, object]:
    """The SARIF document for `diagnostics`. Codes without a rule in `rules` get a bare one."""
    diags = list(diagnostics)
    table = {r.id: r for r in rules}
    for d in diags:
        table.setdefault(d.code, SarifRule(d.code, d.code, d.code, _LEVELS[d.severity]))
    ordered = sorted(table.values(), key=lambda r: r.id)
    index = {r.id: i for i, r in enumerate(ordered)}
    base = (root or Path.cwd()).resolve()
    run: dict[str, object] = {
        "tool": {
            "driver": {
                "name": tool_name,
                "version": __version__,
                "informationUri": "https://docs.kernel.org/scheduler/sched-ext.html",
                "rules": [_rule(r) for r in ordered],
            }
        },
        "originalUriBaseIds": {"SRCROOT": {"uri": base.as_uri() + "/"}},
        "results": [_result(d, index[d.code], base) for d in diags],
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _rule(rule: SarifRule) -> dict[str, object]:
    data: dict[str, object] = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "defaultConfiguration": {"level": rule.level},
    }
    if rule.help_uri:
        data["helpUri"] = rule.help_uri
    return data


def _result(d: Diagnostic, rule_index: int, base: Path) -> dict[str, object]:
    text = d.message if not d.hint else f"{d.message}\nhint: {d.hint}"
    result: dict[str, object] = {
        "ruleId": d.code,
        "ruleIndex": rule_index,
        "level": _LEVELS[d.severity],
        "message": {"text": text},
    }
    if d.file:
        result["locations"] = [{"physicalLocation": _physical(d, base)}]
    return result


def _physical(d: Diagnostic, base: Path) -> dict[str, object]:
    physical: dict[str, object] = {"artifactLocation": _artifact(Path(d.file or ""), base)}
    if d.line is not None:
        region: dict[str, int] = {"startLine": d.line}
        if d.column is not None:
            region["startColumn"] = d.column
        if d.end_line is not None:
            region["endLine"] = d.end_line
        if d.end_column is not None and d.column is not None:
            region["endColumn"] = d.end_column + 1  # SARIF: one past the last character
        physical["region"] = region
    return physical


def _artifact(path: Path, base: Path) -> dict[str, str]:
    absolute = path.resolve()
    try:
        relative = absolute.relative_to(base)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": relative.as_posix(), "uriBaseId": "SRCROOT"}
