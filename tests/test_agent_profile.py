"""profile_workload through the official MCP client, and `synthesize --profile`: a client
profiles only what the server was started to allow, real processes are profiled, and a
profiled synthesis shows the model the groups and tests its submission on their scenario.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from schedc.agent.profiling import NotAllowed, parse_allow
from schedc.agent.runner import Runner
from schedc.agent.synthesize import synthesize
from schedc.agent.transport import ScriptedTransport, message, scripted_client, text, tool_use
from schedc.behaviour.scenario import parse_scenario
from schedc.profile.model import Profile, profile_from_json
from schedc.repo.catalog import init_repo
from tests.conftest import ROOT
from tests.test_agent_mcp import call, serve

# Two named processes: "hogger" burns CPU, "waker" wakes every 5 ms. They end by themselves.
WORKLOAD = (
    "import ctypes, os, sys, time\n"
    "def named(name):\n"
    "    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)\n"
    "for name in ('hogger', 'waker'):\n"
    "    if os.fork() == 0:\n"
    "        named(name)\n"
    "        end = time.monotonic() + float(sys.argv[1])\n"
    "        while time.monotonic() < end:\n"
    "            if name == 'waker':\n"
    "                time.sleep(0.005)\n"
    "        os._exit(0)\n"
    "os.wait(); os.wait()\n"
)


def workload_command(seconds: float) -> list[str]:
    return [sys.executable, "-c", WORKLOAD, str(seconds)]


@pytest.fixture
def repo(tmp_path: Path, toolchain) -> Path:
    """An empty policy repository (and, through `toolchain`, clang and a BTF, or a skip)."""
    root = tmp_path / "policies"
    init_repo(root)
    return root


@pytest.fixture
def sleeper():
    """A process of the test's own, named 'sleepyhead', for --allow-profile-pid."""
    code = (
        "import ctypes, time; ctypes.CDLL(None).prctl(15, b'sleepyhead', 0, 0, 0); "
        "[time.sleep(0.01) for _ in range(3000)]"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.3)
    yield proc
    proc.kill()
    proc.wait()


def _groups(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in result["profile"]["groups"]}


def test_a_client_profiles_only_what_the_server_allows(repo, settings, sleeper):
    command = "busy=" + shlex.join(workload_command(20))

    async def body(client: Client) -> None:
        # The allowed command, started by the server: both named processes are found, and
        # the draft and the scenario come back usable.
        failed, result = await call(
            client,
            "profile_workload",
            {"command": "busy", "seconds": 1.5, "interval_ms": 50, "draft": True, "scenario": True},
        )
        assert not failed, result
        groups = _groups(result)
        assert {"hogger", "waker"} <= set(groups), groups.keys()
        assert groups["hogger"]["cpu_share"] > groups["waker"]["cpu_share"]
        assert groups["waker"]["wakeups_per_s"] > 5 * groups["hogger"]["wakeups_per_s"]
        parse_scenario(result["scenario"])  # raises on a bad scenario
        failed, compiled = await call(client, "compile_policy", {"source": result["draft"]})
        assert not failed and compiled["ok"], compiled
        Profile.model_validate(result["profile"])

        # The allowed pid.
        failed, result = await call(
            client, "profile_workload", {"pid": sleeper.pid, "seconds": 1, "interval_ms": 50}
        )
        assert not failed, result
        assert "sleepyhead" in _groups(result)

        # Everything else is refused, naming what is allowed.
        for refused in (
            {"pid": os.getpid()},
            {"command": "rm"},
            {"cgroup": "/"},
            {"cgroup": "../../.."},
            {"all": True},
        ):
            failed, result = await call(client, "profile_workload", {**refused, "seconds": 1})
            assert failed, refused
            assert result["error"]["kind"] == "not_allowed", (refused, result)
            assert f"pid {sleeper.pid}" in result["error"]["hint"], result

        # A command line is not a command name, and one target is required.
        for bad in (
            {"command": "python3 -c 'import os; os.system(\"id\")'"},
            {},
            {"pid": sleeper.pid, "all": True},
            {"pid": sleeper.pid, "seconds": 3600},
        ):
            failed, result = await call(client, "profile_workload", bad)
            assert failed and result["error"]["kind"] == "invalid_arguments", (bad, result)

    serve(
        repo,
        settings,
        body,
        "--allow-profile-command",
        command,
        "--allow-profile-pid",
        str(sleeper.pid),
    )


def test_a_server_started_without_permission_profiles_nothing(repo, settings):
    async def body(client: Client) -> None:
        failed, result = await call(client, "profile_workload", {"pid": os.getpid()})
        assert failed and result["error"]["kind"] == "not_allowed"
        assert "--allow-profile-pid" in result["error"]["hint"]

    serve(repo, settings, body)


