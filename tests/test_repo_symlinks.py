"""Symbolic links in a policy repository are refused everywhere: a committed or planted link
never makes schedc write outside the repository, readers report the entry and serve the rest,
and neither `pull` nor `init --from` lets a tree with links reach the worktree.

Every link points at a canary in tmp_path, never at a real system file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from schedc.repo.gitstore import GitStore, RepoError
from tests import test_repo_support as support
from tests.conftest import ROOT
from tests.test_repo_support import cli, commit_count, git, record_args, synthetic

repo_env = support.repo_env
store = support.store  # fixtures

CANARY_TEXT = "canary: schedc must never write here\n"
EXAMPLE = ROOT / "examples" / "fifo.sched"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "canary.txt"
    path.parent.mkdir()
    path.write_text(CANARY_TEXT)
    return path


def outside_untouched(canary: Path) -> None:
    assert canary.read_text() == CANARY_TEXT
    assert sorted(p.name for p in canary.parent.iterdir()) == ["canary.txt"]


def commit_link(root: Path, rel: str, target: Path, message: str = "plant a link") -> None:
    path = root / rel
    if path.is_dir() and not path.is_symlink():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def test_add_refuses_a_committed_symlinked_source(toolchain, store: GitStore, canary: Path):
    synthetic(store, "fifo", "first in, first out")
    commit_link(store.root, "policies/fifo/policy.sched", canary)
    head = store.head()
    ran = cli("add", str(EXAMPLE), "--unverified")
    assert ran.code == 1, ran.err
    assert "policies/fifo/policy.sched is a symbolic link" in ran.err
    assert "Traceback" not in ran.err
    outside_untouched(canary)
    assert store.head() == head
    assert (store.root / "policies/fifo/policy.sched").is_symlink()  # left for the user to fix


def test_add_refuses_a_symlinked_policy_folder(toolchain, store: GitStore, canary: Path):
    commit_link(store.root, "policies/fifo", canary.parent)
    ran = cli("add", str(EXAMPLE), "--unverified")
    assert ran.code == 1, ran.err
    assert "policies/fifo is a symbolic link" in ran.err and "added" not in ran.out
    outside_untouched(canary)


def test_a_planted_uncommitted_link_is_refused_too(store: GitStore, canary: Path):
    """Not committed, just lying in the worktree: writes refuse it all the same."""
    synthetic(store, "mine", "x")
    perf = store.root / "policies/mine/perf"
    perf.symlink_to(canary.parent)
    ran = cli(*record_args("mine", "w", "1", "2"))
    assert ran.code == 1 and "policies/mine/perf is a symbolic link" in ran.err
    outside_untouched(canary)


def test_a_symlinked_policies_folder_stops_every_write(store: GitStore, canary: Path):
    commit_link(store.root, "policies", canary.parent)
    with pytest.raises(RepoError, match="policies is a symbolic link"):
        synthetic(store, "anything", "x")
    outside_untouched(canary)


def test_the_store_never_writes_through_a_link_even_past_the_checks(store: GitStore, canary: Path):
    """write_file itself walks with O_NOFOLLOW: a link planted after the checks (a race) is
    refused, not followed."""
    (store.root / "policies").mkdir()
    (store.root / "policies/raced").symlink_to(canary.parent)
    with pytest.raises(RepoError, match="policies/raced: it is a symbolic link"):
        store.write_file("policies/raced/meta.json", "{}")
    (store.root / "policies/direct").mkdir()
    (store.root / "policies/direct/meta.json").symlink_to(canary)
    with pytest.raises(RepoError, match="meta.json: it is a symbolic link"):
        store.write_file("policies/direct/meta.json", "{}")
    outside_untouched(canary)


@pytest.fixture
def linked_meta(store: GitStore, canary: Path) -> GitStore:
    """'good' is fine, 'linked' has its meta.json committed as a link to the canary."""
    synthetic(store, "good", "a good policy for batch work", ("batch",))
    synthetic(store, "linked", "a policy for batch work too", ("batch",))
    commit_link(store.root, "policies/linked/meta.json", canary)
    return store


def test_readers_report_a_symlinked_meta_and_serve_the_rest(linked_meta: GitStore, canary):
    listed = cli("list", "--format", "json")
    assert listed.code == 0
    by_name = {p["name"]: p for p in listed.json()["results"]}
    assert by_name["good"]["ok"] is True and by_name["linked"]["ok"] is False
    problem = by_name["linked"]["problems"][0]
    assert problem["path"] == "policies/linked/meta.json" and "symbolic link" in problem["problem"]
    assert "skipped linked: policies/linked/meta.json" in listed.err

    found = cli("search", "batch", "--format", "json")
    assert found.code == 0
    assert [r["name"] for r in found.json()["results"]] == ["good"]
    assert [s["name"] for s in found.json()["skipped"]] == ["linked"]
    assert "symbolic link" in found.err

    shown = cli("show", "linked", "--format", "json").result()
    assert shown["ok"] is False and shown["meta"] is None
    assert shown["problems"][0]["path"] == "policies/linked/meta.json"
    assert cli("show", "good", "--format", "json").result()["ok"] is True

    record = cli(*record_args("linked", "w", "1", "2"))
    assert record.code == 1 and "symbolic link" in record.err
    assert cli(*record_args("good", "w", "1", "2")).code == 0

    fsck = cli("fsck", "--format", "json")
    assert fsck.code == 1
    codes = {(d["code"], d["file"]) for d in fsck.json()["diagnostics"]}
    assert ("R115", "policies/linked/meta.json") in codes
    outside_untouched(canary)


def _remote_with_a_link(tmp_path: Path, store: GitStore, canary: Path) -> Path:
    """A bare remote that `store` pushes to; someone else then pushes a link to it."""
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(store.root, "remote", "add", "origin", str(bare))
    assert cli("push").code == 0
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "main", str(bare), str(other))
    git(other, "config", "user.email", "o@example.com")
    git(other, "config", "user.name", "other")
    commit_link(other, "policies/evil/meta.json", canary, "a link to a file outside")
    git(other, "push", "-q", "origin", "HEAD:main")
    return bare


def test_pull_refuses_a_tree_with_a_link_before_merging(store: GitStore, canary, tmp_path):
    synthetic(store, "mine", "x")
    bare = _remote_with_a_link(tmp_path, store, canary)
    head, count = store.head(), commit_count(store.root)
    ran = cli("pull")
    assert ran.code == 1, ran.err
    assert "refusing to merge origin/main: policies/evil/meta.json is a symbolic link" in ran.err
    assert store.head() == head and commit_count(store.root) == count
    assert not os.path.lexists(store.root / "policies/evil")
    outside_untouched(canary)
    # and a new machine cannot start from it either
    target = tmp_path / "clone"
    cloned = cli("--repo", str(target), "init", "--from", str(bare))
    assert cloned.code == 1 and "policies/evil/meta.json is a symbolic link" in cloned.err
    assert not target.exists()


def test_search_reports_a_linked_folder_that_arrives_incrementally(store: GitStore, canary):
    synthetic(store, "good", "a good policy for batch work", ("batch",))
    assert cli("search", "batch").code == 0  # the index is built, then HEAD moves by one link
    commit_link(store.root, "policies/evil", canary.parent)
    ran = cli("search", "batch", "--format", "json")
    assert ran.code == 0 and ran.json()["index"]["refresh"] == "incremental"
    assert [s["name"] for s in ran.json()["skipped"]] == ["evil"]
    assert "policies/evil" in ran.json()["skipped"][0]["problem"]
    assert [r["name"] for r in ran.json()["results"]] == ["good"]
    outside_untouched(canary)
