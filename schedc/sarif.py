"""Diagnostics as SARIF 2.1.0, the format code-scanning services read.

One run, one tool (schedc), one result per diagnostic. The output validates against the
official 2.1.0 schema (tests/data/sarif/, tests/test_sarif.py):

- every rule has a short description, a full description and help (text and markdown), cut
  from the code's section of docs/errors.md or docs/checks.md (`code_docs.py`); `helpUri` is
  that section's absolute URI under `base_uri` (the `--sarif-base-uri` option, the
  `sarif_base_uri` setting) and is left out when none is given: a relative link is no URI;
- paths under `root` (`--sarif-root`, default: the working folder) are written relative to it
  with the base id SRCROOT, which `originalUriBaseIds` maps to `root`'s file URI, so results
  line up with the repository's files; other paths are absolute file URIs;
- each result has a `partialFingerprints` entry that stays the same across runs and when lines
  are inserted above it: a hash of the rule, the file's URI and the text of the line it is on
  (blanks collapsed), with an ordinal for the same text found again;
- columns follow SARIF's convention, where the end column is the one just past the region.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from schedc import __version__
from schedc.code_docs import CodeDoc, code_docs
from schedc.diagnostics import Diagnostic, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "SRCROOT"
FINGERPRINT = "schedcLineHash/v1"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


@dataclass(frozen=True)
class SarifRule:
    """A rule's metadata. `summary` is the one-line description; the long texts come from the
    code's documentation when `sarif_log` writes the rule."""

    id: str
    name: str
    summary: str
    level: str = "error"
    help_uri: str | None = None


def base_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be the base of the help URIs (None: it can): SARIF's helpUri is an
    absolute URI, so the base needs a scheme and, but for file:, a host."""
    parts = urlsplit(uri)
    if not parts.scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme):
        return f"'{uri}' is not an absolute URI (it has no scheme such as https:)"
    if parts.scheme != "file" and not parts.netloc:
        return f"'{uri}' is not an absolute URI (it has no host)"
    if " " in uri:
        return f"'{uri}' has a blank in it (write it as %20)"
    return None


def help_uri(doc: CodeDoc, base_uri: str) -> str:
    """The absolute URI of a code's section: `base_uri` is the folder the documents are in."""
    base = base_uri if base_uri.endswith("/") else base_uri + "/"
    return urljoin(base, doc.document) + "#" + doc.anchor


def _kebab(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words[:8]) or "rule"


def sarif_log(
    diagnostics: Iterable[Diagnostic],
    rules: Iterable[SarifRule] = (),
    *,
    root: Path | None = None,
    base_uri: str | None = None,
    tool_name: str = "schedc",
    docs: dict[str, CodeDoc] | None = None,
) -> dict[str, object]:
    """The SARIF document for `diagnostics`: `rules` (with the K catalogue's names and
    summaries) and a rule for every other code a diagnostic has, each described by its section
    of the docs (`docs`, default `code_docs()`)."""
    diags = list(diagnostics)
    known = code_docs() if docs is None else docs
    table = {r.id: r for r in rules}
    for d in diags:
        if d.code not in table:
            doc = known.get(d.code)
            title = doc.title if doc else d.code
            table[d.code] = SarifRule(d.code, _kebab(title), title, _LEVELS[d.severity])
    ordered = sorted(table.values(), key=lambda r: r.id)
    index = {r.id: i for i, r in enumerate(ordered)}
    base = (root or Path.cwd()).resolve()
    lines = _SourceLines()
    seen: dict[str, int] = {}
    results = []
    for d in diags:
        result = _result(d, index[d.code], base)
        key = _fingerprint(d, result, lines)
        seen[key] = seen.get(key, 0) + 1
        result["partialFingerprints"] = {FINGERPRINT: f"{key}:{seen[key]}"}
        results.append(result)
    run: dict[str, object] = {
        "tool": {
            "driver": {
                "name": tool_name,
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": "https://docs.kernel.org/scheduler/sched-ext.html",
                "rules": [_rule(r, known.get(r.id), base_uri) for r in ordered],
            }
        },
        "originalUriBaseIds": {SRCROOT: {"uri": base.as_uri().rstrip("/") + "/"}},
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _rule(rule: SarifRule, doc: CodeDoc | None, base_uri: str | None) -> dict[str, object]:
    if doc is not None and base_uri and not rule.help_uri:
        rule = replace(rule, help_uri=help_uri(doc, base_uri))
    data: dict[str, object] = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
    }
    if doc is not None:
        data["fullDescription"] = {"text": doc.description or doc.title}
        data["help"] = {
            "text": f"{rule.id}: {doc.title}\n\n{doc.text}",
            "markdown": f"**{rule.id}: {doc.title}**\n\n{doc.markdown}",
        }
    else:  # no docs at hand (an installation without them): the summary is all there is
        data["fullDescription"] = {"text": rule.summary}
        data["help"] = {"text": rule.summary}
    if rule.help_uri:
        data["helpUri"] = rule.help_uri
    data["defaultConfiguration"] = {"level": rule.level}
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
    return {"uri": relative.as_posix(), "uriBaseId": SRCROOT}


class _SourceLines:
    """The lines of the files the diagnostics are on, each file read once."""

    def __init__(self) -> None:
        self._files: dict[str, list[str] | None] = {}

    def line(self, file: str, number: int) -> str | None:
        if file not in self._files:
            try:
                text = Path(file).read_text(encoding="utf-8", errors="replace")
                self._files[file] = text.splitlines()
            except OSError:
                self._files[file] = None
        lines = self._files[file]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


def _fingerprint(d: Diagnostic, result: dict[str, object], lines: _SourceLines) -> str:
    """What stays the same when the finding moves: the rule, the file's URI and the text of
    its line with blanks collapsed (the message when there is no line to read)."""
    uri = ""
    if d.file:
        location = result["locations"][0]["physicalLocation"]  # type: ignore[index]
        uri = location["artifactLocation"]["uri"]
    text = lines.line(d.file, d.line) if d.file and d.line is not None else None
    anchor = " ".join(text.split()) if text is not None else d.message
    digest = hashlib.sha256("\0".join((d.code, uri, anchor)).encode()).hexdigest()
    return digest[:32]
