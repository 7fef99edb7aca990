"""Policy entries as read from a revision: the models, or the reasons they could not be read.

Reading never raises for a broken entry: a malformed meta.json or record comes back as a
problem string, so `list`, `search` and `fsck` can report it and carry on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schedc.repo import bounded, layout
from schedc.repo.bounded import JSONBoundsError
from schedc.repo.gitstore import GitStore
from schedc.repo.models import PerformanceRecord, PolicyMeta, VerificationReport

M = TypeVar("M", bound=BaseModel)
V = TypeVar("V")


@dataclass
class Entry:
    name: str
    meta: PolicyMeta | None = None
    records: list[PerformanceRecord] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, what is wrong)
    files: dict[str, bytes] = field(default_factory=dict)  # file name in the policy dir → data

    @property
    def ok(self) -> bool:
        return self.meta is not None

    def best(self, workload: str | None = None) -> PerformanceRecord | None:
        """The record with the largest improvement over its baseline (optionally for one
        workload); without baselines, the most recent record."""
        pool = [r for r in self.records if workload is None or r.workload == workload]
        with_gain = [r for r in pool if r.improvement is not None]
        if with_gain:
            return max(with_gain, key=lambda r: (r.improvement, r.date))
        return max(pool, key=lambda r: r.date) if pool else None


def describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:4]:
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            parts.append(f"{where}: {err['msg']}")
        more = len(exc.errors()) - 4
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    return str(exc)


def parse_model(model: type[M], raw: bytes) -> tuple[M | None, str | None]:
    """The model, or why not; never raises for bad data (size, depth and number bounds
    included: see bounded.loads)."""
    try:
        data = bounded.loads(raw)
    except JSONBoundsError as exc:
        return None, str(exc)
    try:
        return model.model_validate(data), None
    except ValidationError as exc:
        return None, describe(exc)
    except (ValueError, RecursionError) as exc:  # a validator's own error, or too deep
        return None, f"invalid: {exc}"


def build_entry(
    name: str, files: Mapping[str, bytes], refused: Mapping[str, str] | None = None
) -> Entry:
    """An entry from its files (paths relative to the policy dir, e.g. 'perf/<id>.json').
    `refused`: files of the entry that were not read (a symbolic link, too large), with why
    ('' for the policy folder itself); such an entry is broken: readers skip it."""
    entry = Entry(name, files=dict(files))
    base = layout.policy_dir(name)
    if refused:
        for rel, why in sorted(refused.items()):
            entry.problems.append((f"{base}/{rel}" if rel else base, why))
        return entry
    raw = files.get(layout.META)
    if raw is None:
        entry.problems.append((f"{base}/{layout.META}", "missing"))
    else:
        meta, problem = parse_model(PolicyMeta, raw)
        if problem:
            entry.problems.append((f"{base}/{layout.META}", problem))
        elif meta is not None and meta.name != name:
            entry.problems.append(
                (f"{base}/{layout.META}", f"names '{meta.name}' but lives in {base}/")
            )
        else:
            entry.meta = meta
    for rel, data in sorted(files.items()):
        if not (rel.startswith(f"{layout.PERF}/") and rel.endswith(".json")):
            continue
        record, problem = parse_model(PerformanceRecord, data)
        if problem or record is None:
            entry.problems.append((f"{base}/{rel}", problem or "unreadable"))
        elif record.policy != name or f"{layout.PERF}/{record.id}.json" != rel:
            entry.problems.append((f"{base}/{rel}", "policy or id does not match the file path"))
        else:
            entry.records.append(record)
    return entry


def group_blobs(blobs: Mapping[str, V], folders: bool = False) -> dict[str, dict[str, V]]:
    """Repository paths → {policy name: {path inside its dir: data}}. `folders`: a path that
    is a policy folder itself (a symbolic link in its place) comes back under ''."""
    grouped: dict[str, dict[str, V]] = {}
    for path, data in blobs.items():
        parts = PurePosixPath(path).parts
        if folders and len(parts) == 2 and parts[0] == layout.POLICIES:
            grouped.setdefault(parts[1], {})[""] = data
            continue
        name = layout.policy_of(path)
        if name is None:
            continue
        inner = str(PurePosixPath(*parts[2:]))
        grouped.setdefault(name, {})[inner] = data
    return grouped


def build_entries(blobs: Mapping[str, bytes], refused: Mapping[str, str]) -> list[Entry]:
    """Entries from `GitStore.read_many`'s blobs and the paths it refused to read."""
    grouped = group_blobs(blobs)
    bad = group_blobs(refused, folders=True)
    return [
        build_entry(name, grouped.get(name, {}), bad.get(name))
        for name in sorted(set(grouped) | set(bad))
    ]


def load_entries(store: GitStore, rev: str = "HEAD", names: list[str] | None = None) -> list[Entry]:
    paths = [layout.policy_dir(n) for n in names] if names is not None else None
    if paths == []:
        return []
    refused: dict[str, str] = {}
    blobs = store.read_many(rev, paths, refused)
    return build_entries(blobs, refused)


def load_entry(store: GitStore, name: str, rev: str = "HEAD") -> Entry | None:
    found = load_entries(store, rev, [name])
    return found[0] if found else None


def verification_of(entry: Entry) -> tuple[VerificationReport | None, str | None]:
    raw = entry.files.get(layout.VERIFICATION)
    if raw is None:
        return None, None
    return parse_model(VerificationReport, raw)
