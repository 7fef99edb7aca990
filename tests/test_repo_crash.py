"""Crash safety: a writer killed with SIGKILL anywhere in its commit window leaves nothing that
blocks the next writer. The next write (or `fsck --repair`) removes git's stale lock files and
puts the half-written entry back to HEAD; `fsck` reports both until then; a git failure is a
clear error, never a traceback. Writers are real processes, killed for real
(SCHEDC_TEST_KILL_AT names the point), or the states a kill leaves are planted."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from schedc.repo.gitstore import GitStore
from tests import test_repo_support as support
from tests.conftest import ROOT
from tests.test_repo_support import (
    cli,
    cli_process,
    commit_count,
    git,
    is_clean,
    record_args,
    synthetic,
)

repo_env = support.repo_env
store = support.store  # fixtures

POINTS = ("write", "staged", "committed")


def killed(*args: str, at: str) -> None:
    ran = cli_process(*args, env={"SCHEDC_TEST_KILL_AT": at})
    assert ran.code == -signal.SIGKILL, (ran.code, ran.err)


def codes(ran: support.Ran) -> set[str]:
    return {d["code"] for d in ran.json()["diagnostics"]}


@pytest.mark.parametrize("point", POINTS)
def test_a_killed_record_is_rolled_back_by_the_next_write(store: GitStore, point: str):
    synthetic(store, "shared", "x")
    before = commit_count(store.root)
    killed(*record_args("shared", "w", "1", "2"), at=point)
    committed = 1 if point == "committed" else 0
    assert commit_count(store.root) == before + committed
    fsck = cli("fsck", "--format", "json")
    assert fsck.code == 1 and "R117" in codes(fsck), fsck.out
    assert "no problems found" not in cli("fsck").out

    ran = cli(*record_args("shared", "w", "3", "4"))
    assert ran.code == 0, ran.err
    assert "rolled back an interrupted change to policies/shared" in ran.err
    assert commit_count(store.root) == before + committed + 1
    assert is_clean(store.root) and cli("fsck").code == 0
    records = sorted((store.root / "policies/shared/perf").iterdir())
    assert len(records) == 1 + committed  # the killed one is there only if it committed


@pytest.mark.parametrize("point", ("write", "staged"))
def test_fsck_repair_rolls_back_a_killed_record(store: GitStore, point: str):
    synthetic(store, "shared", "x")
    head = store.head()
    killed(*record_args("shared", "w", "1", "2"), at=point)
    assert not is_clean(store.root)
    ran = cli("fsck", "--repair")
    assert ran.code == 0, ran.out + ran.err
    assert "repaired: rolled back an interrupted change to policies/shared" in ran.out
    assert is_clean(store.root) and store.head() == head
    again = cli("fsck", "--repair", "--format", "json")
    assert again.json()["ok"] and again.result()["repaired"] == []


def test_a_killed_add_leaves_nothing_that_blocks_the_next_add(toolchain, store: GitStore):
    example = str(ROOT / "examples/fifo.sched")
    killed("add", example, "--unverified", at="staged")  # files written and staged
    assert (store.root / "policies/fifo/meta.json").exists()
    assert git(store.root, "diff", "--cached", "--name-only").strip()
    ran = cli("add", example, "--unverified")
    assert ran.code == 0, ran.err
    assert "added fifo v1" in ran.out and "rolled back" in ran.err
    assert is_clean(store.root) and cli("fsck").code == 0


@pytest.fixture
def stale_index_lock(store: GitStore) -> Path:
    """What git leaves when it is killed inside `git commit`: .git/index.lock."""
    synthetic(store, "shared", "x")
    lock = store.root / ".git/index.lock"
    lock.write_bytes(b"DIRC")
    return lock


def test_a_stale_index_lock_is_reported_and_removed_by_the_next_write(stale_index_lock: Path):
    fsck = cli("fsck", "--format", "json")
    assert fsck.code == 1 and "R116" in codes(fsck)
    assert any(d["file"] == ".git/index.lock" for d in fsck.json()["diagnostics"])
    ran = cli(*record_args("shared", "w", "1", "2"))
    assert ran.code == 0, ran.err
    assert "removed .git/index.lock" in ran.err
    assert not stale_index_lock.exists() and cli("fsck").code == 0


def test_fsck_repair_removes_a_stale_index_lock(stale_index_lock: Path):
    ran = cli("fsck", "--repair")
    assert ran.code == 0 and "repaired: removed .git/index.lock" in ran.out
    assert not stale_index_lock.exists()


def test_a_lock_held_by_a_live_git_is_left_alone(store: GitStore, stale_index_lock: Path):
    """A git at work in the repository (here: waiting on its stdin) may own the lock file:
    it is not removed, and the write says why it cannot go on."""
    busy = subprocess.Popen(  # under a shell: not a child of this (the writer's) process
        ["sh", "-c", f"git -C '{store.root}' hash-object --stdin; echo done"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if store.git_processes():
                break
            time.sleep(0.05)
        ran = cli(*record_args("shared", "w", "1", "2"))
        assert ran.code == 1 and f"git is at work in {store.root} (pid " in ran.err
        assert "Traceback" not in ran.err and stale_index_lock.exists()
        assert "R116" not in codes(cli("fsck", "--format", "json"))  # maybe not stale
    finally:
        busy.communicate(b"", timeout=30)
    assert cli(*record_args("shared", "w", "1", "2")).code == 0
    assert not stale_index_lock.exists()


def test_a_failing_git_command_is_a_clear_error_and_changes_nothing(store: GitStore):
    synthetic(store, "shared", "x")
    hooks = store.root / ".git/hooks"
    hooks.mkdir(exist_ok=True)
    hook = hooks / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'the hook says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    head = store.head()
    ran = cli(*record_args("shared", "w", "1", "2"))
    assert ran.code == 1 and "Traceback" not in ran.err
    assert "git commit failed" in ran.err and "the hook says no" in ran.err
    assert store.head() == head and is_clean(store.root)
    assert not (store.root / ".git/schedc-pending.json").exists()


def test_uncommitted_work_that_schedc_did_not_start_is_never_rolled_back(store: GitStore):
    """Without a journal an uncommitted file is someone's work: writes refuse to touch it
    (clearly), fsck warns about it, --repair leaves it."""
    synthetic(store, "shared", "x")
    mine = store.root / "policies/shared/perf/draft.json"
    mine.parent.mkdir()
    mine.write_text("{}")
    ran = cli(*record_args("shared", "w", "1", "2"))
    assert ran.code == 1 and "uncommitted changes" in ran.err and "Traceback" not in ran.err
    repaired = cli("fsck", "--repair", "--format", "json")
    assert repaired.result()["repaired"] == []
    assert "R101" in {d["code"] for d in repaired.json()["diagnostics"]}
    assert mine.read_text() == "{}"


def test_the_kill_hook_is_inert_without_the_variable(store: GitStore):
    assert "SCHEDC_TEST_KILL_AT" not in os.environ
    synthetic(store, "shared", "x")
    assert cli(*record_args("shared", "w", "1", "2")).code == 0


def test_git_killed_inside_its_commit_is_recovered_from(store: GitStore):
    """For real: a pre-commit hook SIGKILLs the `git commit` that runs it, which leaves git's
    own .git/index.lock behind and the record staged. The writer says so clearly; fsck
    reports both; the next write removes the lock and rolls the entry back."""
    synthetic(store, "shared", "x")
    head = store.head()
    hook = store.root / ".git/hooks/pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\nkill -9 $PPID\n")
    hook.chmod(0o755)
    ran = cli(*record_args("shared", "w", "1", "2"))
    assert ran.code == 1 and "Traceback" not in ran.err and "git" in ran.err, ran.err
    assert (store.root / ".git/index.lock").exists() and store.head() == head
    fsck = cli("fsck", "--format", "json")
    assert fsck.code == 1 and {"R116", "R117"} <= codes(fsck), fsck.out
    hook.unlink()
    again = cli(*record_args("shared", "w", "3", "4"))
    assert again.code == 0, again.err
    assert "removed .git/index.lock" in again.err and "rolled back" in again.err
    assert is_clean(store.root) and cli("fsck").code == 0
    assert len(list((store.root / "policies/shared/perf").iterdir())) == 1
