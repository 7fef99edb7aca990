"""`repo log`, `show` and `diff`: a policy's history through gitpython.

A revision is a git revision (a commit, `HEAD~2`, a tag, `origin/main`) or `vN`, the commit
that made version N of that policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import git

from schedc.repo import layout
from schedc.repo.entries import Entry, load_entry, verification_of
from schedc.repo.gitstore import GitStore, RepoError

_VERSION = re.compile(r"v(\d+)")
_TRAILER = re.compile(r"^Schedc-([A-Za-z-]+): (.*)$", re.M)


@dataclass
class LogEntry:
    commit: str
    date: str
    author: str
    summary: str
    action: str | None
    version: int | None
    parents: list[str]  # two for a merge: this side's commit, then the merged side's

    def to_json(self) -> dict[str, object]:
        return self.__dict__.copy()


def trailers(message: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in _TRAILER.findall(message):
        found.setdefault(key.lower(), []).append(value.strip())
    return found


def _commits(store: GitStore, name: str) -> list[git.Commit]:
    if store.head() is None:
        return []
    # --full-history: both sides of a merge, also when the merge kept one side unchanged
    # (git's default would hide the side it did not keep).
    return list(
        store.repo.iter_commits("HEAD", paths=layout.policy_dir(name), full_history=True)
    )


def policy_log(store: GitStore, name: str) -> list[LogEntry]:
    commits = _commits(store, name)
    if not commits:
        raise RepoError(f"no policy named '{name}' has any history here", "see `schedc repo list`")
    out = []
    for c in commits:
        message = str(c.message)
        found = trailers(message)
        version = found.get("version", [None])[0]
        out.append(
            LogEntry(
                commit=c.hexsha,
                date=c.committed_datetime.isoformat(),
                author=str(c.author.name),
                summary=message.splitlines()[0] if message else "",
                action=found.get("action", [None])[0],
                version=int(version) if version and version.isdigit() else None,
                parents=[p.hexsha for p in c.parents],
            )
        )
    return out


def resolve(store: GitStore, name: str, rev: str | None) -> str:
    """A commit sha for `rev` (None: HEAD); `vN` is version N of `name`."""
    if rev is None:
        rev = "HEAD"
    m = _VERSION.fullmatch(rev)
    if m:
        wanted = m.group(1)
        for c in _commits(store, name):
            found = trailers(str(c.message))
            if found.get("version") == [wanted] and found.get("policy") == [name]:
                return c.hexsha
        raise RepoError(f"'{name}' has no version {wanted}", f"see `schedc repo log {name}`")
    return store.commit(rev).hexsha


def split_spec(spec: str) -> tuple[str, str | None]:
    name, sep, rev = spec.partition("@")
    if sep and not rev:
        raise RepoError(f"'{spec}': give NAME or NAME@REV", exit_code=2)
    return name, rev or None


def show_policy(store: GitStore, spec: str) -> tuple[Entry, str]:
    name, rev = split_spec(spec)
    sha = resolve(store, name, rev)
    entry = load_entry(store, name, sha)
    if entry is None:
        where = f" at {rev}" if rev else ""
        raise RepoError(f"no policy named '{name}'{where}", "see `schedc repo list`")
    return entry, sha


def show_json(entry: Entry, sha: str) -> dict[str, object]:
    meta = entry.meta
    source = None
    if meta is not None and meta.source:
        raw = entry.files.get(meta.source)
        source = raw.decode("utf-8", "replace") if raw is not None else None
    report, report_problem = verification_of(entry)
    best = entry.best()
    return {
        "ok": entry.ok,
        "name": entry.name,
        "commit": sha,
        "meta": meta.model_dump(mode="json") if meta else None,
        "source": source,
        "verification": report.model_dump(mode="json") if report else None,
        "records": [r.model_dump(mode="json") for r in entry.records],
        "best": best.model_dump(mode="json") if best else None,
        "problems": [{"path": p, "problem": w} for p, w in entry.problems]
        + ([{"path": layout.VERIFICATION, "problem": report_problem}] if report_problem else []),
    }


def policy_diff(store: GitStore, name: str, a: str, b: str | None) -> str:
    old = resolve(store, name, a)
    new = resolve(store, name, b)
    return str(store.repo.git.diff(old, new, "--", layout.policy_dir(name)))
