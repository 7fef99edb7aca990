"""`repo rm NAME`: one commit takes the policy out; its history stays readable; a parent of
other policies is kept unless --force; nothing changes on a refusal."""

from __future__ import annotations

import json

from schedc.repo import layout
from schedc.repo.gitstore import GitStore
from tests import test_repo_support as support
from tests.test_repo_support import cli, git, is_clean, record_args, synthetic

repo_env = support.repo_env
store = support.store  # fixtures


def at(repo: GitStore, *args: str):
    return cli(*args, "--repo", str(repo.root))


def _child_of(store: GitStore, name: str, parent: str) -> None:
    synthetic(store, name, f"derived from {parent}")
    meta = store.root / "policies" / name / "meta.json"
    data = json.loads(meta.read_text())
    data["parent"] = parent
    meta.write_text(json.dumps(data, indent=2) + "\n")
    git(store.root, "commit", "-q", "-am", f"{name}'s parent")


def test_rm_removes_every_file_in_one_commit_and_keeps_the_history(store: GitStore):
    synthetic(store, "old", "an old policy")
    assert at(store, *record_args("old", "build", "9", "10")).code == 0
    before = store.head()
    ran = at(store, "rm", "old", "--reason", "superseded by new", "--format", "json")
    assert ran.code == 0, ran.err
    out = ran.result()
    assert out["removed"] == "old" and "policies/old/meta.json" in out["files"]
    assert any(layout.is_record(f) for f in out["files"])  # its performance records too
    assert not (store.root / "policies" / "old").exists()
    assert "old" not in at(store, "list").out
    assert is_clean(store.root)
    body = git(store.root, "log", "-1", "--format=%B")
    assert body.startswith("rm old\n\nsuperseded by new") and "Schedc-Action: rm" in body
    shown = at(store, "show", f"old@{before[:12]}", "--format", "json")
    assert shown.code == 0 and shown.result()["name"] == "old"  # still in git's history
    assert at(store, "fsck").code == 0


def test_rm_of_a_parent_is_refused_unless_forced(store: GitStore):
    synthetic(store, "base", "the parent")
    _child_of(store, "child", "base@1")
    head = store.head()
    refused = at(store, "rm", "base")
    assert refused.code == 1 and "'base' is the parent of child" in refused.err
    assert store.head() == head and (store.root / "policies/base/meta.json").exists()
    forced = at(store, "rm", "base", "--force")
    assert forced.code == 0 and "its children keep their lineage: child" in forced.out
    assert not (store.root / "policies/base/meta.json").exists()


def test_rm_of_an_unknown_policy_says_how_to_find_names(store: GitStore):
    synthetic(store, "here", "present")
    head = store.head()
    ran = at(store, "rm", "absent")
    assert ran.code != 0 and "no policy 'absent'" in ran.err and "repo list" in ran.err
    assert store.head() == head


def test_rm_refuses_with_uncommitted_changes_in_the_policy(store: GitStore):
    synthetic(store, "busy", "edited by hand")
    (store.root / "policies/busy/policy.sched").write_text("# hand edit\n")
    head = store.head()
    ran = at(store, "rm", "busy")
    assert ran.code != 0 and "uncommitted changes" in ran.err
    assert store.head() == head
    assert (store.root / "policies/busy/policy.sched").read_text() == "# hand edit\n"
