"""`repo push` / `repo pull` between two clones through a local bare remote: records from two
machines merge, conflicting edits of one policy are reported and nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedc.repo.gitstore import GitStore
from tests import test_repo_support as support
from tests.test_repo_support import (
    cli,
    commit_count,
    git,
    is_clean,
    record_args,
    synthetic,
)

repo_env = support.repo_env
store = support.store  # fixtures


def at(repo: GitStore | Path, *args: str):
    root = repo.root if isinstance(repo, GitStore) else repo
    return cli(*args, "--repo", str(root))


@pytest.fixture
def pair(store: GitStore, tmp_path) -> tuple[GitStore, GitStore]:
    """Machine A (the store) and machine B, sharing a bare remote that A created."""
    synthetic(store, "shared", "a policy both machines know", ("batch",))
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(store.root, "remote", "add", "origin", str(remote))
    pushed = at(store, "push")
    assert pushed.code == 0 and pushed.out.startswith("pushed: origin/main"), pushed.err
    b = tmp_path / "machine_b"
    assert cli("init", "--repo", str(b), "--from", str(remote)).code == 0
    return store, GitStore(b)


def test_a_record_travels_from_one_machine_to_the_other(pair):
    a, b = pair
    assert at(b, *record_args("shared", "build", "9", "10")).code == 0
    assert at(b, "push").code == 0
    assert at(a, "search", "build").out.count("shared") == 0  # not there yet
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 0, ran.err
    assert ran.result()["action"] == "fast-forward" and ran.result()["changed"] == ["shared"]
    assert a.head() == b.head() and is_clean(a.root)
    found = at(a, "search", "build", "--format", "json").json()
    assert found["results"][0]["name"] == "shared" and found["index"]["refresh"] != "none"
    assert at(a, "pull").out.startswith("up-to-date")
    assert at(a, "push").out.startswith("up-to-date")


def test_records_from_both_sides_merge_without_conflict(pair):
    a, b = pair
    assert at(a, *record_args("shared", "web", "5", "8")).code == 0
    synthetic(a, "only_a", "new on machine a")
    assert at(b, *record_args("shared", "build", "9", "10")).code == 0
    synthetic(b, "only_b", "new on machine b")
    assert at(b, "push").code == 0
    rejected = at(a, "push")
    assert rejected.code == 1 and "schedc repo pull" in rejected.err
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 0 and ran.result()["action"] == "merged", ran.out
    assert sorted(ran.result()["changed"]) == ["only_b", "shared"]
    workloads = {
        r["workload"] for r in at(a, "show", "shared", "--format", "json").result()["records"]
    }
    assert workloads == {"web", "build"}
    assert (a.root / "policies/only_a").is_dir() and (a.root / "policies/only_b").is_dir()
    assert "Schedc-Action: merge" in git(a.root, "log", "-1", "--format=%B")
    assert at(a, "push").code == 0 and at(b, "pull").code == 0 and a.head() == b.head()
    assert at(a, "fsck").code == 0


def test_conflicting_edits_of_one_policy_are_reported_not_merged(pair):
    a, b = pair
    synthetic(a, "shared", "edited on a", source="# version from a\n", version=2)
    synthetic(b, "shared", "edited on b", source="# version from b\n", version=2)
    assert at(b, "push").code == 0
    head = a.head()
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 1
    out = ran.json()
    assert out["ok"] is False and out["error"] is None  # pulled; the conflicts are the result
    [pulled] = out["results"]
    assert pulled["action"] == "conflict"
    [conflict] = pulled["conflicts"]
    assert conflict["name"] == "shared"
    assert conflict["ours"]["version"] == conflict["theirs"]["version"] == 2
    assert conflict["ours"]["content_hash"] != conflict["theirs"]["content_hash"]
    assert a.head() == head and is_clean(a.root)
    assert not (a.root / ".git" / "MERGE_HEAD").exists()
    assert (a.root / "policies/shared/policy.sched").read_text() == "# version from a\n"
    human = at(a, "pull")
    assert human.code == 1 and "shared: here v2, origin v2" in human.out


def test_the_same_edit_on_both_sides_is_not_a_conflict(pair):
    a, b = pair
    for repo, who in ((a, "a"), (b, "b")):
        repo_meta = repo.root / "policies/shared/meta.json"
        text = repo_meta.read_text().replace("a policy both machines know", "same words")
        repo_meta.write_text(text)
        git(repo.root, "commit", "-q", "-am", f"same edit, made on {who}")
    assert at(b, "push").code == 0
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 0 and ran.result()["action"] == "merged"


def test_a_git_conflict_outside_policies_aborts_the_merge(pair):
    a, b = pair
    for repo, words in ((a, "from a"), (b, "from b")):
        (repo.root / "README.md").write_text(words + "\n")
        git(repo.root, "commit", "-q", "-am", words)
    assert at(b, "push").code == 0
    head = a.head()
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 1 and [c["name"] for c in ran.result()["conflicts"]] == ["README.md"]
    [conflict] = ran.result()["conflicts"]
    # Edited on both sides: a file, modified here and there (not two deleted policies).
    assert conflict["kind"] == "file"
    assert conflict["ours"]["change"] == conflict["theirs"]["change"] == "modified"
    assert conflict["ours"]["exists"] and conflict["theirs"]["exists"]
    assert a.head() == head and is_clean(a.root)
    assert not (a.root / ".git" / "MERGE_HEAD").exists()
    text = at(a, "pull")
    assert text.code == 1 and "  README.md: here modified, origin modified" in text.out
    assert "deleted" not in text.out and a.head() == head and is_clean(a.root)


def test_a_file_deleted_here_and_edited_there_says_so(pair):
    a, b = pair
    git(a.root, "rm", "-q", "README.md")
    git(a.root, "commit", "-q", "-m", "no readme")
    (b.root / "README.md").write_text("from b\n")
    git(b.root, "commit", "-q", "-am", "from b")
    assert at(b, "push").code == 0
    ran = at(a, "pull")
    assert ran.code == 1 and "  README.md: here deleted, origin modified" in ran.out


def test_pull_refuses_with_uncommitted_changes(pair):
    a, b = pair
    assert at(b, *record_args("shared", "w", "1", "2")).code == 0 and at(b, "push").code == 0
    (a.root / "policies/shared/meta.json").write_text("{}")
    ran = at(a, "pull")
    assert ran.code == 1 and "uncommitted changes" in ran.err
    assert (a.root / "policies/shared/meta.json").read_text() == "{}"


def test_without_a_remote_push_and_pull_say_how_to_add_one(store: GitStore):
    for command in ("push", "pull"):
        ran = cli(command)
        assert ran.code == 2 and "no remote 'origin'" in ran.err
        assert "remote add origin URL" in ran.err


def test_pull_from_an_empty_remote_is_up_to_date(store: GitStore, tmp_path):
    remote = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(store.root, "remote", "add", "origin", str(remote))
    ran = cli("pull", "--format", "json")
    assert ran.code == 0 and ran.result()["action"] == "up-to-date"
    assert commit_count(store.root) >= 1


def _diverged(pair) -> tuple[GitStore, GitStore]:
    """A and B each recorded something: A's pull has to make a merge commit."""
    a, b = pair
    assert at(b, *record_args("shared", "build", "9", "10")).code == 0
    assert at(b, "push").code == 0
    assert at(a, *record_args("shared", "game", "5", "6")).code == 0
    return a, b


