"""One JSON envelope across commands (issue 20, docs/json.md): every `--format json` output,
success or failure, is one object whose first keys are `schedc`, `command`, `ok`, `error`,
`diagnostics` and `results`, in that order and of those types; what a command adds comes
after them. Runs the real `python -m schedc` in a subprocess, as agents do; nothing boots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schedc import __version__
from tests.conftest import ROOT

ENVELOPE = ["schedc", "command", "ok", "error", "diagnostics", "results"]
# What each command may add after the envelope's own keys (docs/json.md).
EXTRAS: dict[str, list[str]] = {
    "verify": ["host", "compare"],
    "repo search": ["query", "filters", "total", "facets", "facets_over", "skipped", "index"],
    "repo log": ["name"],
}
DIAGNOSTIC = ["severity", "code", "message", "file", "line", "column", "end_line", "end_column",
              "hint"]  # fmt: skip
GOOD = 'scheduler good "ok" {\n  class all otherwise\n  queue q for all fifo\n}\n'
BAD = (
    'scheduler bad "x" {\n'
    "  class fast when task.avg_runtime < 5\n"
    "  class rest otherwise\n"
    "  queue q for fast fifo\n"
    "}\n"
)


def schedc(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    """`python -m schedc ARGS`: its exit status and the envelope it printed, checked."""
    proc = subprocess.run(
        [sys.executable, "-m", "schedc", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
        timeout=300,
    )
    data = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert_envelope(data)
    assert (data["ok"] is True) == (proc.returncode == 0), (proc.returncode, data)
    return proc.returncode, data


def assert_envelope(data: object) -> None:
    assert isinstance(data, dict)
    keys = list(data)
    assert keys[: len(ENVELOPE)] == ENVELOPE, keys
    assert data["schedc"] == __version__
    command = data["command"]
    assert isinstance(command, str) and command
    extras = keys[len(ENVELOPE) :]
    allowed = EXTRAS.get(command, [])
    assert extras == [k for k in allowed if k in extras], (command, extras)  # known, in order
    assert isinstance(data["ok"], bool)
    error = data["error"]
    if error is not None:
        assert list(error) == ["message", "hint"], error
        assert isinstance(error["message"], str) and error["message"]
        assert error["hint"] is None or isinstance(error["hint"], str)
        assert data["ok"] is False  # an error is never ok
    assert isinstance(data["diagnostics"], list)
    for d in data["diagnostics"]:
        assert list(d) == DIAGNOSTIC, d
    assert isinstance(data["results"], list)


@pytest.fixture
def cache(settings) -> dict[str, str]:
    return {"SCHEDC_CACHE": settings.cache_dir or ""}


def test_compile_ok_and_failing(toolchain, cache, tmp_path: Path):
    good, bad = tmp_path / "good.sched", tmp_path / "bad.sched"
    good.write_text(GOOD)
    bad.write_text(BAD)
    out = tmp_path / "good.bpf.o"
    code, data = schedc("compile", str(good), "-o", str(out), "--format", "json", env=cache)
    assert code == 0 and data["command"] == "compile" and data["error"] is None
    [compiled] = data["results"]
    assert list(compiled) == ["policy", "object", "c"]
    assert (compiled["policy"], compiled["object"]) == (str(good), str(out))
    assert out.is_file() and Path(compiled["c"]).is_file()
    code, data = schedc("compile", str(bad), "--format", "json", env=cache)
    assert code == 1 and data["error"] is None  # ran to the end: the diagnostics say why
    assert [d["code"] for d in data["diagnostics"]] == ["E105", "E144"]
    assert data["results"] == [{"policy": str(bad), "object": None, "c": None}]


def test_check_has_a_result_per_file_and_every_diagnostic(toolchain, cache, tmp_path: Path):
    bad = tmp_path / "bad.sched"
    bad.write_text(BAD)
    good = ROOT / "examples" / "fifo.sched"
    code, data = schedc("check", str(good), str(bad), "--format", "json", env=cache)
    assert code == 1 and data["command"] == "check" and data["error"] is None
    assert data["results"] == [{"path": str(good), "ok": True}, {"path": str(bad), "ok": False}]
    assert {d["file"] for d in data["diagnostics"] if d["severity"] == "error"} == {str(bad)}


def test_an_environment_problem_is_the_envelope_with_its_remedy(tmp_path: Path):
    policy = tmp_path / "good.sched"
    policy.write_text(GOOD)
    code, data = schedc("compile", str(policy), "--format", "json",
                        env={"SCHEDC_CLANG": "/nonexistent"})  # fmt: skip
    assert code == 2 and data["command"] == "compile"
    assert "SCHEDC_CLANG" in data["error"]["message"] and data["error"]["hint"]
    assert data["diagnostics"] == [] and data["results"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "examples/fifo.sched", "--workload", "nope"], "unknown workload nope"),
        (["bench", "examples/fifo.sched", "--workload", "hackbench", "--warmup", "-1"],
         "--warmup cannot be negative"),
        (["verify", "examples/fifo.sched", "--run", "0"], "--run needs a positive number"),
        (["verify", "examples/fifo.sched", "--compare"], "--compare needs exactly two policies"),
        (["check", "README.md"], "neither a .sched nor a .bpf.c policy"),
    ],
    ids=["bench-workload", "bench-warmup", "verify-run", "verify-compare", "check-kind"],
)  # fmt: skip
def test_usage_errors_after_parsing_are_the_envelope(args: list[str], message: str):
    code, data = schedc(*args, "--format", "json")
    assert code == 2 and data["command"] == args[0]
    assert message in data["error"]["message"] and data["results"] == []


def test_repo_subcommands_put_their_items_in_results(toolchain, cache, tmp_path: Path):
    repo = ["--repo", str(tmp_path / "policies"), "--format", "json"]
    code, data = schedc("repo", "init", *repo, env=cache)
    assert code == 0 and data["command"] == "repo init"
    [made] = data["results"]
    assert made["repo"] == str(tmp_path / "policies") and len(made["head"]) == 40
    code, data = schedc("repo", "list", *repo, env=cache)
    assert code == 0 and data["results"] == []
    fifo = str(ROOT / "examples" / "fifo.sched")
    code, data = schedc("repo", "add", fifo, "--unverified", *repo, env=cache)
    assert code == 0 and data["command"] == "repo add"
    [added] = data["results"]
    assert (added["status"], added["name"], added["version"]) == ("added", "fifo", 1)
    code, data = schedc("repo", "list", *repo, env=cache)
    assert [p["name"] for p in data["results"]] == ["fifo"]
    code, data = schedc("repo", "search", "fifo", *repo, env=cache)
    assert code == 0 and [r["name"] for r in data["results"]] == ["fifo"]
    assert data["query"] == "fifo" and data["total"] == 1  # what the answer is about: extras
    code, data = schedc("repo", "show", "fifo", *repo, env=cache)
    assert code == 0 and [s["name"] for s in data["results"]] == ["fifo"]
    code, data = schedc("repo", "log", "fifo", *repo, env=cache)
    assert code == 0 and data["name"] == "fifo"
    assert [e["action"] for e in data["results"]] == ["add"]
    code, data = schedc("repo", "show", "nothing", *repo, env=cache)
    assert code == 1 and data["command"] == "repo show" and data["results"] == []
    assert data["error"] == {
        "message": "no policy named 'nothing'",
        "hint": "see `schedc repo list`",
    }
    code, data = schedc("repo", "list", "--repo", str(tmp_path / "none"), "--format", "json")
    assert code == 2 and "schedc repo init" in data["error"]["hint"]


def test_bench_results_are_a_list_also_for_one_policy():
    """The envelope `schedc bench --format json` prints, from results as the runner makes them
    on the host (a real bench boots the sandbox)."""
    from schedc.bench.runner import BenchPolicy, BenchResult, RunOutcome
    from schedc.cli.bench import envelope
    from schedc.workloads import RECIPES

    def result(name: str) -> BenchResult:
        runs = [RunOutcome(i + 1, v) for i, v in enumerate((1.2, 1.3, 1.25))]
        policy = BenchPolicy(name, f"examples/{name}.sched", Path(f"/x/{name}.bpf.o"))
        return BenchResult(RECIPES["hackbench"], policy, runs, runs, {"kernel": "6.12.117"})

    one = json.loads(json.dumps(envelope([result("fifo")])))
    assert_envelope(one)
    assert one["command"] == "bench" and isinstance(one["results"], list)
    assert [r["policy"]["name"] for r in one["results"]] == ["fifo"]
    several = json.loads(json.dumps(envelope([result("fifo"), result("ljf")])))
    assert_envelope(several)
    assert [list(r) for r in several["results"]] == [list(one["results"][0])] * 2
