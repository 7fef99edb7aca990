"""Shared helpers and fixtures for the repository tests (tests/test_repo_*.py); no tests here.

Repositories are real git repositories in tmp dirs. `synthetic` writes an entry straight into
a repository through the store's own commit path, for tests that need entries but not clang.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from schedc.cli import main
from schedc.repo import layout
from schedc.repo.gitstore import Change, GitStore
from schedc.repo.models import (
    PolicyMeta,
    VerificationReport,
    VerificationSummary,
    now,
    to_json_text,
)
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "repo"


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)

    def result(self) -> dict:
        """The one item of a subcommand about one thing (init, add, show, diff, record, fsck,
        push, pull, resolve, rm): the envelope's `results`, a list of one (docs/json.md)."""
        [item] = self.json()["results"]
        return item


def cli(*args: str) -> Ran:
    """`schedc repo ARGS` in this process (the environment decides repo and cache)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["repo", *args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return Ran(code, out.getvalue(), err.getvalue())


def cli_process(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Ran:
    """`python -m schedc.repo ARGS` in a child process, as an agent runs it."""
    full = dict(os.environ, PYTHONPATH=str(ROOT))
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "schedc.repo", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=ROOT,
        timeout=timeout,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def git(root: Path, *args: str) -> str:
    """Plain git, as a person edits a store by hand; with an identity of its own, since a fresh
    HOME (CI's env -i) has no user.name."""
    identity = ["-c", "user.name=schedc test", "-c", "user.email=test@schedc.invalid"]
    return subprocess.run(
        ["git", *identity, "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


def commit_count(root: Path) -> int:
    return int(git(root, "rev-list", "--count", "HEAD").strip())


def is_clean(root: Path) -> bool:
    return git(root, "status", "--porcelain", "--untracked-files=all").strip() == ""


@pytest.fixture
def repo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings) -> Path:
    """SCHEDC_REPO and SCHEDC_CACHE point into tmp_path; returns the repository path (not
    created yet)."""
    root = tmp_path / "policies"
    monkeypatch.setenv("SCHEDC_REPO", str(root))
    monkeypatch.setenv("SCHEDC_CACHE", settings.cache_dir or str(tmp_path / "cache"))
    return root


@pytest.fixture
def store(repo_env: Path) -> GitStore:
    ran = cli("init")
    assert ran.code == 0, ran.err
    return GitStore(repo_env)


def synthetic(
    store: GitStore,
    name: str,
    description: str = "",
    tags: tuple[str, ...] = (),
    *,
    source: str | None = None,
    workloads: tuple[str, ...] = (),
    kernel: str = "6.12",
    version: int = 1,
) -> str | None:
    """Commit a DSL entry without compiling it (the source is whatever text is given; fsck
    finds only the generated C missing)."""
    text = source if source is not None else f"# {name}: {description}\n"
    stamp = now()
    summary = VerificationSummary(
        status="unverified", stage="check", reason="synthetic", date=stamp
    )
    meta = PolicyMeta(
        name=name,
        kind="dsl",
        description=description,
        tags=list(tags),
        workloads=list(workloads),
        version=version,
        source="policy.sched",
        content_hash="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        compiler_version="test",
        target_kernels=[kernel],
        verification=summary,
        created=stamp,
        updated=stamp,
    )
    files = {
        layout.policy_file(name, layout.DSL_SOURCE): text,
        layout.policy_file(name, layout.META): to_json_text(meta),
        layout.policy_file(name, layout.VERIFICATION): to_json_text(
            VerificationReport(summary=summary, target_kernel=kernel)
        ),
    }
    message = f"add {name} v{version}: synthetic\n\nSchedc-Action: add\nSchedc-Policy: {name}\n"
    message += f"Schedc-Version: {version}\n"
    return store.apply([layout.policy_dir(name)], lambda: Change(files, message), store.identity())


def record_args(name: str, workload: str, values: str, baseline: str, direction: str = "lower"):
    return (
        "record", name, "--workload", workload, "--metric", "time", "--unit", "s",
        "--direction", direction, "--value", values, "--baseline-value", baseline,
        "--baseline-scheduler", "eevdf",
    )  # fmt: skip
