"""The config file: schedc.toml is found in the working folder or the nearest folder above it,
relative paths in it are taken from its own folder, and a key schedc does not know is warned
about (by the real command, on stderr) instead of silently leaving a setting unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedc import settings as settings_module
from schedc.settings import config_paths, config_warnings, load_settings
from tests.test_cli import BAD, run


@pytest.fixture
def no_outside_settings(monkeypatch, tmp_path) -> Path:
    """No SCHEDC_* variables and an empty XDG config folder: only the files a test writes."""
    for name in (*settings_module._ENV.values(), "SCHEDC_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_schedc_toml_is_found_in_a_parent_folder_with_paths_from_its_folder(
    no_outside_settings, monkeypatch
):
    top = no_outside_settings / "project"
    deep = top / "policies" / "mine"
    deep.mkdir(parents=True)
    (top / "schedc.toml").write_text(
        '[schedc]\nbtf = "kit/vmlinux.btf"\nclang = "clang-19"\nkernels = ["kit", "/abs/kit"]\n'
    )
    monkeypatch.chdir(deep)
    assert config_paths()[0] == top / "schedc.toml"
    found = load_settings()
    assert found.btf == str(top / "kit" / "vmlinux.btf")  # from the file's folder, not deep/
    assert found.clang == "clang-19"  # a bare name stays a name, looked up on PATH
    assert found.kernels == (str(top / "kit"), "/abs/kit")
    assert found.sources["btf"] == str(top / "schedc.toml")


def test_the_nearest_schedc_toml_wins_and_the_working_folders_is_named_as_before(
    no_outside_settings, monkeypatch
):
    top = no_outside_settings / "project"
    inner = top / "inner"
    inner.mkdir(parents=True)
    (top / "schedc.toml").write_text('btf = "/top.btf"\n')
    (inner / "schedc.toml").write_text('btf = "/inner.btf"\n')
    monkeypatch.chdir(inner)
    assert config_paths()[0] == Path("schedc.toml")
    assert load_settings().btf == "/inner.btf"
    monkeypatch.chdir(top)
    assert load_settings().btf == "/top.btf"
    monkeypatch.chdir(no_outside_settings)  # no schedc.toml here or above (under /tmp)
    assert load_settings().btf is None


def test_unknown_keys_are_warned_about_with_the_likely_one(no_outside_settings, monkeypatch):
    folder = no_outside_settings / "project"
    folder.mkdir()
    (folder / "schedc.toml").write_text('[schedc]\nbtff = "/x.btf"\nvm_cpus = 2\ncolour = 1\n')
    monkeypatch.chdir(folder)
    warnings = config_warnings()
    assert len(warnings) == 2
    assert "unknown setting 'btff' is ignored; did you mean 'btf'?" in warnings[0]
    assert "unknown setting 'colour' is ignored" in warnings[1]
    (folder / "schedc.toml").write_text('[schedc]\nbtf = "/x.btf"\n[other_tool]\nanything = 1\n')
    assert config_warnings() == []  # other tools' tables are theirs


def test_the_command_prints_the_warning_and_goes_on(tmp_path):
    (tmp_path / "schedc.toml").write_text('[schedc]\nbpftol = "/usr/bin/bpftool"\n')
    (tmp_path / "bad.sched").write_text(BAD)
    proc = run("check", "bad.sched", cwd=tmp_path, env={"SCHEDC_CONFIG": ""})
    assert proc.returncode == 1 and "E144" in proc.stderr
    assert (
        "schedc: warning: schedc.toml: unknown setting 'bpftol' is ignored; did you mean "
        "'bpftool'?" in proc.stderr
    )


def test_the_environment_only_settings_keep_their_defaults_and_errors(monkeypatch):
    """SCHEDC_MCP_WORKERS/QUEUE, SCHEDC_MODEL, SCHEDC_PRICE and the test hook
    SCHEDC_TEST_KILL_AT are read by functions of settings.py (not config-file keys)."""
    from schedc.agent.runner import Limits
    from schedc.agent.synthesize import price
    from schedc.settings import (
        DEFAULT_MCP_QUEUE,
        EnvironmentProblem,
        crash_point,
        mcp_queue,
        mcp_workers,
        synthesis_model,
    )

    for name in ("SCHEDC_MCP_WORKERS", "SCHEDC_MCP_QUEUE", "SCHEDC_MODEL", "SCHEDC_PRICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SCHEDC_TEST_KILL_AT", raising=False)
    assert mcp_queue() == DEFAULT_MCP_QUEUE == 4 and mcp_workers() >= 1
    assert synthesis_model() is None and crash_point() is None
    assert price("claude-sonnet-4-6") is not None and price("a-model-of-its-own") is None
    monkeypatch.setenv("SCHEDC_MCP_WORKERS", "3")
    monkeypatch.setenv("SCHEDC_MCP_QUEUE", "0")
    assert (Limits().workers, Limits().queue) == (3, 0)
    monkeypatch.setenv("SCHEDC_MCP_WORKERS", "many")
    with pytest.raises(EnvironmentProblem) as bad:
        mcp_workers()
    assert (
        str(bad.value)
        == "SCHEDC_MCP_WORKERS is 'many', not a number\n  hint: set SCHEDC_MCP_WORKERS=N"
    )
    monkeypatch.setenv("SCHEDC_MCP_QUEUE", "-1")
    with pytest.raises(EnvironmentProblem, match="SCHEDC_MCP_QUEUE is -1") as low:
        mcp_queue()
    assert low.value.remedy == "set SCHEDC_MCP_QUEUE to 0 or more"
    monkeypatch.setenv("SCHEDC_MODEL", "claude-opus-4-1")
    monkeypatch.setenv("SCHEDC_PRICE", "2.5,10")
    monkeypatch.setenv("SCHEDC_TEST_KILL_AT", "staged")
    assert synthesis_model() == "claude-opus-4-1" and crash_point() == "staged"
    assert price("a-model-of-its-own") == (2.5, 10.0)
    monkeypatch.setenv("SCHEDC_PRICE", "cheap")
    assert price("claude-sonnet-4-6") is None  # a price that does not parse: cost unknown
