"""`repo fsck`: everything wrong with the repository at HEAD (and in the worktree), as
diagnostics. It reads; `repair` (fsck --repair) undoes only what an interrupted schedc or git
left behind. Codes:

R101 uncommitted changes          R106 binary file in a policy dir   R111 parent not in repo
R102 invalid policy dir name      R107 source file missing           R112 stale generated C
R103 meta.json missing/invalid    R108 source edited by hand         R113 record for a newer version
R104 performance record invalid   R109 generated C missing           R114 not a policy directory
R105 unexpected file              R110 verification.json problem     R100 repository marker
R115 symbolic link                R116 stale git lock file           R117 interrupted change
"""

from __future__ import annotations

import hashlib

from schedc.diagnostics import Diagnostic, Severity
from schedc.repo import bounded, layout
from schedc.repo.entries import Entry, build_entries, verification_of
from schedc.repo.gitstore import SYMLINK_MODE, GitStore
from schedc.repo.ingest import stored_c
from schedc.repo.models import SCHEMA_VERSION, name_problem


def _d(severity: Severity, code: str, path: str, message: str, hint: str | None = None):
    return Diagnostic(severity, code, message, path, hint=hint)


def _err(code: str, path: str, message: str, hint: str | None = None) -> Diagnostic:
    return _d(Severity.ERROR, code, path, message, hint)


def _warn(code: str, path: str, message: str, hint: str | None = None) -> Diagnostic:
    return _d(Severity.WARNING, code, path, message, hint)


REPAIR_HINT = "run `schedc repo fsck --repair` (or any schedc write) to undo it"


def repair(store: GitStore) -> list[str]:
    """Take the lock and undo what a killed schedc or git left: stale git lock files, a
    half-written change (its folders back to HEAD). Committed data and changes schedc did not
    start are never touched. Returns what was done."""
    with store.lock():
        pass  # taking the lock recovers (GitStore.recover)
    return list(store.notices)


def fsck(store: GitStore, deep: bool = False) -> tuple[list[Diagnostic], int]:
    """(findings, number of policies looked at)."""
    found = _marker(store)
    found += _interrupted(store)
    dirty = store.dirty(["."])
    if dirty:
        found.append(
            _warn(
                "R101",
                dirty[0],
                f"{len(dirty)} uncommitted change(s) in the worktree: {', '.join(dirty[:5])}",
                f"schedc writes only through commits; inspect with git -C {store.root} status "
                "and commit or discard them (git checkout -- PATH; git clean -fd PATH)",
            )
        )
    head = store.head()
    committed_links = set(store.symlinks(head)) if head else set()
    for path in sorted(committed_links | set(store.worktree_links())):
        where = "committed" if path in committed_links else "in the worktree"
        found.append(
            _err(
                "R115",
                path,
                f"a symbolic link ({where}): the repository holds regular files only, and "
                "schedc refuses to read or write through links",
                f"remove it: git -C {store.root} rm PATH (then commit), or delete it",
            )
        )
    if head is None:
        return found, 0
    refused: dict[str, str] = {}
    blobs = store.read_many(head, None, refused)
    for path in sorted(blobs):
        if layout.policy_of(path) is None and path.startswith(f"{layout.POLICIES}/"):
            found.append(_warn("R114", path, "a file directly under policies/ is not a policy"))
    entries = build_entries(blobs, refused)
    names = {e.name for e in entries}
    for entry in entries:
        found += _policy(entry, names, deep, refused)
    return found, len(entries)


def _interrupted(store: GitStore) -> list[Diagnostic]:
    """What a killed writer left: only while no writer holds the lock (a live writer's lock
    files and journal are not stale)."""
    out: list[Diagnostic] = []
    with store.lock_if_free() as free:
        if not free:
            return out
        busy = store.git_processes()
        for rel in [] if busy else store.stale_git_locks():
            out.append(
                _err(
                    "R116",
                    f".git/{rel}",
                    "a stale git lock file: git was killed while it held it, and every git "
                    "command that writes now fails",
                    REPAIR_HINT,
                )
            )
        scope = store.pending()
        if scope is not None:
            dirty = store.dirty(scope)
            left = f": {', '.join(dirty[:5])} uncommitted" if dirty else ""
            out.append(
                _err(
                    "R117",
                    scope[0],
                    f"a change to {', '.join(scope)} was interrupted before it committed{left}",
                    REPAIR_HINT,
                )
            )
    return out