@pytest.mark.parametrize(
    "option, message",
    [
        (["--allow-profile-command", "no equals sign"], "write NAME=COMMAND"),
        (["--allow-profile-command", "x="], "the command is empty"),
        (["--allow-profile-command", "x='unclosed"], "No closing quotation"),
        (["--allow-profile-pid", "0"], "positive"),
        (["--allow-profile-cgroup", "/nonexistent-schedc-cgroup"], "no such cgroup"),
    ],
)
def test_bad_allow_options_are_usage_errors(option: list[str], message: str, tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "schedc", "mcp", "--repo", str(tmp_path / "r"), *option],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_cgroup_paths_are_judged_after_resolving(tmp_path: Path):
    """A made-up cgroup tree in a temp folder: `..` and a symlink out of the allowed cgroup
    are refused, a cgroup below it is accepted."""
    root = tmp_path / "cgroup"
    (root / "app.slice" / "worker").mkdir(parents=True)
    (root / "other.slice").mkdir()
    (root / "app.slice" / "link").symlink_to(root / "other.slice")
    allow = parse_allow([], ["app.slice"], [], False, cgroup_root=root)
    below = allow.target(pid=None, cgroup="/app.slice/worker", command=None, everything=False)
    assert below.cgroup == str(root / "app.slice" / "worker")
    for escape in ("/app.slice/../other.slice", "app.slice/link", "/other.slice", "/"):
        with pytest.raises(NotAllowed):
            allow.target(pid=None, cgroup=escape, command=None, everything=False)


PROFILE_JSON = {
    "schema_version": 1,
    "created": "2026-12-01T00:00:00Z",
    "target": {"mode": "command", "command": ["make", "-j4"]},
    "seconds": 5.0,
    "interval_ms": 100,
    "samples": 50,
    "machine": {
        "cpus": 4,
        "online": "0-3",
        "topology": {"sockets": 1, "cores": 4, "threads_per_core": 1, "llcs": 1},
        "kernel": "6.12.0",
        "scheduler": "EEVDF",
    },
    "groups": [
        {
            "name": "cc1",
            "leader_comm": "cc1",
            "comm": "cc1",
            "cgroup": "/",
            "threads": 4,
            "processes": 4,
            "cpu_share": 0.9,
            "parallelism": 3.6,
            "runtime_per_run_us": {
                "samples": 40,
                "mean": 9000,
                "p50": 8000,
                "p90": 12000,
                "p99": 20000,
            },
            "run_delay_us": {"samples": 40, "mean": 3000, "p50": 2000, "p90": 6000, "p99": 9000},
            "wakeups_per_s": 2.0,
            "involuntary_per_s": 90.0,
            "nice": [0],
            "policy": ["SCHED_OTHER"],
            "classification": [{"label": "batch", "evidence": ["runs 8 ms per run (p50)"]}],
        },
        {
            "name": "pipewire",
            "leader_comm": "pipewire",
            "comm": "pipewire",
            "cgroup": "/",
            "threads": 1,
            "processes": 1,
            "cpu_share": 0.02,
            "parallelism": 0.08,
            "runtime_per_run_us": {"samples": 40, "mean": 300, "p50": 250, "p90": 500, "p99": 900},
            "run_delay_us": {"samples": 40, "mean": 1500, "p50": 900, "p90": 4000, "p99": 8000},
            "wakeups_per_s": 200.0,
            "involuntary_per_s": 1.0,
            "nice": [-11],
            "policy": ["SCHED_OTHER"],
            "classification": [
                {"label": "latency-critical", "evidence": ["wakes 200/s", "nice -11"]}
            ],
        },
    ],
    "overhead": {"cpu_seconds": 0.05, "fraction_of_one_cpu": 0.01},
}


def test_synthesize_with_a_profile_shows_it_and_tests_the_submission_on_its_scenario(
    repo, settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    profile = profile_from_json(PROFILE_JSON)
    seen: dict[str, Any] = {}

    def first(request: dict[str, Any]) -> dict[str, Any]:
        seen["first"] = request["messages"][0]["content"]
        source = (ROOT / "examples" / "fifo.sched").read_text(encoding="utf-8")
        return message(
            [
                text("Submitting."),
                tool_use(
                    "submit_policy",
                    {
                        "source": source,
                        "name": "fifo",
                        "description": "fifo",
                        "verify": "never",
                    },
                ),
            ]
        )

    def second(request: dict[str, Any]) -> dict[str, Any]:
        [block] = [b for b in request["messages"][-1]["content"] if b["type"] == "tool_result"]
        seen["submit"] = json.loads(block["content"])
        return message([text("done")])

    if settings.cache_dir:
        monkeypatch.setenv("SCHEDC_CACHE", settings.cache_dir)
    # A matrix whose only kernel cannot boot: a submission that is tested on a scenario says
    # so; one that is not (verify never, no scenario) would be stored.
    runner = Runner(repo=repo, overrides={"kernels": [str(tmp_path / "no-kit")]})
    report = synthesize(
        scripted_client(ScriptedTransport([first, second])), runner, "audio first", profile=profile
    )
    first_text = seen["first"]
    assert (
        "<profile>" in first_text
        and '"pipewire"' in first_text
        and "latency-critical" in first_text
    )
    scenario = first_text.split("<scenario>\n", 1)[1].split("\n</scenario>", 1)[0]
    parse_scenario(scenario)
    assert 'comm = "pipewire"' in scenario
    draft = first_text.split("<draft>\n", 1)[1].split("\n</draft>", 1)[0]
    assert "DRAFT" in draft and '"pipewire"' in draft and draft.startswith("#")
    assert seen["submit"]["ok"] is False, seen["submit"]
    assert "no-kit" in json.dumps(seen["submit"]), seen["submit"]
    assert report.submitted is None


def test_synthesize_refuses_a_bad_profile_file(tmp_path: Path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({**PROFILE_JSON, "schema_version": 9}))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schedc",
            "synthesize",
            "goal",
            "--profile",
            str(bad),
            "--replay",
            str(tmp_path / "none.json"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "schema_version 9" in proc.stderr and "profile again" in proc.stderr
