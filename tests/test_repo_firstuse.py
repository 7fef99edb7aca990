"""First use: `schedc repo search` and the MCP operations create the default repository when
there is none yet — seeded with the scx catalogue (and the examples in a checkout) — and say
so on stderr, instead of answering "no policy repository". A --repo that holds none, or a
default folder with something else in it, stays an error."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from schedc.agent.operations import Context
from schedc.cli.options import runner_from
from schedc.repo import catalog
from schedc.repo.gitstore import GitStore, RepoError
from tests.conftest import ROOT
from tests.test_repo_support import cli, cli_process, is_clean


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings) -> Path:
    """No SCHEDC_REPO, an empty HOME and XDG data folder: the default repository is
    $XDG_DATA_HOME/schedc/policies, which does not exist."""
    monkeypatch.delenv("SCHEDC_REPO", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("SCHEDC_CACHE", settings.cache_dir or str(tmp_path / "cache"))
    return tmp_path / "data" / "schedc" / "policies"


def test_search_creates_and_seeds_the_default_repository(toolchain, empty_home: Path):
    ran = cli_process("search", "latency", "--format", "json")
    assert ran.code == 0, ran.err
    assert f"no policy repository at {empty_home} yet: creating it (first use)" in ran.err
    assert f"created the policy repository {empty_home}: 11 catalogue entries" in ran.err
    names = {r["name"] for r in json.loads(ran.out)["results"]}
    assert "scx_lavd" in names  # from the catalogue
    store = GitStore(empty_home)
    assert (empty_home / "policies/fifo/policy.sched").is_file()  # an example, compiled
    assert is_clean(store.root) and cli("fsck").code == 0
    again = cli_process("search", "latency")
    assert again.code == 0 and "creating it" not in again.err
    assert not [p for p in empty_home.parent.iterdir() if p.name.startswith(".policies.new-")]


def test_an_installed_schedc_seeds_the_catalogue_alone(empty_home: Path, monkeypatch, settings):
    """An installation with no examples (neither a checkout's nor shipped ones) seeds the
    catalogue alone; the MCP operations open the repository the same way."""
    monkeypatch.setattr(catalog, "project_examples", lambda: None)
    killed = empty_home.parent / ".policies.new-abcd1234"  # a seeding process killed midway
    (killed / ".git").mkdir(parents=True)
    told: list[str] = []
    noticed: list[str] = []  # the operator's copy: `schedc mcp` prints it on stderr
    store = Context(None, settings, told.append, notice=noticed.append).store()
    assert store.root == empty_home and noticed == told
    assert any("creating it (first use)" in m for m in told)
    assert any("11 catalogue entries, 0 example policies" in m for m in told)
    assert len(os.listdir(empty_home / "policies")) == 11
    assert not killed.exists()


def test_the_commands_runner_prints_the_notices_on_stderr(capsys):
    """The agent's operations print nothing themselves: `schedc mcp` and `schedc synthesize`
    give their runner the CLI's stderr line as the notice."""
    args = argparse.Namespace(compile_timeout=5.0, verify_timeout=5.0, repo=None, btf=None)
    runner_from(args).context(progress=lambda _m: None)._notice("created it (first use)")
    assert capsys.readouterr().err == "schedc: created it (first use)\n"


def test_two_first_uses_at_once_make_one_repository(empty_home: Path):
    script = textwrap.dedent(
        """
        import sys
        from schedc.repo import catalog
        from schedc.settings import load_settings
        catalog.project_examples = lambda: None
        store = catalog.open_store(None, load_settings(), lambda m: print(m, file=sys.stderr))
        print(store.head())
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    heads = {p.communicate(timeout=300)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(heads) == 1 and GitStore(empty_home).head() in heads


def test_a_default_folder_with_other_things_in_it_is_left_alone(empty_home: Path):
    empty_home.mkdir(parents=True)
    (empty_home / "notes.txt").write_text("mine\n")
    ran = cli("search", "x")
    assert ran.code == 2 and f"no policy repository at {empty_home}" in ran.err
    assert os.listdir(empty_home) == ["notes.txt"]


def test_only_the_default_location_is_created(tmp_path: Path, settings):
    with pytest.raises(RepoError, match="no policy repository"):
        catalog.open_store(tmp_path / "typo", settings)
    assert not (tmp_path / "typo").exists()


def test_the_mcp_server_creates_it_on_the_first_call(toolchain, empty_home: Path, settings):
    """`schedc mcp` (no --repo) with no repository yet: the first search_policies seeds the
    default one and answers from it, and says so as progress (and on the server's stderr)."""
    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from tests.test_agent_mcp import progress_sink

    progress, on_progress = progress_sink()
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "schedc", "mcp"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),  # HOME and XDG_DATA_HOME from empty_home
        cwd=str(ROOT),
    )

    async def main() -> tuple[bool, Any]:
        async with Client(params, read_timeout_seconds=600) as client:
            result = await client.call_tool(
                "search_policies", {"query": "lavd"}, progress_callback=on_progress
            )
            return bool(result.is_error), result.structured_content

    is_error, found = anyio.run(main)
    assert not is_error, found
    assert "scx_lavd" in {r["name"] for r in found["results"]}
    assert any("creating it (first use)" in m for m in progress), progress
    assert GitStore(empty_home).head() is not None
