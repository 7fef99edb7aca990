"""`schedc mcp` driven by the official SDK's client over stdio: the server is a real subprocess
(`python -m schedc mcp`), the tools run the real compiler, libclang, git and (verify_policy)
the sandbox kernel's verifier. Each tool: its happy path and its bad-input path; and the server
keeps answering after every kind of bad input.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from schedc.repo.catalog import init_repo
from tests.conftest import ROOT, needs_sandbox, sandbox_uses

T = TypeVar("T")
LJF = (ROOT / "examples" / "ljf.sched").read_text(encoding="utf-8")
FIFO = (ROOT / "examples" / "fifo.sched").read_text(encoding="utf-8")
TOOLS = {
    "search_policies",
    "get_policy",
    "compile_policy",
    "check_policy",
    "verify_policy",
    "submit_policy",
    "test_policy",
    "explain_classification",
    "profile_workload",
    "bench_policy",
    "record_result",
    "dsl_reference",
}


@pytest.fixture
def repo(tmp_path: Path, toolchain) -> Path:
    """An empty policy repository (and, through `toolchain`, clang and a BTF, or a skip)."""
    root = tmp_path / "policies"
    init_repo(root)
    return root


def serve(
    repo: Path,
    settings,
    body: Callable[[Client], Awaitable[T]],
    *extra: str,
    env: dict[str, str] | None = None,
) -> T:
    """`schedc mcp` on `repo` through the SDK's stdio client; `body` talks to it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    if settings.cache_dir:
        env["SCHEDC_CACHE"] = settings.cache_dir
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "schedc", "mcp", "--repo", str(repo), *extra],
        env=env,
        cwd=str(ROOT),
    )

    async def main() -> T:
        async with Client(params, read_timeout_seconds=600) as client:
            return await body(client)

    return anyio.run(main)



def progress_sink() -> tuple[list[str], Callable[[float, float | None, str | None], Any]]:
    """A progress callback for call_tool, and the list of messages it receives."""
    messages: list[str] = []

    async def on_progress(_done: float, _total: float | None, message: str | None) -> None:
        messages.append(message or "")

    return messages, on_progress


