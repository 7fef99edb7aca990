"""The behaviour tools through the official MCP SDK client, without a VM: explain_classification
runs the policy's compiled class conditions on the host (real clang); test_policy and
submit_policy answer a bad scenario with diagnostics at its lines before anything is compiled,
booted or committed; arguments are bounded; get_policy and search_policies show stored
behaviour reports. tests/test_agent_behaviour_vm.py runs test_policy and submit_policy in the
sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from schedc.agent.operations import Context, SubmitArgs, do_submit
from schedc.repo.add import AddOptions, add_policy
from schedc.repo.entries import load_entry, verification_of
from schedc.repo.gitstore import GitStore
from schedc.repo.models import MAX_SCENARIO_CHARS
from tests import test_agent_mcp
from tests.conftest import ROOT, needs_sandbox
from tests.test_agent_mcp import call, progress_sink, serve
from tests.test_repo_behaviour import report, scenario
from tests.test_repo_support import commit_count

EXAMPLES = ROOT / "examples"
LJF = (EXAMPLES / "ljf.sched").read_text(encoding="utf-8")
SHARE = (EXAMPLES / "weighted_share.sched").read_text(encoding="utf-8")
BOOST = (EXAMPLES / "interactive_boost.sched").read_text(encoding="utf-8")
repo = test_agent_mcp.repo  # a fixture: an empty repository (and clang, or a skip)
SCENARIO = (EXAMPLES / "ljf.scenario.toml").read_text(encoding="utf-8")


def test_explain_classification_runs_the_compiled_class_conditions(repo, settings):
    async def body(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(
                client,
                "explain_classification",
                {
                    "source": LJF,
                    "tasks": [
                        {"comm": "ffmpeg"},
                        {"comm": "cc1", "avg_runtime_ms": 2500},
                        {"comm": "cc1", "avg_runtime_ms": 2},
                    ],
                },
            ),
            await call(
                client,
                "explain_classification",
                {
                    "source": SHARE,
                    "tasks": [
                        {"comm": "web", "cgroup": "/background.slice/backup.service"},
                        {"comm": "web", "cgroup": "/background.slicex"},
                        {"comm": "web", "nice": 5},
                        {"comm": "web", "cgroup": "/foreground.slice/web.service"},
                    ],
                },
            ),
            await call(
                client,
                "explain_classification",
                {
                    "source": BOOST,
                    "tasks": [
                        {"comm": "audio", "wakeup_rate": 200, "avg_runtime_ms": 0.5},
                        {"comm": "audio", "wakeup_rate": 200, "avg_runtime_ms": 5},
                        {"comm": "audio", "wakeup_rate": 10, "avg_runtime_ms": 0.5},
                    ],
                },
            ),
        ]

    (e1, ljf), (e2, share), (e3, boost) = serve(repo, settings, body)
    assert not e1 and ljf["ok"] is True, ljf
    assert [r["class"] for r in ljf["results"]] == ["long", "long", "short"]
    first = ljf["results"][0]
    assert first["queue"] == "long_q" and first["dispatch_position"] == 1
    assert first["statement"].startswith("class long  when task.avg_runtime > long_run")
    assert first["line"] == 9
    assert ljf["reads"] == ["task.avg_runtime", "task.comm"]
    assert first["defaults_used"] == ["task.avg_runtime"]  # only comm was given
    assert ljf["results"][1]["defaults_used"] == []
    assert [r["queue"] for r in ljf["results"]] == ["long_q", "long_q", "short_q"]
    assert not e2 and [r["class"] for r in share["results"]] == [
        "background",
        "system",  # not under /background.slice, nor /foreground.slice
        "background",
        "foreground",
    ]
    assert not e3 and [r["class"] for r in boost["results"]] == ["interactive", "rest", "rest"]
    assert boost["results"][0]["preempts"] is True


BROWSER = """scheduler browser "Browser threads first" {
  class web when task.process.comm in ["firefox", "chrome"]
  class rest otherwise
  queue web_q for web fifo
  queue rest_q for rest vtime
  dispatch web_q then rest_q, aging 200ms
}
"""


def test_explain_classification_matches_a_thread_by_its_process(repo, settings):
    async def body(client: Client) -> list[tuple[bool, Any]]:
        tasks = [
            {"comm": "Renderer", "process_comm": "firefox"},
            {"comm": "Renderer", "process_comm": "evince"},
            {"comm": "firefox"},  # the main thread: its process's name is its own
            {"comm": "chrome", "process_comm": "bash"},
        ]
        return [await call(client, "explain_classification", {"source": BROWSER, "tasks": tasks})]

    [(error, answer)] = serve(repo, settings, body)
    assert not error and answer["ok"] is True, answer
    assert [r["class"] for r in answer["results"]] == ["web", "rest", "web", "rest"]
    assert answer["reads"] == ["task.process.comm"]
    assert answer["results"][2]["defaults_used"] == ["task.process.comm"]


def test_explain_classification_refuses_what_it_cannot_answer(repo, settings):
    async def body(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(
                client, "explain_classification", {"source": LJF, "tasks": [{"comm": "x" * 16}]}
            ),
            await call(client, "explain_classification", {"source": LJF, "tasks": [{}] * 33}),
            await call(client, "explain_classification", {"source": LJF, "tasks": []}),
            await call(
                client,
                "explain_classification",
                {"source": LJF, "tasks": [{"cgroup": "/../etc"}]},
            ),
            await call(
                client,
                "explain_classification",
                {"source": "scheduler x {\n  class a when task.bogus > 1\n}\n", "tasks": [{}]},
            ),
            await call(client, "explain_classification", {"name": "nothere", "tasks": [{}]}),
            await call(client, "explain_classification", {"source": LJF, "tasks": [{}]}),
        ]

    results = serve(repo, settings, body)
    (e1, long_comm), (e2, many), (e3, none), (e4, dots), (e5, bad), (e6, missing), ok = results
    for is_error, payload in ((e1, long_comm), (e2, many), (e3, none), (e4, dots)):
        assert is_error and payload["error"]["kind"] == "invalid_arguments", payload
    assert "tasks" in many["error"]["message"] and "32" in many["error"]["message"]
    assert not e5 and bad["ok"] is False and bad["stage"] == "translate"
    assert bad["diagnostics"][0]["line"] == 2
    assert e6 and missing["error"]["kind"] == "repository"
    assert ok[1]["ok"] is True and ok[1]["results"][0]["class"] == "short"  # still serving


def test_test_policy_reports_scenario_errors_at_their_lines_before_compiling(repo, settings):
    bad_toml = 'duration = "1s"\n[[group]]\nname = "a"\ncomm = "a"\nspin = {}\ncpus = = 2\n'
    bad_value = SCENARIO.replace('kind = "starvation"', 'kind = "orders"', 1)
    broken_policy = "scheduler broken {\n  class a when task.nope\n}\n"

    async def body(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(client, "test_policy", {"source": LJF, "scenario": bad_toml}),
            await call(
                client,
                "test_policy",
                {"source": LJF, "scenario": bad_value, "scenario_name": "ljf"},
            ),
            await call(
                client,
                "test_policy",
                {"source": LJF, "scenario": "x" * (MAX_SCENARIO_CHARS + 1)},
            ),
            await call(client, "test_policy", {"source": LJF, "scenario": SCENARIO, "runs": 4}),
            await call(client, "test_policy", {"source": LJF, "name": "ljf", "scenario": SCENARIO}),
            await call(
                client,
                "test_policy",
                {"source": LJF, "scenario": SCENARIO, "scenario_name": "../x"},
            ),
            await call(
                client,
                "submit_policy",
                {
                    "source": broken_policy,
                    "name": "broken",
                    "description": "x",
                    "scenario": bad_toml,
                },
            ),
        ]

    got = serve(repo, settings, body)
    (e1, toml), (e2, value), (e3, huge), (e4, runs), (e5, both), (e6, name), (e7, submit) = got
    assert not e1 and toml["ok"] is False and toml["stage"] == "scenario"
    d = toml["diagnostics"][0]
    assert (d["code"], d["file"], d["line"]) == ("T001", "scenario.scenario.toml", 6)
    line = bad_value.splitlines().index('kind = "orders"')  # its [[expect]] table's line
    assert bad_value.splitlines()[line - 1] == "[[expect]]"
    d = value["diagnostics"][0]
    assert (d["code"], d["file"], d["line"]) == ("T002", "ljf.scenario.toml", line), value
    assert "unknown expectation kind" in d["message"]
    for is_error, payload in ((e3, huge), (e4, runs), (e5, both), (e6, name)):
        assert is_error and payload["error"]["kind"] in ("invalid_arguments", "too_large")
    assert "exactly one of source and name" in both["error"]["message"]
    assert not e7 and submit["status"] == "rejected" and submit["stage"] == "scenario"
    assert commit_count(repo) == 1  # nothing was committed (init's commit only)


def test_get_policy_and_search_show_stored_behaviour_reports(repo, settings, toolchain):
    fifo = EXAMPLES / "fifo.sched"
    options = AddOptions(
        verify="never", scenarios=[scenario()], tested=[report(fifo, scenario(), failing=True)]
    )
    assert add_policy(GitStore(repo), fifo, settings, options).status == "added"
    options = AddOptions(
        verify="never",
        scenarios=[scenario("ljf")],
        tested=[report(Path(EXAMPLES / "ljf.sched"), scenario("ljf"))],
    )
    assert add_policy(GitStore(repo), EXAMPLES / "ljf.sched", settings, options).ok

    async def body(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(client, "get_policy", {"name": "fifo"}),
            await call(client, "search_policies", {"behaviour_passing": True}),
            await call(client, "search_policies", {}),
        ]

    (e1, got), (e2, passing), (e3, every) = serve(repo, settings, body)
    assert not e1
    stored = got["behaviour"][0]
    assert stored["ok"] is False and stored["kernel"] == "6.12.3"
    failed = [e for e in stored["expectations"] if not e["ok"]]
    assert [(e["kind"], e["measured"], e["baseline"]) for e in failed] == [
        ("starvation", 0.75, 0.5)
    ]
    assert stored["scenario_text"] == (EXAMPLES / "fifo.scenario.toml").read_text()
    assert got["verification"]["behaviour"][0]["ok"] is False
    assert not e2 and [r["name"] for r in passing["results"]] == ["ljf"]
    assert passing["filters"]["behaviour_passing"] is True
    assert sorted(r["name"] for r in every["results"]) == ["fifo", "ljf"]


def _kit_with_a_broken_bpftool(root: Path) -> Path:
    """A kit folder that has a bzImage but whose bpftool prints no version."""
    root.mkdir()
    (root / "bzImage").write_bytes(b"not booted: the check refuses the kit first")
    tool = root / "bpftool"
    tool.write_text("#!/bin/sh\nexit 1\n")
    tool.chmod(0o755)
    return root


def test_test_policy_checks_every_kernel_of_the_matrix_before_compiling(
    repo, settings, tmp_path: Path
):
    """With a matrix whose second kit cannot be booted, test_policy answers an environment
    error that names that kit, before compiling (the policy has an error that compiling would
    report) and before any boot."""
    needs_sandbox(settings)  # the first kernel must pass the check
    broken = "scheduler broken {\n  class a when task.nope\n}\n"
    bad_kit = _kit_with_a_broken_bpftool(tmp_path / "kit-b")
    missing = tmp_path / "kit-missing"
    progress, on_progress = progress_sink()

    def ask(kernels: str) -> tuple[bool, Any]:
        async def body(client: Client) -> tuple[bool, Any]:
            result = await client.call_tool(
                "test_policy",
                {"source": broken, "scenario": SCENARIO, "scenario_name": "ljf"},
                progress_callback=on_progress,
            )
            return bool(result.is_error), result.structured_content

        return serve(repo, settings, body, env={"SCHEDC_KERNELS": kernels})

    first = str(settings.kernel)
    for kernels, named in ((f"{first}:{bad_kit}", "kernel 2/2"), (f"{first}:{missing}", "")):
        is_error, answer = ask(kernels)
        assert is_error and answer["error"]["kind"] == "environment", answer
        message = answer["error"]["message"]  # paths cut to their last part (scrubbed)
        assert (bad_kit if named else missing).name in message and named in message, message
        assert "diagnostics" not in answer  # not compiled
    assert not any("compiling" in m or "booting" in m for m in progress), progress


def test_submit_stores_the_reports_of_every_kernel_tested_in_the_session(repo, settings):
    """test_policy on a matrix answers one report per kernel; the session keeps them all, and
    submit_policy of the same source and scenario stores every kernel's (no boot)."""
    fifo = EXAMPLES / "fifo.sched"
    given = scenario()
    reports = [report(fifo, given, kernel="6.12.117"), report(fifo, given, kernel="7.2.13")]
    ctx = Context(repo, settings)
    ctx.prior_behaviour = [r.model_dump(mode="json") for r in reports]
    args = SubmitArgs(
        source=fifo.read_text(),
        name="fifo",
        description="FIFO with its evidence on two kernels",
        verify="never",
        scenario=given.text,
        scenario_name="fifo",
    )
    answer = do_submit(ctx, args)
    assert answer["status"] == "added" and answer["behaviour_reused"] is True, answer
    assert [r["kernel"] for r in answer["behaviour"]] == ["6.12.117", "7.2.13"]
    entry = load_entry(GitStore(repo), "fifo")
    assert entry is not None
    stored, problem = verification_of(entry)
    assert stored is not None, problem
    assert sorted(r.kernel for r in stored.behaviour) == ["6.12.117", "7.2.13"]


