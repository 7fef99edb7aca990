"""test_policy then submit_policy through the official MCP SDK client, in ONE sandbox boot:
the agent tests a draft on a scenario, and submitting the same source with the same scenario
stores that very report (no second boot), which get_policy then shows. The policy has counters,
which the answer and the stored report carry. A short scenario (1 s, one run per side): CI
time is budgeted."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from tests import test_agent_mcp
from tests.conftest import needs_sandbox, sandbox_uses
from tests.test_agent_mcp import progress_sink, serve
from tests.test_repo_behaviour_vm import COUNTERS, ORDER_OK, TUNABLES

SOURCE = TUNABLES.read_text(encoding="utf-8")

repo = test_agent_mcp.repo  # a fixture


@pytest.mark.vm
def test_test_policy_then_submit_policy_stores_that_report(repo, settings):
    needs_sandbox(settings)
    progress, on_progress = progress_sink()

    async def body(client: Client) -> list[Any]:
        tested = await client.call_tool(
            "test_policy",
            {"source": SOURCE, "scenario": ORDER_OK, "scenario_name": "orderok"},
            progress_callback=on_progress,
        )
        submitted = await client.call_tool(
            "submit_policy",
            {
                "source": SOURCE,
                "name": "tunables",
                "description": "tunables, with its order evidence",
                "verify": "never",
                "scenario": ORDER_OK,
                "scenario_name": "orderok",
            },
            progress_callback=on_progress,
        )
        got = await client.call_tool("get_policy", {"name": "tunables"})
        return [tested.structured_content, submitted.structured_content, got.structured_content]

    tested, submitted, got = serve(repo, settings, body)
    assert tested["ok"] is True and tested["stage"] == "test", tested
    assert "evidence" not in tested  # kept by the server for submit_policy, not sent
    [only] = tested["reports"]  # one per kernel of the matrix: the suite runs on one
    assert only == tested["report"]
    assert list(only["counters"]) == list(COUNTERS), only
    assert only["counters"]["light_enqueued"] + only["counters"]["heavy_enqueued"] > 0
    kinds = {e["kind"]: e for e in tested["report"]["expectations"]}
    assert kinds["order"]["ok"] is True and kinds["enabled"]["ok"] is True
    assert submitted["status"] == "added" and submitted["ok"] is True, submitted
    assert submitted["behaviour_reused"] is True
    assert sandbox_uses(progress) == 1, progress
    assert any("tested earlier in this session" in m for m in progress), progress
    stored = got["behaviour"][0]
    assert stored["scenario"] == "orderok" and stored["ok"] is True
    assert stored["scenario_text"] == ORDER_OK
    assert stored["expectations"] == tested["report"]["expectations"]
    assert stored["kernel"] == tested["report"]["kernel"]
    assert stored["counters"] == only["counters"]