async def call(client: Client, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """(is_error, structured content or, for SDK-level rejections, the text)."""
    result = await client.call_tool(name, arguments)
    if result.structured_content is not None:
        return bool(result.is_error), result.structured_content
    return bool(result.is_error), "".join(getattr(c, "text", "") for c in result.content)


def test_lists_every_tool_with_typed_schemas_and_the_resources(repo, settings):
    async def body(client: Client) -> dict[str, Any]:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        resources = (await client.list_resources()).resources
        reference = await client.read_resource("schedc://dsl-reference")
        example = await client.read_resource("schedc://examples/ljf")
        prompts = (await client.list_prompts()).prompts
        prompt = await client.get_prompt(
            "write_policy", {"goal": "keep audio glitch-free", "workload": "pipewire, a build"}
        )
        try:
            await client.get_prompt("write_policy", {"goal": "x" * 5000})
            too_long = "accepted"
        except MCPError as exc:
            too_long = str(exc)
        return {
            "too_long": too_long,
            "prompts": {p.name: p for p in prompts},
            "prompt": prompt.messages[0].content.text,
            "tools": tools,
            "resources": {str(r.uri) for r in resources},
            "reference": reference.contents[0].text,
            "example": example.contents[0].text,
            "instructions": client.instructions,
        }

    got = serve(repo, settings, body)
    assert set(got["tools"]) == TOOLS
    compile_schema = got["tools"]["compile_policy"].input_schema
    assert compile_schema["properties"]["source"]["maxLength"] == 256 * 1024
    assert compile_schema["properties"]["language"]["enum"] == ["dsl", "c"]
    assert compile_schema["required"] == ["source"]
    submit_schema = got["tools"]["submit_policy"].input_schema
    assert submit_schema["properties"]["name"]["pattern"] == "^[a-z][a-z0-9_]{0,23}$"
    assert got["tools"]["search_policies"].annotations.read_only_hint is True
    assert got["tools"]["submit_policy"].annotations.read_only_hint is False
    assert "schedc://dsl-reference" in got["resources"]
    assert {f"schedc://examples/{p.stem}" for p in (ROOT / "examples").glob("*.sched")} <= got[
        "resources"
    ]
    assert "## 7. Writing a policy with an LLM" in got["reference"]
    assert got["example"] == LJF
    assert "submit_policy" in got["instructions"]
    [goal, workload] = got["prompts"]["write_policy"].arguments
    assert (goal.name, goal.required, workload.name, workload.required) == (
        "goal",
        True,
        "workload",
        False,
    )
    assert got["too_long"] == "the goal is longer than 2000 bytes"
    assert "Goal: keep audio glitch-free" in got["prompt"]
    assert "<workload>\npipewire, a build" in got["prompt"]
    assert "## 7. Writing a policy with an LLM" in got["prompt"] and "submit_policy" in got["prompt"]


def test_compile_and_check_report_diagnostics_on_the_agents_lines(repo, settings):
    broken = LJF.replace("task.avg_runtime > long_run", "task.avg_runtime > 10")

    async def body(client: Client) -> dict[str, Any]:
        return {
            "good": await call(client, "compile_policy", {"source": LJF, "emit_c": True}),
            "broken": await call(client, "compile_policy", {"source": broken}),
            "check": await call(client, "check_policy", {"source": LJF}),
            "check_broken": await call(client, "check_policy", {"source": broken}),
            "language": await call(client, "compile_policy", {"source": LJF, "language": "rust"}),
            "empty": await call(client, "compile_policy", {"source": ""}),
            "after": await call(client, "compile_policy", {"source": FIFO}),
        }

    got = serve(repo, settings, body)
    is_error, good = got["good"]
    assert not is_error and good["ok"] and good["diagnostics"] == []
    assert good["artifacts"]["object_bytes"] > 1000
    assert good["policy"]["name"] == "ljf"
    assert '#line 9 "' in good["c"] and "SEC(" in good["c"]

    is_error, broken_result = got["broken"]
    assert not is_error, "a policy's own errors are a normal result, not a tool failure"
    assert broken_result["ok"] is False
    [diag] = [d for d in broken_result["diagnostics"] if d["severity"] == "error"]
    assert (diag["code"], diag["file"], diag["line"]) == ("E105", "policy.sched", 9)
    assert broken.splitlines()[diag["line"] - 1][diag["column"] - 1 :].startswith(
        "task.avg_runtime > 10"
    )
    assert "10ms" in diag["hint"]

    assert got["check"][1]["ok"] is True
    found = got["check_broken"][1]["diagnostics"]
    assert [d["code"] for d in found if d["severity"] == "error"] == ["E105"]

    for key in ("language", "empty"):
        is_error, text = got[key]
        assert is_error, key
        assert "language" in str(text) or "source" in str(text)
    assert got["after"][1]["ok"] is True, "the server answers after bad input"


def test_c_sources_compile_and_hostile_includes_never_reach_clang(repo, settings):
    async def body(client: Client) -> dict[str, Any]:
        _, generated = await call(client, "compile_policy", {"source": FIFO, "emit_c": True})
        c_text = generated["c"]
        hostile = '#include "/etc/shadow"\n' + c_text
        return {
            "c": await call(client, "compile_policy", {"source": c_text, "language": "c"}),
            "check_c": await call(client, "check_policy", {"source": c_text, "language": "c"}),
            "hostile": await call(client, "compile_policy", {"source": hostile, "language": "c"}),
            "hostile_check": await call(
                client, "check_policy", {"source": hostile, "language": "c"}
            ),
            "hostile_verify": await call(
                client, "verify_policy", {"source": hostile, "language": "c"}
            ),
            "hostile_submit": await call(
                client,
                "submit_policy",
                {"source": hostile, "language": "c", "name": "hostile", "description": "x"},
            ),
        }

    got = serve(repo, settings, body)
    assert got["c"][1]["ok"] is True and got["c"][1]["artifacts"]["object_bytes"] > 1000
    assert got["check_c"][1]["ok"] is True
    assert got["hostile_verify"][1]["stage"] == "check"
    assert got["hostile_submit"][1]["status"] == "rejected"
    for key in ("hostile", "hostile_check", "hostile_verify", "hostile_submit"):
        result = got[key][1]
        assert result["ok"] is False
        assert [d["code"] for d in result["diagnostics"]] == ["K060"], "stopped before clang"
        assert (result["diagnostics"][0]["file"], result["diagnostics"][0]["line"]) == (
            "policy.bpf.c",
            1,
        )
        assert "shadow" not in json.dumps(result).replace("/etc/shadow", "")


def test_submit_get_search_record_round_trip_and_their_bad_inputs(repo, settings):
    broken = FIFO.replace("class all otherwise", "class all when task.nice")
    base = {"language": "dsl", "description": "FIFO for the MCP test", "verify": "never"}

    async def body(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["submit"] = await call(
            client,
            "submit_policy",
            {**base, "source": FIFO, "name": "fifo_mcp", "tags": ["test"], "parent": "fifo"},
        )
        out["again"] = await call(
            client,
            "submit_policy",
            {**base, "source": FIFO, "name": "fifo_mcp", "tags": ["test"], "parent": "fifo"},
        )
        out["broken"] = await call(
            client, "submit_policy", {**base, "source": broken, "name": "fifo_broken"}
        )
        out["bad_name"] = await call(
            client, "submit_policy", {**base, "source": FIFO, "name": "../../etc"}
        )
        out["get"] = await call(client, "get_policy", {"name": "fifo_mcp"})
        out["get_v1"] = await call(client, "get_policy", {"name": "fifo_mcp", "revision": "v1"})
        out["get_missing"] = await call(client, "get_policy", {"name": "nothere"})
        out["get_option"] = await call(
            client, "get_policy", {"name": "fifo_mcp", "revision": "--output=/tmp/x"}
        )
        out["record"] = await call(
            client,
            "record_result",
            {
                "name": "fifo_mcp",
                "workload": "hackbench",
                "metric": "time",
                "unit": "s",
                "direction": "lower",
                "values": [1.0, 1.1, 0.9],
                "baseline_values": [2.0, 2.1, 1.9],
                "baseline_scheduler": "eevdf",
            },
        )
        out["record_missing"] = await call(
            client,
            "record_result",
            {
                "name": "nothere",
                "workload": "w",
                "metric": "m",
                "direction": "lower",
                "values": [1],
            },
        )
        out["record_empty"] = await call(
            client,
            "record_result",
            {"name": "fifo_mcp", "workload": "w", "metric": "m", "direction": "up", "values": []},
        )
        out["search"] = await call(client, "search_policies", {"query": "fifo", "limit": 3})
        out["search_workload"] = await call(client, "search_policies", {"workload": "hackbench"})
        out["search_bad"] = await call(client, "search_policies", {"limit": 0})
        return out

    got = serve(repo, settings, body)
    is_error, submitted = got["submit"]
    assert not is_error and submitted["status"] == "added" and submitted["version"] == 1
    assert submitted["verification"]["status"] == "unverified"
    assert "R010" in [d["code"] for d in submitted["diagnostics"]], "unknown parent: a warning"
    assert got["again"][1]["status"] == "unchanged"

    is_error, broken = got["broken"]
    assert not is_error and broken["status"] == "rejected" and broken["commit"] is None
    assert broken["diagnostics"][0]["file"] == "policy.sched"
    assert got["bad_name"][0] is True

    is_error, shown = got["get"]
    assert not is_error and shown["source"] == FIFO
    assert shown["meta"]["parent"] == "fifo" and shown["meta"]["tags"][-1] == "test"
    assert [h["version"] for h in shown["history"]] == [1]
    assert got["get_v1"][1]["commit"] == shown["commit"]
    is_error, missing = got["get_missing"]
    assert is_error and missing["error"]["kind"] == "repository"
    assert got["get_option"][0] is True

    is_error, recorded = got["record"]
    assert not is_error and recorded["ok"], recorded
    assert got["record_missing"][1]["error"]["kind"] == "repository"
    assert got["record_empty"][0] is True

    is_error, found = got["search"]
    assert not is_error and found["results"][0]["name"] == "fifo_mcp"
    assert "fifo" in json.dumps(found["results"][0]["why"]["fields"])
    by_workload = got["search_workload"][1]["results"]
    assert [r["name"] for r in by_workload] == ["fifo_mcp"]
    assert by_workload[0]["best"]["workload"] == "hackbench"
    assert got["search_bad"][0] is True


def test_oversized_and_malformed_arguments_leave_the_server_answering(repo, settings):
    async def body(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(client, "compile_policy", {"source": "#" * (256 * 1024 + 1)}),
            await call(client, "check_policy", {"source": FIFO, "target_kernel": "six"}),
            await call(client, "verify_policy", {"source": FIFO, "name": "fifo"}),
            await call(client, "verify_policy", {"source": FIFO, "run_seconds": 3600}),
            await call(client, "search_policies", {"tags": ["Not A Tag"]}),
            await call(client, "compile_policy", {"source": FIFO}),
        ]

    results = serve(repo, settings, body)
    for is_error, content in results[:-1]:
        assert is_error, content
    assert "262144" in str(results[0][1])
    assert "exactly one of source and name" in str(results[2][1])
    assert results[-1][1]["ok"] is True


def test_a_compile_that_hangs_is_stopped_at_the_limit(repo, settings):
    # 2**40 tokens from 40 macro lines: clang would expand for hours.
    bomb = "#define A0 x\n" + "".join(f"#define A{i} A{i - 1} A{i - 1}\n" for i in range(1, 41))
    bomb += "int v = A40;\n"

    async def body(client: Client) -> list[tuple[bool, Any]]:
        with anyio.fail_after(60):
            first = await call(client, "compile_policy", {"source": bomb, "language": "c"})
        return [first, await call(client, "compile_policy", {"source": FIFO})]

    # 10 s: the bomb needs hours, and a cold compile of FIFO after it (vmlinux.h, the header's
    # PCH, the sandboxed scan) took 4-5 s on this 2-core machine under load.
    (is_error, stopped), (_, after) = serve(repo, settings, body, "--compile-timeout", "10")
    assert is_error
    assert stopped["error"]["kind"] == "timeout" and "10 s" in stopped["error"]["message"]
    assert after["ok"] is True


@pytest.mark.vm
def test_verify_policy_runs_the_kernel_verifier_on_a_repository_policy(repo, settings):
    needs_sandbox(settings)
    progress, on_progress = progress_sink()

    async def body(client: Client) -> list[tuple[bool, Any]]:
        await call(
            client,
            "submit_policy",
            {"source": LJF, "name": "ljf", "description": "LJF", "verify": "never"},
        )
        result = await client.call_tool(
            "verify_policy", {"name": "ljf"}, progress_callback=on_progress
        )
        return [
            (bool(result.is_error), result.structured_content),
            await call(client, "verify_policy", {"name": "nothere"}),
        ]

    # --no-warm-sandbox: the call boots a guest of its own, as `schedc verify` does.
    (is_error, verified), (missing_error, missing) = serve(
        repo, settings, body, "--no-warm-sandbox"
    )
    assert any("booting sandbox kernel" in m for m in progress), progress
    assert not _warm_qemus(settings.cache_dir or "")
    assert not is_error and verified["ok"] is True, verified
    assert verified["stage"] == "verifier"
    assert verified["from_repository"]["name"] == "ljf"
    assert len(verified["programs"]) >= 5
    assert all(p["insns_processed"] for p in verified["programs"])
    assert "accepted" in verified["summary"]
    assert missing_error and missing["error"]["kind"] == "repository"


def test_streamable_http_on_a_loopback_port(repo, settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "schedc", "mcp", "--repo", str(repo), "--http", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            time.sleep(0.2)

        async def main() -> tuple[set[str], tuple[bool, Any]]:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                return names, await call(client, "compile_policy", {"source": FIFO})

        names, (is_error, compiled) = anyio.run(main)
        assert names == TOOLS
        assert not is_error and compiled["ok"] is True
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.vm
def test_submit_after_verify_in_one_session_records_that_verification(repo, settings):
    """An agent that proves a draft with verify_policy and then submits the same text does not
    wait for a second VM boot: the server remembers passing verifications for its session."""
    needs_sandbox(settings)
    progress, on_progress = progress_sink()

    async def body(client: Client) -> list[Any]:
        verified = await client.call_tool(
            "verify_policy", {"source": FIFO}, progress_callback=on_progress
        )
        submitted = await client.call_tool(
            "submit_policy",
            {"source": FIFO, "name": "fifo", "description": "FIFO", "verify": "always"},
            progress_callback=on_progress,
        )
        changed = FIFO.replace("fifo", "fifo_other", 1)
        other = await client.call_tool(
            "submit_policy",
            {"source": changed, "name": "fifo_other", "description": "x", "verify": "never"},
        )
        return [verified.structured_content, submitted.structured_content, other]

    verified, submitted, other = serve(repo, settings, body)
    assert verified["ok"] is True
    assert submitted["status"] == "added" and submitted["verification_reused"] is True
    assert submitted["verification"]["status"] == "verified"
    assert submitted["verification"]["insns_processed"] == sum(
        p["insns_processed"] for p in verified["programs"]
    )
    assert sandbox_uses(progress) == 1, progress
    assert any("verified earlier in this session" in m for m in progress)
    assert other.structured_content["verification_reused"] is False


def _warm_qemus(cache: str) -> set[int]:
    """QEMU processes of warm sandbox guests under this test session's cache folder."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "qemu-system" in cmdline and f"{cache}/warm/pool-" in cmdline:
            found.add(int(entry.name))
    return found


@pytest.mark.vm
def test_the_server_keeps_one_warm_guest_for_its_calls(repo, settings):
    """Two verify_policy calls of one session run in the same guest, booted once; the server
    shuts it down when it exits."""
    needs_sandbox(settings)
    assert settings.cache_dir  # the suite's own cache: its guests are told apart by it
    progress, on_progress = progress_sink()

    async def body(client: Client) -> list[Any]:
        first = await client.call_tool(
            "verify_policy", {"source": FIFO}, progress_callback=on_progress
        )
        guests = _warm_qemus(settings.cache_dir)
        other = FIFO.replace("fifo", "fifo_two", 1)
        second = await client.call_tool(
            "verify_policy", {"source": other}, progress_callback=on_progress
        )
        return [first.structured_content, second.structured_content, guests]

    first, second, guests = serve(repo, settings, body)
    assert first["ok"] is True and second["ok"] is True, (first, second)
    assert len(guests) == 1, guests  # booted by the first call, still up for the second
    assert sum("in the warm sandbox guest" in m for m in progress) == 2, progress
    assert not any("booting sandbox kernel" in m for m in progress), progress
    deadline = time.monotonic() + 30
    while _warm_qemus(settings.cache_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _warm_qemus(settings.cache_dir)  # gone with the server