TUNABLE = """scheduler tun "Tunable slices" {
  param quantum = 20ms in 1ms..100ms
  class all otherwise
  queue q for all vtime
  slice all = quantum
}
"""


def test_verify_and_test_policy_take_set_and_check_it_before_a_boot(repo, settings):
    needs_sandbox(settings)  # test_policy checks that it can boot before it compiles

    async def body(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(
                client, "verify_policy", {"source": TUNABLE, "set": ["quantum=500ms"]}
            ),
            await call(
                client,
                "test_policy",
                {"source": TUNABLE, "scenario": SCENARIO, "set": ["quantm=5ms"]},
            ),
            await call(client, "verify_policy", {"source": TUNABLE, "set": ["quantum 5ms"]}),
        ]

    (e1, verify), (e2, test), (e3, malformed) = serve(repo, settings, body)
    assert not e1 and verify["ok"] is False and verify["stage"] == "compile", verify
    assert [(d["code"], d["line"]) for d in verify["diagnostics"]] == [("E125", 2)]
    assert not e2 and test["ok"] is False and test["stage"] == "compile", test
    assert [d["code"] for d in test["diagnostics"]] == ["E123"]
    assert "quantum" in test["diagnostics"][0]["message"]  # it names the params there are
    assert e3  # the schema refuses what is not NAME=VALUE
