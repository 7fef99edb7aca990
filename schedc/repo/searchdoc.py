"""What the search index stores for one policy: the text of each FTS5 column, the facets,
the best result, and how free text becomes an FTS5 query."""

from __future__ import annotations

import re

from schedc.repo.entries import Entry, verification_of
from schedc.repo.models import PerformanceRecord

COLUMNS = ("name", "description", "tags", "workloads", "tunables", "notes")
WEIGHTS = (10.0, 3.0, 5.0, 4.0, 1.0, 1.0)  # bm25 column weights, in COLUMNS order


def kernel_facets(releases: set[str]) -> set[str]:
    """Each release and its series: 6.12.117-foo is also found as 6.12 (and 6.12.117)."""
    out = set()
    for release in releases:
        out.add(release)
        m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
        if m:
            out.add(f"{m.group(1)}.{m.group(2)}")
            if m.group(3):
                out.add(f"{m.group(1)}.{m.group(2)}.{m.group(3)}")
    return out


def document(entry: Entry) -> tuple[str, ...]:
    """The text of each column, in COLUMNS order."""
    meta = entry.meta
    assert meta is not None
    workloads = [*meta.workloads]
    for r in entry.records:
        workloads += [r.workload, r.workload_description, r.metric]
        if r.baseline_scheduler:
            workloads.append(r.baseline_scheduler)
    tunables = [f"{t.name} {t.description}" for t in meta.tunables]
    notes = [meta.kind, meta.parent or ""]
    if meta.upstream:
        up = meta.upstream
        notes += [up.binary, up.language, up.maturity, up.usage, up.notes]
    return (
        meta.name,
        meta.description,
        " ".join(meta.tags),
        " ".join(dict.fromkeys(w for w in workloads if w)),
        " ".join(tunables),
        " ".join(n for n in notes if n),
    )


def best_json(record: PerformanceRecord) -> dict[str, object]:
    keys = (
        "id",
        "workload",
        "metric",
        "unit",
        "direction",
        "median",
        "n",
        "baseline_scheduler",
        "baseline_median",
        "improvement",
        "kernel",
        "date",
        "policy_version",
    )
    data = record.model_dump(mode="json")
    return {**{k: data[k] for k in keys}, "emulated": record.is_emulated}


def fts_query(text: str) -> str | None:
    """Free text → an FTS5 query: every word may match (OR; bm25 favours documents that have
    more of them), the last one also as a prefix. Quoting keeps FTS5 syntax out of user text."""
    words = re.findall(r"\w+", text.lower())
    if not words:
        return None
    terms = [f'"{w}"' for w in words]
    if len(words[-1]) >= 3:
        terms[-1] = f'"{words[-1]}"*'
    return " OR ".join(terms)


def behaviour_of(entry: Entry) -> list[dict[str, object]]:
    """The policy's stored behaviour reports in brief (scenario, kernel, ok), for results.
    Only reports of the entry's current source count; an unreadable verification.json has
    none (fsck reports it)."""
    meta = entry.meta
    report, _problem = verification_of(entry)
    if report is None or meta is None:
        return []
    return [
        {
            "scenario": r.scenario,
            "kernel": r.kernel,
            "ok": r.ok,
            "held": sum(1 for e in r.expectations if e.ok),
            "expectations": len(r.expectations),
        }
        for r in report.behaviour
        if r.content_hash == meta.content_hash
    ]


def behaviour_facets(behaviour: list[dict[str, object]]) -> set[tuple[str, str]]:
    """`passing` when the policy has reports and every one of them passed; `passing@K` for
    each kernel facet K whose reports (those on a kernel of that series) all passed, so that
    --behaviour-passing --kernel 6.12 finds a policy whose report on 6.12.3 passed. One failed
    report keeps the policy out: failing evidence is never outweighed by passing evidence."""
    if not behaviour:
        return set()
    out: set[tuple[str, str]] = set()
    if all(b["ok"] for b in behaviour):
        out.add(("behaviour", "passing"))
    verdicts: dict[str, list[bool]] = {}
    for b in behaviour:
        for k in kernel_facets({str(b["kernel"])}):
            verdicts.setdefault(k, []).append(bool(b["ok"]))
    out |= {("behaviour", f"passing@{k}") for k, oks in verdicts.items() if all(oks)}
    return out
