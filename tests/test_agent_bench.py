"""MCP `bench_policy` through the SDK's client against a real `python -m schedc mcp`: its
argument bounds on the host, and (one boot) a bench in the sandbox whose result is stored in
the repository as a record with `emulated: true` and the profile given."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from schedc.agent.operations import MAX_BENCH_RUNS, MAX_BENCH_SCALE, MAX_BENCH_SECONDS
from schedc.repo.gitstore import GitStore
from schedc.repo.models import PerformanceRecord
from tests import profile_shapes as ps
from tests.conftest import needs_sandbox, sandbox_uses
from tests.test_agent_mcp import FIFO, call, progress_sink, repo, serve
from tests.test_repo_support import synthetic

repo = repo  # the fixture: an empty repository (and clang and a BTF, or a skip)
PROFILE = json.loads(ps.kernel_build().model_dump_json())


def test_bench_policy_arguments_are_bounded_and_checked_before_anything_runs(repo, settings):
    good = {"source": FIFO, "workload": "batch-makespan"}
    bad_share = json.loads(json.dumps(PROFILE))
    bad_share["groups"][0]["cpu_share"] = -1
    planted = dict(PROFILE, secret="x")
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "runs": MAX_BENCH_RUNS + 1}, "runs"),
        ({**good, "runs": 0}, "runs"),
        ({**good, "seconds": MAX_BENCH_SECONDS + 1}, "seconds"),
        ({**good, "seconds": 0}, "seconds"),
        ({**good, "scale": MAX_BENCH_SCALE * 2}, "scale"),
        ({**good, "warmup": 3}, "warmup"),
        ({**good, "workload": "fork-bomb"}, "workload"),
        ({"source": FIFO}, "workload"),
        ({**good, "name": "fifo"}, "exactly one of source and name"),
        ({"name": "../etc", "workload": "hackbench"}, "name"),
        ({"name": "fifo", "revision": "--output=x", "workload": "hackbench"}, "revision"),
        ({**good, "optimise": True}, "optimise"),
        ({**good, "set": ["slice=1ms"] * 33}, "set"),
        ({**good, "profile": bad_share}, "cpu_share"),
        ({**good, "profile": planted}, "secret"),
        ({**good, "profile": "not an object"}, "profile"),
        ({**good, "source": "#" * (256 * 1024 + 1)}, "262144"),
    ]

    async def body(client: Client) -> tuple[dict[str, Any], list[tuple[bool, Any]]]:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        answers = [await call(client, "bench_policy", args) for args, _ in cases]
        answers.append(await call(client, "search_policies", {}))  # still answering
        return tools["bench_policy"].input_schema, answers

    schema, answers = serve(repo, settings, body)
    props = schema["properties"]
    assert props["runs"]["maximum"] == MAX_BENCH_RUNS and props["seconds"]["maximum"] == 30
    assert props["scale"]["maximum"] == MAX_BENCH_SCALE
    assert set(props["workload"]["enum"]) == {
        "batch-makespan",
        "compile",
        "cyclictest",
        "hackbench",
        "stress-ng",
        "wakebench",
    }
    assert schema["required"] == ["workload"]
    for (args, words), (is_error, content) in zip(cases, answers, strict=False):
        assert is_error, (args.keys(), content)
        kind = content["error"]["kind"]
        assert kind in ("invalid_arguments", "too_large"), content
        assert words in content["error"]["message"], (words, content)
    assert answers[-1][1]["ok"] is True


@pytest.mark.vm
def test_bench_policy_measures_in_the_sandbox_and_stores_the_record(repo, settings):
    """One boot: the shortest bench that gives a figure (batch-makespan at scale 0.1, one run
    per side, no warm-up)."""
    needs_sandbox(settings)
    progress, on_progress = progress_sink()
    # In the repository as submit_policy would put it, without its compile and check (the
    # bench compiles it anyway): the record goes to the entry whose source is the one benched.
    synthetic(GitStore(repo), "fifo", "FIFO", source=FIFO)

    async def body(client: Client) -> list[Any]:
        benched = await client.call_tool(
            "bench_policy",
            {
                "name": "fifo",
                "workload": "batch-makespan",
                "scale": 0.1,
                "runs": 1,
                "profile": PROFILE,
                "agent": "test",
            },
            progress_callback=on_progress,
        )
        got = await call(client, "get_policy", {"name": "fifo"})
        return [(bool(benched.is_error), benched.structured_content), got]

    (is_error, bench), (_, got) = serve(repo, settings, body)
    assert not is_error, bench
    assert sandbox_uses(progress) >= 1, progress
    assert bench["workload"] == "batch-makespan" and bench["metric"] == "makespan"
    assert bench["direction"] == "lower" and bench["unit"] == "s"
    [base] = bench["baseline"]["values"]
    [mine] = bench["policy"]["values"]
    assert base > 0 and mine > 0
    assert bench["environment"]["emulated"] is True and bench["environment"]["accelerator"] == "tcg"
    assert bench["ratio"]["value"] == pytest.approx(mine / base, rel=1e-3)
    assert "emulated timings" in bench["summary"]
    assert bench["policy"]["source"] == "policy.sched"  # no host path
    stored = bench["record"]
    assert stored["stored"] is True and stored["name"] == "fifo" and stored["emulated"] is True
    assert stored["profile"] is True
    [rec] = got["records"]
    record = PerformanceRecord.model_validate(rec)
    assert record.id == stored["id"] and record.agent == "test"
    assert record.values == [mine] and record.baseline_values == [base]
    assert record.emulated is True and record.accelerator == "tcg"
    assert record.baseline_scheduler == "EEVDF" and record.policy_version == 1
    assert record.profile is not None and record.profile.shape.groups[0].name == "cc1"
    assert record.machine.cores == bench["environment"]["vcpus"]