def _hook(repo: GitStore, text: str) -> Path:
    hook = repo.root / ".git/hooks/pre-merge-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\n{text}\n")
    hook.chmod(0o755)
    return hook


def test_a_merge_that_fails_without_a_conflict_is_an_error_not_a_conflict(pair):
    a, _b = _diverged(pair)
    head = a.head()
    hook = _hook(a, "echo 'merges are frozen' >&2; exit 1")
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 1 and ran.json()["ok"] is False, ran.out
    assert ran.json()["results"] == []
    assert "merging origin/main failed" in ran.json()["error"]["message"]
    assert "merges are frozen" in ran.json()["error"]["message"]
    assert a.head() == head and is_clean(a.root)
    hook.unlink()
    assert at(a, "pull").code == 0 and a.head() != head


def test_a_pull_whose_git_merge_is_killed_is_recovered_by_the_next_pull(pair):
    a, _b = _diverged(pair)
    head = a.head()
    hook = _hook(a, "kill -9 $PPID")  # the merge is in the worktree, not committed
    ran = at(a, "pull")
    assert ran.code == 1 and "Traceback" not in ran.err, ran.err
    assert a.head() == head
    hook.unlink()
    again = at(a, "pull", "--format", "json")
    assert again.code == 0 and again.result()["action"] == "merged", again.out + again.err
    assert is_clean(a.root) and at(a, "fsck").code == 0
    assert not (a.root / ".git/MERGE_HEAD").exists()


