"""`repo rm NAME`: take a policy out of the repository in one commit. Its history stays in git
(`repo show NAME@REV` still reads an old version), so nothing is lost; a policy others name as
their parent is kept unless asked (`force`), because their lineage would point at nothing."""

from __future__ import annotations

from dataclasses import dataclass

from schedc.repo import layout
from schedc.repo.entries import load_entries
from schedc.repo.gitstore import Change, GitStore, RepoError


@dataclass(frozen=True)
class Removed:
    name: str
    commit: str
    files: list[str]
    orphans: list[str]  # policies whose parent it was (removed with force)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "removed": self.name,
            "commit": self.commit,
            "files": self.files,
            "orphans": self.orphans,
        }


def remove_policy(
    store: GitStore,
    name: str,
    *,
    force: bool = False,
    reason: str | None = None,
    author: str | None = None,
) -> Removed:
    scope = [layout.policy_dir(name)]
    found: dict[str, list[str]] = {}

    def plan() -> Change:
        files = sorted(store.read_many("HEAD", scope))
        if not files:
            raise RepoError(
                f"no policy '{name}' in the repository", "`schedc repo list` shows the names"
            )
        children = sorted(
            e.name
            for e in load_entries(store)
            if e.meta and e.meta.parent and e.meta.parent.split("@")[0] == name and e.name != name
        )
        if children and not force:
            raise RepoError(
                f"'{name}' is the parent of {', '.join(children)}; nothing was removed",
                "remove those first, or pass --force to keep their lineage pointing at a "
                "removed policy (its history stays in git)",
            )
        found.update(files=files, orphans=children)
        why = f"\n\n{reason.strip()}" if reason and reason.strip() else ""
        message = f"rm {name}{why}\n\nSchedc-Action: rm\nSchedc-Policy: {name}\n"
        return Change({}, message, files)

    commit = store.apply(scope, plan, store.identity(author))
    assert commit is not None  # the plan removes at least one tracked file
    folder = store.root / scope[0]
    for sub in sorted(folder.glob("**/"), reverse=True):  # the emptied folders, deepest first
        if not sub.is_symlink() and not any(sub.iterdir()):
            sub.rmdir()
    return Removed(name, commit, found["files"], found["orphans"])
