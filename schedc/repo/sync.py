"""`repo push` / `repo pull`: share one repository between machines through any git remote.

Pull merges, and refuses — without touching anything — when both sides changed the same
policy since they last agreed (its source, metadata or verification, not its performance
records: those are separate files and always merge). Git's own conflicts are caught too: the
merge is aborted and the policies named. Nothing is ever overwritten silently: `repo resolve
NAME... --ours|--theirs` pulls again keeping one side's version of the named conflicts (`take`).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field

import git

from schedc.repo import layout
from schedc.repo.entries import parse_model
from schedc.repo.gitstore import GitStore, RepoError, git_errors
from schedc.repo.models import PolicyMeta


@dataclass
class Conflict:
    """Both sides changed `name` since they last agreed: a policy (its name), or a file
    outside policies/ that git could not merge (its path; `kind` "file"). Each side says what
    it did to it since the merge base (`change`: added, modified, deleted)."""

    name: str
    ours: dict[str, object]
    theirs: dict[str, object]
    kind: str = "policy"  # policy | file

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "ours": self.ours, "theirs": self.theirs}


@dataclass
class SyncResult:
    action: str  # push: pushed | up-to-date;  pull: up-to-date | fast-forward | merged | conflict
    remote: str
    branch: str
    head: str | None
    changed: list[str] = field(default_factory=list)  # policies the pull brought in
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.conflicts

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "action": self.action,
            "remote": self.remote,
            "branch": self.branch,
            "head": self.head,
            "changed": self.changed,
            "conflicts": [c.to_json() for c in self.conflicts],
        }


def _remote(store: GitStore, name: str) -> git.Remote:
    try:
        return store.repo.remote(name)
    except ValueError:
        raise RepoError(
            f"the repository has no remote '{name}'",
            f"add one: git -C {store.root} remote add {name} URL (any git URL; a bare repository "
            "on a shared disk works too)",
            exit_code=2,
        ) from None


def _branch(store: GitStore, branch: str | None) -> str:
    if branch:
        return branch
    try:
        return store.repo.active_branch.name
    except TypeError:
        raise RepoError("HEAD is detached; pass --branch", exit_code=2) from None


def push(store: GitStore, remote: str = "origin", branch: str | None = None) -> SyncResult:
    _remote(store, remote)
    branch = _branch(store, branch)
    with store.lock(), git_errors():
        head = store.head()
        try:
            out = store.repo.git.push("--porcelain", remote, f"HEAD:refs/heads/{branch}")
        except git.GitCommandError as exc:
            text = f"{exc.stdout}\n{exc.stderr}"
            if "rejected" in text or "non-fast-forward" in text or "fetch first" in text:
                raise RepoError(
                    f"{remote}/{branch} has commits this repository does not have",
                    "run `schedc repo pull` first, then push again",
                ) from None
            raise RepoError(f"push to {remote} failed: {exc.stderr.strip()}") from None
    action = "up-to-date" if "[up to date]" in out else "pushed"
    return SyncResult(action, remote, branch, head)


SIDES = ("ours", "theirs")


def pull(
    store: GitStore,
    remote: str = "origin",
    branch: str | None = None,
    take: Mapping[str, str] | None = None,
) -> SyncResult:
    """Fetch and merge `remote`'s branch. Conflicts stop it with nothing merged, except those
    `take` names (a policy's name or a file's path → "ours" or "theirs"): their version from
    that side is kept and the merge committed, if nothing else conflicts. A name in `take`
    that is not a conflict is an error, before anything is merged."""
    take = dict(take or {})
    bad = sorted(side for side in take.values() if side not in SIDES)
    if bad:
        raise RepoError(f"a side is 'ours' or 'theirs', not {bad[0]!r}")
    _remote(store, remote)
    branch = _branch(store, branch)
    g = store.repo.git
    with store.lock(), git_errors():
        store.refuse_links(["."])
        dirty = store.dirty(["."])
        if dirty:
            raise RepoError(
                f"uncommitted changes: {', '.join(dirty[:5])}",
                f"commit or discard them first (git -C {store.root} status)",
            )
        try:
            g.fetch("--quiet", remote)
        except git.GitCommandError as exc:
            raise RepoError(f"fetch from {remote} failed: {exc.stderr.strip()}") from None
        theirs_ref = f"refs/remotes/{remote}/{branch}"
        if not store.has_commit(theirs_ref):  # the remote has no such branch yet
            return SyncResult("up-to-date", remote, branch, store.head())
        ours, theirs = store.commit("HEAD").hexsha, store.commit(theirs_ref).hexsha
        links = store.symlinks(theirs)  # before anything of theirs reaches the worktree
        if links:
            raise RepoError(
                f"refusing to merge {remote}/{branch}: {', '.join(links[:5])} "
                f"{'is a symbolic link' if len(links) == 1 else 'are symbolic links'}; "
                "nothing was merged",
                "a policy repository holds regular files only, and a link could point "
                "anywhere outside it: have the links removed on the remote, then pull again",
            )
        bases = store.repo.merge_base(ours, theirs)
        if not bases:
            raise RepoError(
                f"{remote}/{branch} shares no history with this repository",
                "clone the shared repository instead: schedc repo init --from URL",
            )
        base = bases[0].hexsha
        changed = _changed_policies(store, base, theirs)
        if base == theirs or base == ours:
            _refuse_takes(take, [], remote, branch)
        if base == theirs:
            return SyncResult("up-to-date", remote, branch, ours)
        if base == ours:
            with store.journal(["."], "pull"):
                g.merge("--ff-only", "--quiet", theirs)
            return SyncResult("fast-forward", remote, branch, store.head(), changed)
        conflicts = _policy_conflicts(store, base, ours, theirs)
        if take:
            return _merge_taking(
                store, remote, branch, base, ours, theirs, changed, conflicts, take
            )
        if conflicts:
            return SyncResult("conflict", remote, branch, ours, changed, conflicts)
        with store.journal(["."], "pull"):
            try:
                g.merge(
                    "--no-ff",
                    "--no-edit",
                    "-m",
                    f"merge {remote}/{branch}\n\nSchedc-Action: merge\n",
                    theirs,
                    env=store.identity().env(),
                )
            except git.GitCommandError as exc:
                unmerged = g.diff("--name-only", "--diff-filter=U").splitlines()
                if (store.git_dir / "MERGE_HEAD").exists():
                    g.merge("--abort")
                if not unmerged:  # not a conflict: a hook said no, git was killed, ...
                    raise RepoError(
                        f"merging {remote}/{branch} failed: "
                        f"{(exc.stderr or '').strip() or exc}; nothing was merged",
                        "`schedc repo fsck` says what is wrong",
                    ) from None
                names = sorted({n for p in unmerged if (n := layout.policy_of(p))})
                found = [
                    Conflict(n, _side(store, n, ours, base), _side(store, n, theirs, base))
                    for n in names
                ]
                found += [
                    Conflict(
                        p,
                        _file_side(store, p, ours, base),
                        _file_side(store, p, theirs, base),
                        "file",
                    )
                    for p in sorted(unmerged)
                    if layout.policy_of(p) is None
                ]
                return SyncResult("conflict", remote, branch, ours, changed, found)
        return SyncResult("merged", remote, branch, store.head(), changed)


def _refuse_takes(
    take: Mapping[str, str], conflicts: list[Conflict], remote: str, branch: str
) -> None:
    names = {c.name for c in conflicts}
    stray = sorted(set(take) - names)
    if stray:
        now = ", ".join(sorted(names)) or "none"
        raise RepoError(
            f"{', '.join(stray)}: not in conflict with {remote}/{branch} (conflicts: {now}); "
            "nothing was merged",
            "run `schedc repo pull` to see the conflicts, and name only those",
        )


def _merge_taking(
    store: GitStore,
    remote: str,
    branch: str,
    base: str,
    ours: str,
    theirs: str,
    changed: list[str],
    policy_conflicts: list[Conflict],
    take: Mapping[str, str],
) -> SyncResult:
    """The merge with the named conflicts settled by one side's version; aborted, with the
    conflicts still open reported, when anything else conflicts."""
    g = store.repo.git
    with store.journal(["."], "pull"):
        try:
            try:
                g.merge("--no-ff", "--no-commit", theirs, env=store.identity().env())
            except git.GitCommandError:
                pass  # conflicts: settled below, or reported
            unmerged = g.diff("--name-only", "--diff-filter=U").splitlines()
            if not (store.git_dir / "MERGE_HEAD").exists():
                raise RepoError(
                    f"merging {remote}/{branch} failed before it started; nothing was merged",
                    "`schedc repo fsck` says what is wrong",
                )
            file_conflicts = [
                Conflict(
                    p, _file_side(store, p, ours, base), _file_side(store, p, theirs, base), "file"
                )
                for p in sorted(unmerged)
                if layout.policy_of(p) is None
            ]
            git_policies = {n for p in unmerged if (n := layout.policy_of(p))}
            known = {c.name for c in policy_conflicts}
            policy_conflicts = policy_conflicts + [
                Conflict(n, _side(store, n, ours, base), _side(store, n, theirs, base))
                for n in sorted(git_policies - known)
            ]
            conflicts = policy_conflicts + file_conflicts
            _refuse_takes(take, conflicts, remote, branch)
            open_ = [c for c in conflicts if c.name not in take]
            if open_:
                g.merge("--abort")
                return SyncResult("conflict", remote, branch, ours, changed, open_)
            for c in conflicts:
                path = layout.policy_dir(c.name) if c.kind == "policy" else c.name
                _keep(store, path, ours if take[c.name] == "ours" else theirs)
            settled = "".join(f"Schedc-Resolved: {n} {side}\n" for n, side in sorted(take.items()))
            g.commit(
                "--no-verify",
                "-q",
                "-m",
                f"merge {remote}/{branch}\n\nSchedc-Action: merge\n{settled}",
                env=store.identity().env(),
            )
        except BaseException:
            if (store.git_dir / "MERGE_HEAD").exists():
                g.merge("--abort")
            raise
    return SyncResult("merged", remote, branch, store.head(), changed)


def _keep(store: GitStore, path: str, rev: str) -> None:
    """`path` (a file or a folder) as it is at `rev`, in the index and the worktree: absent
    when it is absent there."""
    g = store.repo.git
    g.rm("-r", "-q", "--cached", "--ignore-unmatch", "--", path)
    target = store.root / path
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    if g.ls_tree("--name-only", rev, "--", path).strip():
        g.checkout(rev, "--", path)


def _changed_policies(store: GitStore, old: str, new: str) -> list[str]:
    return sorted({n for p in store.changed_paths(old, new) if (n := layout.policy_of(p))})


def _edited(store: GitStore, base: str, head: str) -> set[str]:
    """Policies whose files other than performance records differ between base and head."""
    return {
        n
        for p in store.changed_paths(base, head)
        if not layout.is_record(p) and (n := layout.policy_of(p))
    }


def _policy_conflicts(store: GitStore, base: str, ours: str, theirs: str) -> list[Conflict]:
    both = _edited(store, base, ours) & _edited(store, base, theirs)
    conflicts = []
    for name in sorted(both):
        if _content(store, name, ours) != _content(store, name, theirs):
            conflicts.append(
                Conflict(name, _side(store, name, ours, base), _side(store, name, theirs, base))
            )
    return conflicts


def _content(store: GitStore, name: str, rev: str) -> dict[str, bytes]:
    blobs = store.read_many(rev, [layout.policy_dir(name)])
    return {p: d for p, d in blobs.items() if not layout.is_record(p)}


def _change(before: object, after: object) -> str:
    """What a side did to a file or policy since the merge base, by its content then and now
    (None: absent)."""
    if before is None:
        return "added"
    if after is None:
        return "deleted"
    return "modified" if before != after else "unchanged"


def _blob_id(store: GitStore, path: str, rev: str) -> str | None:
    try:
        return str(store.commit(rev).tree[path].hexsha)
    except KeyError:
        return None


def _file_side(store: GitStore, path: str, rev: str, base: str) -> dict[str, object]:
    now = _blob_id(store, path, rev)
    return {
        "commit": rev,
        "exists": now is not None,
        "change": _change(_blob_id(store, path, base), now),
    }


def _side(store: GitStore, name: str, rev: str, base: str) -> dict[str, object]:
    raw = store.read(layout.policy_file(name, layout.META), rev)
    before = _content(store, name, base) or None
    now = _content(store, name, rev) or None
    side: dict[str, object] = {
        "commit": rev,
        "exists": raw is not None,
        "change": _change(before, now),
    }
    if raw is not None:
        meta, _problem = parse_model(PolicyMeta, raw)
        side.update(
            version=meta.version if meta else None,
            content_hash=meta.content_hash if meta else None,
        )
    return side