def test_one_side_edits_the_source_the_other_its_verification_is_refused(pair):
    """Git merges these textually (two different files), but they are two edits of one policy:
    the verification on one side is of a source the other side no longer has."""
    a, b = pair
    (a.root / "policies/shared/policy.sched").write_text("# edited source on a\n")
    git(a.root, "commit", "-q", "-am", "edit the source on a")
    report = b.root / "policies/shared/verification.json"
    report.write_text(report.read_text().replace('"synthetic"', '"re-verified on b"'))
    git(b.root, "commit", "-q", "-am", "edit the verification on b")
    assert at(b, "push").code == 0
    head = a.head()
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 1, ran.out
    assert ran.result()["action"] == "conflict"
    assert [c["name"] for c in ran.result()["conflicts"]] == ["shared"]
    assert a.head() == head and is_clean(a.root)
    assert not (a.root / ".git" / "MERGE_HEAD").exists()


def test_the_same_edit_plus_records_on_each_side_merges(pair):
    """Records are not policy content: the same metadata edit on both sides, each with a
    record of its own, is no conflict."""
    a, b = pair
    for repo, who, workload in ((a, "a", "web"), (b, "b", "build")):
        repo_meta = repo.root / "policies/shared/meta.json"
        repo_meta.write_text(repo_meta.read_text().replace("a policy both machines know", "same"))
        git(repo.root, "commit", "-q", "-am", f"same edit, made on {who}")
        assert at(repo, *record_args("shared", workload, "9", "10")).code == 0
    assert at(b, "push").code == 0
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 0 and ran.result()["action"] == "merged", ran.out
    workloads = {
        r["workload"] for r in at(a, "show", "shared", "--format", "json").result()["records"]
    }
    assert workloads == {"web", "build"}


def test_an_edit_on_one_side_and_a_record_on_the_other_merges(pair):
    """Only one side changed the policy's content; the other's record is no edit of it."""
    a, b = pair
    (a.root / "policies/shared/policy.sched").write_text("# edited source on a\n")
    git(a.root, "commit", "-q", "-am", "edit the source on a")
    assert at(b, *record_args("shared", "build", "9", "10")).code == 0
    assert at(b, "push").code == 0
    ran = at(a, "pull", "--format", "json")
    assert ran.code == 0 and ran.result()["action"] == "merged", ran.out
    assert (a.root / "policies/shared/policy.sched").read_text() == "# edited source on a\n"
    assert [r["workload"] for r in at(a, "show", "shared", "--format", "json").result()["records"]] == [
        "build"
    ]


def test_push_and_pull_json_name_the_remote_branch_and_head(pair):
    a, b = pair
    for repo, command in ((a, "push"), (b, "pull")):
        data = at(repo, command, "--format", "json").json()
        assert data["command"] == f"repo {command}" and data["ok"] is True
        [out] = data["results"]
        assert (out["remote"], out["branch"], out["head"]) == ("origin", "main", repo.head())
        assert out["action"] == "up-to-date"


# -- repo resolve: pull again, keeping one side of the named conflicts ------------------------
def _conflicting(pair):
    a, b = pair
    synthetic(a, "shared", "edited on a", source="# version from a\n", version=2)
    synthetic(b, "shared", "edited on b", source="# version from b\n", version=2)
    assert at(b, *record_args("shared", "build", "9", "10")).code == 0
    assert at(b, "push").code == 0
    assert at(a, "pull").code == 1
    return a, b