def _marker(store: GitStore) -> list[Diagnostic]:
    if store.read_mode(layout.MARKER) == SYMLINK_MODE:
        return [_err("R100", layout.MARKER, "the repository marker is a symbolic link")]
    raw = store.read(layout.MARKER)
    if raw is None:
        return [_err("R100", layout.MARKER, "the repository marker is not committed")]
    try:
        version = bounded.loads(raw)["schema_version"]
    except (ValueError, KeyError, TypeError):
        return [_err("R100", layout.MARKER, "the repository marker is not valid JSON")]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        return [_err("R100", layout.MARKER, f"written by a newer schedc (schema {version})")]
    return []


def _policy(entry: Entry, names: set[str], deep: bool, refused: dict[str, str]) -> list[Diagnostic]:
    base = layout.policy_dir(entry.name)
    out: list[Diagnostic] = []
    problem = name_problem(entry.name)
    if problem:
        out.append(_err("R102", base, problem, "rename the folder with git mv"))
    for path, what in entry.problems:
        if path in refused and what.startswith("a symbolic link"):
            continue  # reported as R115 with every other link
        code = "R104" if f"/{layout.PERF}/" in path else "R103"
        out.append(_err(code, path, what, "fix the file by hand, or restore it with git"))
    out += _files(entry)
    meta = entry.meta
    if meta is None:
        return out
    if meta.kind != "catalog":
        out += _source(entry, deep)
    if meta.parent and meta.parent.split("@")[0] not in names:
        out.append(_warn("R111", f"{base}/{layout.META}", f"parent '{meta.parent}' is not here"))
    for record in entry.records:
        if record.policy_version is not None and record.policy_version > meta.version:
            out.append(
                _err(
                    "R113",
                    layout.record_file(entry.name, record.id),
                    f"measures version {record.policy_version}, but the policy is at version "
                    f"{meta.version}",
                )
            )
    return out


def _files(entry: Entry) -> list[Diagnostic]:
    out = []
    for rel, data in sorted(entry.files.items()):
        path = f"{layout.policy_dir(entry.name)}/{rel}"
        if b"\0" in data:
            out.append(
                _err(
                    "R106",
                    path,
                    "binary file: the repository holds text only",
                    "remove it (git rm); objects are rebuilt from the source",
                )
            )
        elif rel not in layout.KNOWN_FILES and not (
            rel.startswith(f"{layout.PERF}/") and rel.endswith(".json") and rel.count("/") == 1
        ):
            out.append(_warn("R105", path, "a file schedc does not know"))
    return out


def _source(entry: Entry, deep: bool) -> list[Diagnostic]:
    meta = entry.meta
    assert meta is not None and meta.source is not None
    base = layout.policy_dir(entry.name)
    out = []
    raw = entry.files.get(meta.source)
    if raw is None:
        return [_err("R107", f"{base}/{meta.source}", "the source file is missing")]
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if digest != meta.content_hash:
        out.append(
            _err(
                "R108",
                f"{base}/{meta.source}",
                "the source does not match meta.json's content_hash: it was edited without "
                "`schedc repo add`, so it was never compiled, checked or verified",
                f"re-add it: schedc repo add {base}/{meta.source} --name {entry.name}",
            )
        )
    report, problem = verification_of(entry)
    if problem:
        out.append(_err("R110", f"{base}/{layout.VERIFICATION}", problem))
    elif report is None:
        out.append(_warn("R110", f"{base}/{layout.VERIFICATION}", "missing"))
    if meta.kind == "dsl":
        generated = entry.files.get(layout.GENERATED)
        if generated is None:
            out.append(_warn("R109", f"{base}/{layout.GENERATED}", "the generated C is missing"))
        elif deep:
            out += _stale(entry.name, raw, generated)
    return out


def _stale(name: str, source: bytes, generated: bytes) -> list[Diagnostic]:
    """--deep: does this compiler still accept the DSL, and produce the same C?"""
    path = layout.policy_file(name, layout.DSL_SOURCE)
    text = source.decode("utf-8", "replace")
    generated_now = stored_c(text)  # as `repo add` stores it
    if generated_now is None:
        return [
            _err(
                "R112",
                path,
                "this schedc no longer accepts the policy",
                f"schedc check {path} shows why",
            )
        ]
    if generated_now.encode() != generated:
        return [
            _warn(
                "R112",
                layout.policy_file(name, layout.GENERATED),
                "differs from what this schedc generates (compiler changed)",
                "re-add the policy to refresh it",
            )
        ]
    return []
