"""The synthesis loop with the real `anthropic` client over a scripted transport: no network,
everything else real (compiler, checks, git, and the sandbox kernel's verifier for the full
loop). Scripted turns read the tool results the loop sent back, as a model would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schedc.agent.runner import Runner
from schedc.agent.synthesize import DEFAULT_MODEL, render, synthesize
from schedc.agent.transport import (
    ScriptedTransport,
    api_error,
    last_tool_results,
    message,
    scripted_client,
    text,
    tool_use,
)
from schedc.repo.catalog import init_repo
from schedc.repo.gitstore import GitStore
from schedc.repo.history import show_json, show_policy
from tests.conftest import ROOT, needs_sandbox

LJF = (ROOT / "examples" / "ljf.sched").read_text(encoding="utf-8")
GOOD = LJF.replace("scheduler ljf ", "scheduler batch_ljf ")
BROKEN = GOOD.replace("task.avg_runtime > long_run", "task.avg_runtime > 10")


@pytest.fixture
def runner(tmp_path: Path, toolchain, settings, monkeypatch: pytest.MonkeyPatch) -> Runner:
    """A runner on a fresh repository that already holds `ljf` (to be found and derived from)."""
    root = tmp_path / "policies"
    init_repo(root)
    monkeypatch.setenv("SCHEDC_CACHE", settings.cache_dir or str(tmp_path / "cache"))
    seeded = Runner(repo=root).call(
        "submit_policy",
        {"source": LJF, "name": "ljf", "description": "longest job first", "verify": "never"},
    )
    assert seeded["status"] == "added", seeded
    return Runner(repo=root)


def submit(source: str, **extra: Any) -> dict[str, Any]:
    return tool_use(
        "submit_policy",
        {
            "source": source,
            "name": "batch_ljf",
            "description": "Long batch jobs first, for makespan",
            "tags": ["batch", "makespan"],
            "parent": "ljf",
            **extra,
        },
    )


def fix_from_diagnostics(request: dict[str, Any]) -> dict[str, Any]:
    """The turn after the broken submission: find the error the tool reported and repair that
    line the way its hint says."""
    [result] = last_tool_results(request)
    assert result["status"] == "rejected"
    [diag] = [d for d in result["diagnostics"] if d["severity"] == "error"]
    assert diag["code"] == "E105" and "10ms" in diag["hint"]
    lines = BROKEN.splitlines(keepends=True)
    row = diag["line"] - 1
    col = diag["column"] - 1
    lines[row] = lines[row][:col] + lines[row][col:].replace("> 10 ", "> 10ms ", 1)
    fixed = "".join(lines)
    return message(
        [text(f"The duration needs a unit; fixing line {diag['line']}."), submit(fixed)],
        input_tokens=5200,
        output_tokens=900,
    )


@pytest.mark.vm
def test_the_loop_fixes_a_broken_policy_from_diagnostics_and_submits_it_verified(
    runner: Runner, settings
):
    needs_sandbox(settings)
    transport = ScriptedTransport(
        [
            message([text("Searching first."), tool_use("search_policies", {"query": "batch"})]),
            message([submit(BROKEN)], input_tokens=4000, output_tokens=700),
            fix_from_diagnostics,
        ]
    )
    lines: list[str] = []
    report = synthesize(
        scripted_client(transport), runner, "finish a batch of jobs sooner", say=lines.append
    )

    assert report.outcome == "submitted", render(report)
    assert report.verified, report.submitted
    assert (report.iterations, report.round_trips) == (3, 3)
    assert [(c.name, c.ok) for c in report.tool_calls] == [
        ("search_policies", True),
        ("submit_policy", False),
        ("submit_policy", True),
    ]
    assert (report.input_tokens, report.output_tokens) == (1000 + 4000 + 5200, 200 + 700 + 900)
    assert report.cost_usd == pytest.approx((10200 * 3 + 1800 * 15) / 1e6)

    # What the model was sent: the tools, the reference in a cached system prompt, and the
    # search result, which named the policy the fix derives from.
    first = transport.requests[0]
    assert first["model"] == DEFAULT_MODEL
    assert {t["name"] for t in first["tools"]} >= {"submit_policy", "search_policies"}
    assert "## 7. Writing a policy with an LLM" in first["system"][0]["text"]
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    [found] = last_tool_results(transport.requests[1])
    assert "ljf" in [r["name"] for r in found["results"]]

    store = GitStore(runner.repo)  # type: ignore[arg-type]
    shown = show_json(*show_policy(store, "batch_ljf"))
    assert shown["source"].count("task.avg_runtime > 10ms") == 1
    assert shown["meta"]["parent"] == "ljf"
    assert shown["meta"]["agent"] == f"schedc-synthesize/{DEFAULT_MODEL}"
    assert shown["verification"]["summary"]["status"] == "verified"
    assert any("booting sandbox" in line for line in lines), "VM progress is shown"


def test_bad_tool_input_from_the_model_is_an_error_result_and_the_loop_goes_on(runner):
    transport = ScriptedTransport(
        [
            message([submit(GOOD, name="../../escape", verify="never")]),
            message([submit(GOOD, verify="never")]),
        ]
    )
    report = synthesize(scripted_client(transport), runner, "batch")
    assert report.outcome == "submitted"
    [bad] = last_tool_results(transport.requests[1])
    assert bad["error"]["kind"] == "invalid_arguments" and "name" in bad["error"]["message"]
    sent = transport.requests[1]["messages"][-1]["content"][0]
    assert sent["is_error"] is True
    assert report.submitted["name"] == "batch_ljf"
    assert report.submitted["verification"]["status"] == "unverified"
    assert not report.verified


def test_the_loop_stops_when_the_model_stops_or_at_the_iteration_limit(runner):
    finished = synthesize(
        scripted_client(ScriptedTransport([message([text("I cannot do that.")])])), runner, "x"
    )
    assert finished.outcome == "model_finished" and finished.submitted is None
    assert finished.final_text == "I cannot do that."

    looping = ScriptedTransport([message([tool_use("search_policies", {})])] * 5)
    limited = synthesize(scripted_client(looping), runner, "x", max_iterations=2)
    assert limited.outcome == "max_iterations" and limited.iterations == 2
    assert len(looping.requests) == 2


def test_api_errors_end_the_loop_with_the_reason(runner):
    refused = ScriptedTransport([api_error(401, "authentication_error", "invalid x-api-key")])
    report = synthesize(scripted_client(refused), runner, "x")
    assert report.outcome == "api_error"
    assert "401" in report.error and "invalid x-api-key" in report.error
    assert "nothing submitted (api_error)" in render(report)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT))
    full.pop("ANTHROPIC_API_KEY", None)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "schedc", "synthesize", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=ROOT,
        timeout=600,
    )


def test_cli_needs_an_api_key_and_replays_a_transcript(runner, tmp_path):
    ran = _cli("a goal", "--repo", str(runner.repo))
    assert ran.returncode == 2
    assert "ANTHROPIC_API_KEY" in ran.stderr and "Traceback" not in ran.stderr

    # Record a run (what --transcript writes), then replay it through the command line.
    recording: list[dict[str, Any]] = []
    transport = ScriptedTransport(
        [
            message([tool_use("search_policies", {"query": "ljf"})]),
            message([submit(GOOD, verify="never")]),
        ]
    )
    synthesize(scripted_client(transport), runner, "batch", recording=recording)
    transcript = tmp_path / "run.json"
    transcript.write_text(json.dumps({"responses": recording}), encoding="utf-8")
    other = tmp_path / "other"
    init_repo(other)
    ran = _cli(
        "batch",
        "--repo",
        str(other),
        "--replay",
        str(transcript),
        "--format",
        "json",
        "--transcript",
        str(tmp_path / "again.json"),
    )
    assert ran.returncode == 0, ran.stderr
    data = json.loads(ran.stdout)
    assert (data["command"], data["ok"], data["error"]) == ("synthesize", True, None)
    [report] = data["results"]
    assert report["outcome"] == "submitted" and report["submitted"]["name"] == "batch_ljf"
    assert [c["name"] for c in report["tool_calls"]] == ["search_policies", "submit_policy"]
    assert "[2] submit_policy" in ran.stderr
    again = json.loads((tmp_path / "again.json").read_text(encoding="utf-8"))
    assert len(again["responses"]) == 2

    broken = tmp_path / "broken.json"
    broken.write_text("{}", encoding="utf-8")
    ran = _cli("x", "--repo", str(other), "--replay", str(broken))
    assert ran.returncode == 2 and "not a schedc synthesize transcript" in ran.stderr


def test_the_workload_description_reaches_the_model_and_a_huge_one_is_refused(runner, tmp_path):
    transport = ScriptedTransport([message([text("ok")])])
    synthesize(scripted_client(transport), runner, "goal", workload="nginx, 64 workers, p99 matters")
    first = transport.requests[0]["messages"][0]["content"]
    assert "Goal: goal" in first and "<workload>\nnginx, 64 workers, p99 matters" in first

    huge = tmp_path / "workload.txt"
    huge.write_text("x" * (64 * 1024))
    ran = _cli("goal", "--workload", str(huge), env={"ANTHROPIC_API_KEY": "unused"})
    assert ran.returncode == 2 and "larger than 32 KiB" in ran.stderr