def test_resolve_theirs_takes_the_remotes_policy_and_merges_the_rest(pair):
    a, b = _conflicting(pair)
    ran = at(a, "resolve", "shared", "--theirs", "--format", "json")
    assert ran.code == 0, ran.out + ran.err
    assert ran.result()["action"] == "merged"
    assert (a.root / "policies/shared/policy.sched").read_text() == "# version from b\n"
    assert is_clean(a.root) and not (a.root / ".git" / "MERGE_HEAD").exists()
    body = git(a.root, "log", "-1", "--format=%B")
    assert "Schedc-Action: merge" in body and "Schedc-Resolved: shared theirs" in body
    assert len(git(a.root, "log", "-1", "--format=%P").split()) == 2  # a real merge
    assert at(a, "fsck").code == 0
    assert at(a, "pull").out.startswith("up-to-date")
    assert at(a, "push").code == 0 and at(b, "pull").code == 0 and a.head() == b.head()


def test_resolve_ours_keeps_this_side_and_clears_the_conflict(pair):
    a, b = _conflicting(pair)
    ran = at(a, "resolve", "shared", "--ours")
    assert ran.code == 0, ran.out + ran.err
    assert (a.root / "policies/shared/policy.sched").read_text() == "# version from a\n"
    assert at(a, "pull").out.startswith("up-to-date")  # nothing left to merge
    assert at(a, "push").code == 0
    # b's record was not part of the conflict: a side's policy files, not its records, win
    assert at(b, "pull").code == 0
    assert (b.root / "policies/shared/policy.sched").read_text() == "# version from a\n"


def test_resolve_of_a_name_that_is_not_in_conflict_changes_nothing(pair):
    a, _ = _conflicting(pair)
    head = a.head()
    ran = at(a, "resolve", "other", "--theirs")
    assert ran.code != 0
    assert "other: not in conflict with origin/main (conflicts: shared)" in ran.err
    assert a.head() == head and is_clean(a.root)
    assert not (a.root / ".git" / "MERGE_HEAD").exists()


def test_resolve_leaves_the_merge_undone_while_another_conflict_is_open(pair):
    a, b = pair
    for repo, words in ((a, "from a"), (b, "from b")):
        synthetic(repo, "shared", "edited", source=f"# {words}\n", version=2)
        (repo.root / "README.md").write_text(words + "\n")
        git(repo.root, "commit", "-q", "-am", words)
    assert at(b, "push").code == 0
    head = a.head()
    ran = at(a, "resolve", "shared", "--theirs", "--format", "json")
    assert ran.code == 1 and [c["name"] for c in ran.result()["conflicts"]] == ["README.md"]
    assert a.head() == head and is_clean(a.root)
    assert not (a.root / ".git" / "MERGE_HEAD").exists()
    ran = at(a, "resolve", "shared", "README.md", "--theirs")
    assert ran.code == 0, ran.out + ran.err
    assert (a.root / "README.md").read_text() == "from b\n"
    assert (a.root / "policies/shared/policy.sched").read_text() == "# from b\n"


def test_resolve_needs_a_side():
    ran = cli("resolve", "shared")
    assert ran.code == 2 and "--ours" in ran.err


def test_log_after_a_resolved_conflict_shows_both_sides_and_the_merge(pair):
    a, b = _conflicting(pair)
    mine = a.head()
    theirs = b.head()
    assert at(a, "resolve", "shared", "--theirs").code == 0
    log = at(a, "log", "shared", "--format", "json").json()["results"]
    commits = [e["commit"] for e in log]
    assert log[0]["parents"] == [mine, theirs]  # the merge, this side first
    # the side the merge did not keep (a's own edit) is still in the policy's history
    assert mine in commits and theirs in commits and a.head() in commits
    text = at(a, "log", "shared").out.splitlines()
    merge_line = next(line for line in text if line.startswith(a.head()[:7]))
    assert f"(of {mine[:7]}" in merge_line
