"""The `schedc repo` command-line contract: where the repository is, what a missing one says,
exit codes and JSON errors. Runs `python -m schedc.repo` as agents do, and in process."""

from __future__ import annotations

import json

import pytest

from schedc import __version__
from schedc.repo.gitstore import GitStore, default_location
from tests import test_repo_support as support
from tests.test_repo_support import (
    cli,
    cli_process,
    commit_count,
    git,
    is_clean,
)

repo_env = support.repo_env
store = support.store  # fixtures

COMMANDS = [
    ("list",), ("show", "x"), ("log", "x"), ("diff", "x", "v1"),
    ("record", "x", "--from", "f.json"), ("fsck",), ("push",), ("pull",),
]  # fmt: skip


def test_location_is_option_then_environment_then_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SCHEDC_REPO", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_location() == tmp_path / "data" / "schedc" / "policies"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_location() == tmp_path / "home" / ".local" / "share" / "schedc" / "policies"
    monkeypatch.setenv("SCHEDC_REPO", str(tmp_path / "env"))
    assert default_location() == tmp_path / "env"
    ran = cli("--repo", str(tmp_path / "opt"), "init")
    assert ran.code == 0 and (tmp_path / "opt" / "schedc-repo.json").is_file()
    assert cli("list", "--repo", str(tmp_path / "opt")).code == 0
    assert not (tmp_path / "env").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_on_a_missing_repository_says_how_to_create_it(repo_env, command):
    ran = cli(*command)
    assert ran.code == 2
    assert f"no policy repository at {repo_env}" in ran.err
    assert f"schedc repo init --repo {repo_env}" in ran.err
    as_json = cli(*command, "--format", "json")
    assert as_json.code == 2 and as_json.json()["ok"] is False
    assert f"no policy repository at {repo_env}" in as_json.json()["error"]["message"]
    assert "schedc repo init" in as_json.json()["error"]["hint"]
    assert as_json.json()["command"] == f"repo {command[0]}"
    assert not repo_env.exists()


def test_search_on_a_missing_repository_named_by_repo_says_how_to_create_it(tmp_path):
    """Only the default repository is created on first use (test_repo_firstuse.py): a --repo
    that holds none may be a typo, and stays an error."""
    missing = tmp_path / "typo"
    ran = cli("search", "x", "--repo", str(missing))
    assert ran.code == 2 and f"no policy repository at {missing}" in ran.err
    assert not missing.exists()


def test_a_plain_git_repository_is_not_taken_for_a_policy_repository(repo_env):
    repo_env.mkdir()
    git(repo_env, "init", "-q")
    ran = cli("list")
    assert ran.code == 2 and "not a schedc policy repository" in ran.err


def test_init_makes_one_commit_and_refuses_to_run_twice(repo_env):
    ran = cli("init", "--format", "json")
    assert ran.code == 0 and ran.result()["repo"] == str(repo_env)
    assert ran.result()["head"] == GitStore(repo_env).head()
    assert commit_count(repo_env) == 1 and is_clean(repo_env)
    assert json.loads((repo_env / "schedc-repo.json").read_text())["schema_version"] == 1
    assert "policies/<name>/meta.json" in (repo_env / "README.md").read_text()
    again = cli("init")
    assert again.code == 2 and "already holds a git repository" in again.err
    assert cli("list").out.strip() == "the repository has no policies yet"


def test_init_refuses_a_folder_with_files(repo_env):
    repo_env.mkdir()
    (repo_env / "notes.txt").write_text("mine")
    ran = cli("init")
    assert ran.code == 2 and "not empty" in ran.err
    assert (repo_env / "notes.txt").read_text() == "mine"


def test_init_from_clones_a_shared_repository(store: GitStore, tmp_path):
    other = tmp_path / "clone"
    ran = cli("init", "--repo", str(other), "--from", str(store.root))
    assert ran.code == 0 and "cloned into" in ran.out
    assert GitStore(other).head() == store.head()


def test_module_entry_point_and_exit_codes(store: GitStore, tmp_path):
    shown = cli_process("show", "nothing", "--format", "json", "--repo", str(store.root))
    assert shown.code == 1 and json.loads(shown.out) == {
        "schedc": __version__,
        "command": "repo show",
        "ok": False,
        "error": {"message": "no policy named 'nothing'", "hint": "see `schedc repo list`"},
        "diagnostics": [],
        "results": [],
    }
    usage = cli_process("record", "x", "--direction", "sideways", "--repo", str(store.root))
    assert usage.code == 2 and "invalid choice" in usage.err
    assert cli_process("--help").code == 0
    bare = cli_process()
    assert bare.code == 2 and "COMMAND" in bare.err


def test_record_without_required_options_is_a_usage_error(store: GitStore):
    ran = cli("record", "scx_lavd", "--workload", "w", "--metric", "m")
    assert ran.code == 2
    assert "--value, --direction" in ran.err and "--from BENCH.json" in ran.err
    bad = cli(
        "record", "x", "--workload", "w", "--metric", "m", "--direction", "lower", "--value", "fast"
    )
    assert bad.code == 2 and "--value takes numbers" in bad.err


def test_search_rejects_a_zero_limit(store: GitStore):
    ran = cli("search", "x", "--limit", "0")
    assert ran.code == 2 and "--limit" in ran.err


def test_invalid_target_kernel_is_a_usage_error(store: GitStore, tmp_path):
    policy = tmp_path / "p.sched"
    policy.write_text("scheduler p {}\n")
    ran = cli("add", str(policy), "--target-kernel", "5.4", "--unverified")
    assert ran.code == 2 and "5.4" in ran.err


def test_seeding_a_clone_of_a_seeded_repository_adds_nothing(store: GitStore, tmp_path):
    first = cli("init", "--repo", str(tmp_path / "seeded"), "--seed", "--examples",
                str(tmp_path), "--format", "json")  # fmt: skip
    assert first.code == 0 and len(first.result()["seed"]["catalog"]) >= 10
    again = cli("init", "--repo", str(tmp_path / "clone"), "--from", str(tmp_path / "seeded"),
                "--seed", "--examples", str(tmp_path), "--format", "json")  # fmt: skip
    assert again.code == 0 and again.result()["seed"]["catalog"] == []
    assert again.result()["head"] == GitStore(tmp_path / "seeded").head()
