"""The command line contract: exit codes, the JSON shape, human diagnostics, no tracebacks.
Runs the real `python -m schedc` in a subprocess, as agents and pre-commit hooks do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

GOOD = 'scheduler good "ok" {\n  class all otherwise\n  queue q for all fifo\n}\n'
BAD = (
    'scheduler bad "two mistakes" {\n'
    "  class fast when task.avg_runtime < 5\n"
    "  class rest otherwise\n"
    "  queue q for fast fifo\n"
    "}\n"
)


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "schedc", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300,
    )


def test_compile_ok_exit_0_and_json_artifacts(toolchain, settings, tmp_path):
    src = tmp_path / "good.sched"
    src.write_text(GOOD)
    out = tmp_path / "o" / "good.bpf.o"
    proc = run("compile", str(src), "-o", str(out), "--format", "json",
               env={"SCHEDC_CACHE": settings.cache_dir or ""})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["diagnostics"] == [] and data["error"] is None
    [compiled] = data["results"]
    assert compiled["policy"] == str(src)
    assert compiled["object"] == str(out) and out.is_file()
    assert Path(compiled["c"]).is_file()


def test_policy_errors_exit_1_with_every_error_in_json(tmp_path):
    src = tmp_path / "bad.sched"
    src.write_text(BAD)
    proc = run("compile", str(src), "--format", "json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["ok"] is False and data["error"] is None  # the diagnostics say why
    assert data["results"] == [{"policy": str(src), "object": None, "c": None}]
    codes = [d["code"] for d in data["diagnostics"]]
    assert codes == ["E105", "E144"]  # both errors, not just the first
    first = data["diagnostics"][0]
    assert set(first) == {
        "severity", "code", "message", "file", "line", "column", "end_line", "end_column", "hint"
    }
    assert (first["file"], first["line"], first["column"]) == (str(src), 2, 19)
    assert first["hint"] == "durations need a unit: write 10ms, not 10"


def test_human_output_has_location_source_line_caret_and_hint(tmp_path):
    src = tmp_path / "bad.sched"
    src.write_text(BAD)
    proc = run("compile", str(src))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == f"{src}:2:19: error[E105]: cannot compare a duration with a count (int)"
    assert lines[1] == "    2 |   class fast when task.avg_runtime < 5"
    assert lines[2] == "      |                   ^~~~~~~~~~~~~~~~~~~~"
    assert lines[3] == "  hint: durations need a unit: write 10ms, not 10"
    assert lines[-1] == "2 errors generated."
    assert "Traceback" not in proc.stderr


def test_missing_btf_is_an_environment_error_exit_2(tmp_path):
    src = tmp_path / "good.sched"
    src.write_text(GOOD)
    proc = run("compile", str(src), "--btf", str(tmp_path / "missing.btf"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "hint:" in proc.stderr
    assert not (tmp_path / "good.bpf.o").exists()


def test_missing_clang_is_an_environment_error_exit_2(tmp_path):
    src = tmp_path / "good.sched"
    src.write_text(GOOD)
    proc = run("compile", str(src), "--format", "json", env={"SCHEDC_CLANG": "/nonexistent/clang"})
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["ok"] is False and data["command"] == "compile"
    assert "clang" in data["error"]["message"] and "SCHEDC_CLANG" in data["error"]["hint"]
    assert data["diagnostics"] == [] and data["results"] == []


def test_missing_bpftool_says_what_to_install_exit_2(settings, tmp_path):
    """A fresh cache needs bpftool to make vmlinux.h: a bpftool setting that names no file is
    exit 2 with the package to install and the setting to set, and no object is written."""
    src = tmp_path / "good.sched"
    src.write_text(GOOD)
    missing = tmp_path / "tools" / "bpftool"
    env = {"SCHEDC_BPFTOOL": str(missing), "SCHEDC_CACHE": str(tmp_path / "fresh-cache"),
           "SCHEDC_BTF": settings.btf or ""}
    proc = run("compile", str(src), env=env)
    assert proc.returncode == 2, proc.stderr
    assert f"bpftool '{missing}' (from SCHEDC_BPFTOOL) does not exist" in proc.stderr
    assert "hint: install one: Debian's bpftool package (apt-get install bpftool" in proc.stderr
    assert "SCHEDC_BPFTOOL" in proc.stderr.split("hint:")[1]
    assert not (tmp_path / "good.bpf.o").exists()
    proc = run("compile", str(src), "--format", "json", env=env)
    data = json.loads(proc.stdout)
    assert proc.returncode == 2 and data["ok"] is False
    assert f"bpftool '{missing}' (from SCHEDC_BPFTOOL) does not exist" in data["error"]["message"]
    assert data["error"]["hint"].startswith("install one: Debian's bpftool package")


def test_no_bpftool_anywhere_names_where_it_looked(monkeypatch, tmp_path):
    from schedc import settings as settings_module

    monkeypatch.setenv("PATH", str(tmp_path))  # a folder with no bpftool
    monkeypatch.setattr(settings_module, "BPFTOOL_PLACES", (str(tmp_path / "sbin" / "bpftool"),))
    try:
        settings_module.find_bpftool(settings_module.Settings())
    except settings_module.EnvironmentProblem as problem:
        assert problem.message.startswith("no bpftool found (none set, none on PATH, none in ")
        assert str(tmp_path / "sbin" / "bpftool") in problem.message
        assert "apt-get install bpftool" in problem.remedy
    else:
        raise AssertionError("a bpftool was found where there is none")
    # The same place with a bpftool in it is found.
    (tmp_path / "sbin").mkdir()
    tool = tmp_path / "sbin" / "bpftool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert settings_module.find_bpftool(settings_module.Settings()) == str(tool)


def test_usage_errors_exit_2():
    assert run("compile").returncode == 2
    assert run("frobnicate").returncode == 2
    assert run().returncode == 2


def test_policy_errors_are_reported_even_without_tools(tmp_path):
    """The front end needs no clang or BTF: a bad policy is exit 1 on any machine."""
    src = tmp_path / "bad.sched"
    src.write_text(BAD)
    proc = run("compile", str(src), env={"SCHEDC_CLANG": "/nonexistent/clang"})
    assert proc.returncode == 1 and "E144" in proc.stderr


def test_compile_with_relative_paths_from_another_folder(toolchain, settings, tmp_path):
    """The README's `schedc compile examples/ljf.sched -o ljf.bpf.o`: a relative source and
    object, resolved against the caller's folder, not the sandbox's."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "good.sched").write_text(GOOD)
    tools = {"SCHEDC_CACHE": settings.cache_dir or "", "SCHEDC_BTF": str(toolchain.btf)}
    if settings.bpftool:
        tools["SCHEDC_BPFTOOL"] = settings.bpftool
    proc = run("compile", "src/good.sched", "-o", "good.bpf.o", env=tools, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "good.bpf.o").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.bpf.o", "src"]
