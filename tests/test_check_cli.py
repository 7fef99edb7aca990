"""The `schedc check` contract: exit codes, human, JSON and SARIF output, mixed inputs, and the
environment problems that exit 2 with a remedy. Runs the real command in a subprocess, as
pre-commit and agents do."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schedc.cli import add_command
from schedc.cli.exit import Exit
from schedc.verifier.rules.catalog import RULES
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "check"
INCLUDE = ["-I", str(DATA / "include")]
GOOD_C = DATA / "K020_right_callback.bpf.c"
BAD_C = DATA / "K020_wrong_callback.bpf.c"
GOOD_DSL = ROOT / "examples" / "fifo.sched"
BAD_DSL = 'scheduler bad "x" {\n  class fast when task.avg_runtime < 5\n  class rest otherwise\n  queue q for fast fifo\n}\n'
JSON_KEYS = {"severity", "code", "message", "file", "line", "column", "end_line", "end_column", "hint"}


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "schedc", "check", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=300,
    )


@pytest.fixture
def cache_env(settings) -> dict[str, str]:
    return {"SCHEDC_CACHE": settings.cache_dir or ""}


def test_clean_policies_of_both_kinds_exit_0(toolchain, cache_env):
    proc = run(str(GOOD_DSL), str(GOOD_C), *INCLUDE, env=cache_env)
    assert proc.returncode == Exit.OK, proc.stderr
    assert "checked 2 files: no problems found." in proc.stderr


def test_errors_exit_1_with_caret_diagnostics(toolchain, cache_env):
    proc = run(str(GOOD_DSL), str(BAD_C), *INCLUDE, env=cache_env)
    assert proc.returncode == Exit.ERRORS
    rel = BAD_C.relative_to(ROOT)
    assert f"{rel}:13:9: error[K020]: scx_bpf_consume() may be called only from ops.dispatch" in proc.stderr
    assert "   13 |  return scx_bpf_consume(dsq);" in proc.stderr
    assert "      |         ^~~~~~~~~~~~~~~~~~~~" in proc.stderr
    assert "  hint: move tasks to the local DSQ only in ops.dispatch" in proc.stderr
    assert proc.stderr.rstrip().endswith("3 errors generated.")


def test_json_has_the_compile_shape(toolchain, cache_env):
    proc = run(str(BAD_C), *INCLUDE, "--format", "json", env=cache_env)
    assert proc.returncode == Exit.ERRORS
    data = json.loads(proc.stdout)
    assert list(data) == ["schedc", "command", "ok", "error", "diagnostics", "results"]
    assert data["ok"] is False and data["command"] == "check" and data["error"] is None
    assert data["results"] == [{"path": str(BAD_C), "ok": False}]
    assert all(set(d) == JSON_KEYS for d in data["diagnostics"])
    assert [(d["code"], d["line"]) for d in data["diagnostics"]] == [("K020", 13), ("K020", 21), ("K020", 29)]


def test_warnings_alone_exit_0(toolchain, cache_env):
    proc = run(str(DATA / "K071_printk_hot.bpf.c"), *INCLUDE, "--format", "json", env=cache_env)
    assert proc.returncode == Exit.OK
    data = json.loads(proc.stdout)
    assert data["ok"] is True and {d["severity"] for d in data["diagnostics"]} == {"warning"}
    assert data["results"] == [{"path": str(DATA / "K071_printk_hot.bpf.c"), "ok": True}]


def test_sarif_2_1_0(toolchain, cache_env):
    proc = run(str(BAD_C), str(DATA / "K071_printk_hot.bpf.c"), *INCLUDE, "--format", "sarif",
               env=cache_env)
    assert proc.returncode == Exit.ERRORS
    log = json.loads(proc.stdout)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-schema-2.1.0.json")
    (run_,) = log["runs"]
    driver = run_["tool"]["driver"]
    rule_ids = [r["id"] for r in driver["rules"]]
    assert set(RULES) <= set(rule_ids)
    assert run_["originalUriBaseIds"]["SRCROOT"]["uri"] == ROOT.resolve().as_uri() + "/"
    first = run_["results"][0]
    assert first["ruleId"] == "K020" and first["level"] == "error"
    assert rule_ids[first["ruleIndex"]] == "K020"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {
        "uri": "tests/data/check/K020_wrong_callback.bpf.c", "uriBaseId": "SRCROOT"}
    assert location["region"] == {"startLine": 13, "startColumn": 9, "endLine": 13, "endColumn": 29}
    assert "hint: " in first["message"]["text"]
    assert {r["level"] for r in run_["results"]} == {"error", "warning"}


def test_dsl_errors_need_no_toolchain(tmp_path):
    policy = tmp_path / "bad.sched"
    policy.write_text(BAD_DSL)
    proc = run(str(policy), "--format", "json", env={"SCHEDC_BTF": str(tmp_path / "none.btf")})
    assert proc.returncode == Exit.ERRORS
    codes = [d["code"] for d in json.loads(proc.stdout)["diagnostics"]]
    assert codes and all(c.startswith(("E", "W")) for c in codes)


def test_missing_btf_exits_2_with_the_remedy(tmp_path):
    proc = run(str(GOOD_DSL), env={"SCHEDC_BTF": str(tmp_path / "none.btf")})
    assert proc.returncode == Exit.USAGE
    assert "does not exist" in proc.stderr and "hint: pass --btf" in proc.stderr
    proc = run(str(GOOD_DSL), "--format", "json", env={"SCHEDC_BTF": str(tmp_path / "none.btf")})
    assert proc.returncode == Exit.USAGE
    data = json.loads(proc.stdout)
    assert data["ok"] is False and "does not exist" in data["error"]["message"]
    assert data["error"]["hint"].startswith("pass --btf")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["README.md"], "neither a .sched nor a .bpf.c policy"),
        ([str(GOOD_DSL), "--target-kernel", "5.15"], "sched_ext exists from Linux 6.12 on"),
        ([str(GOOD_DSL), "--target-kernel", "latest"], "is not a kernel version"),
        ([], "the following arguments are required: FILE"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str):
    proc = run(*args)
    assert proc.returncode == Exit.USAGE and message in proc.stderr


def test_a_missing_file_is_an_error_of_the_policy(toolchain, cache_env, tmp_path):
    proc = run(str(tmp_path / "gone.bpf.c"), "--format", "json", env=cache_env)
    assert proc.returncode == Exit.ERRORS
    assert json.loads(proc.stdout)["diagnostics"][0]["code"] == "E000"


def test_registers_as_a_subcommand(toolchain, settings, capsys, monkeypatch):
    monkeypatch.setenv("SCHEDC_CACHE", settings.cache_dir or "")
    parser = argparse.ArgumentParser(prog="schedc")
    add_command(parser.add_subparsers(dest="command"), "check")
    args = parser.parse_args(["check", str(GOOD_C), *INCLUDE, "--target-kernel", "6.13"])
    assert args.target_kernel == (6, 13)
    assert args.func(args) == Exit.OK  # warnings only: the 6.12 names are deprecated in 6.13
    err = capsys.readouterr().err
    assert "warning[K051]: scx_bpf_consume() is deprecated since 6.13" in err
    assert err.endswith("3 warnings generated.\n")
