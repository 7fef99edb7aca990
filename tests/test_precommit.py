"""The `schedc-check` hook of .pre-commit-hooks.yaml, run by the real pre-commit framework.

A temporary git repository plays the hook's repository (a copy of this project's working tree:
pre-commit installs hooks from a commit, and the tree under test may not be committed yet), and
another plays a policy repository that uses it. pre-commit builds the hook's virtualenv from the
copy with pip, as it does for any user; then a bad policy must block `git commit` and the fixed
one must go through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, skip_or_fail

HOOK_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "LICENSE", "MANIFEST.in")
# What a clone has and the build reads: the package, its build backend (buildsys/), and the
# docs and examples a wheel ships.
HOOK_FOLDERS = ("schedc", "buildsys", "docs", "examples")

BAD_POLICY = """\
#include "schedc_runtime.bpf.h"

char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/q_enqueue") q_enqueue(unsigned long long *ctx)
{
	schedc_insert((struct task_struct *)ctx[0], 1, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

s32 SEC("struct_ops/q_dispatch") q_dispatch(unsigned long long *ctx)
{
	schedc_move_to_local(1);
	return 0;
}

s32 SEC("struct_ops/q_init") q_init(unsigned long long *ctx)
{
	return scx_bpf_create_dsq(1, -1);
}

SEC(".struct_ops.link")
struct sched_ext_ops q_ops = {
	.enqueue = (void *)q_enqueue,
	.dispatch = (void *)q_dispatch,
	.init = (void *)q_init,
	.name = "q",
};
"""
GOOD_POLICY = BAD_POLICY.replace('SEC("struct_ops/q_init")', 'SEC("struct_ops.s/q_init")')


def pre_commit() -> list[str]:
    found = shutil.which("pre-commit")
    if found:
        return [found]
    beside = Path(sys.executable).parent / "pre-commit"
    if beside.is_file():
        return [str(beside)]
    skip_or_fail("pre-commit is not installed (pip install pre-commit)")
    raise AssertionError("unreachable")


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=schedc test", "-c", "user.email=test@schedc.invalid",
         "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600, check=False,
    )


def hook_repository(where: Path) -> tuple[Path, str]:
    """A git repository holding this project's working tree, as pre-commit needs it."""
    repo = where / "schedc-hooks"
    repo.mkdir()
    for name in HOOK_FILES:
        shutil.copy2(ROOT / name, repo / name)
    for folder in HOOK_FOLDERS:
        shutil.copytree(ROOT / folder, repo / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert git(repo, "init", "-q").returncode == 0
    git(repo, "add", "-A")
    done = git(repo, "commit", "-q", "-m", "schedc hooks")
    assert done.returncode == 0, done.stderr
    return repo, git(repo, "rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def policy_repo(tmp_path: Path, settings, toolchain) -> tuple[Path, dict[str, str]]:
    if shutil.which("git") is None:
        skip_or_fail("git is not installed")
    hooks, rev = hook_repository(tmp_path)
    repo = tmp_path / "policies"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n      - id: schedc-check\n"
    )
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the hook must run from its own virtualenv, not this tree
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    env["SCHEDC_CACHE"] = settings.cache_dir or str(tmp_path / "cache")
    # The hook runs in the policy repository, where this checkout's schedc.toml is not found:
    # hand it the tools this run uses (from the environment or that config file).
    for field, variable in (
        ("clang", "SCHEDC_CLANG"),
        ("btf", "SCHEDC_BTF"),
        ("libbpf_include", "SCHEDC_LIBBPF_INCLUDE"),
    ):
        if getattr(settings, field):
            env.setdefault(variable, str(getattr(settings, field)))
    installed = subprocess.run([*pre_commit(), "install", "--install-hooks"], cwd=repo, env=env,
                               capture_output=True, text=True, timeout=900, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return repo, env


def commit(repo: Path, env: dict[str, str], message: str) -> subprocess.CompletedProcess[str]:
    git(repo, "add", "-A")
    return subprocess.run(
        ["git", "-c", "user.name=schedc test", "-c", "user.email=test@schedc.invalid",
         "commit", "-m", message],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


def test_a_bad_policy_blocks_the_commit_and_the_fixed_one_passes(policy_repo):
    repo, env = policy_repo
    (repo / "queue.bpf.c").write_text(BAD_POLICY)
    (repo / "fifo.sched").write_text((ROOT / "examples" / "fifo.sched").read_text())
    (repo / "notes.txt").write_text("not a policy: the hook must not look at it\n")
    blocked = commit(repo, env, "add a scheduler")
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "schedc check" in output and "Failed" in output
    assert "queue.bpf.c:19:9: error[K021]: scx_bpf_create_dsq() may sleep" in output
    assert "fifo.sched" not in output and "notes.txt" not in output
    assert git(repo, "rev-list", "--all").stdout == ""  # nothing was committed

    (repo / "queue.bpf.c").write_text(GOOD_POLICY)
    passed = commit(repo, env, "add a scheduler")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "schedc check" in passed.stdout + passed.stderr
    assert "Passed" in passed.stdout + passed.stderr
    assert git(repo, "log", "--oneline").stdout.count("\n") == 1
