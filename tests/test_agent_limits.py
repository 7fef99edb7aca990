"""`schedc mcp` under a hostile client, through the official SDK's stdio client against the real
server process: concurrent calls past the worker cap, calls cancelled or abandoned while their
worker runs, unknown argument fields, a 10 MB source, and the host paths that error messages
must not show. Worker processes are counted in /proc as the calls run.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from mcp import Client

from schedc.repo.catalog import init_repo
from schedc.settings import Settings
from tests.conftest import ROOT
from tests.test_agent_mcp import serve as serve_mcp
from tests.test_lifecycle import _cmdline, _stat, descendants, processes

T = TypeVar("T")
FIFO = (ROOT / "examples" / "fifo.sched").read_text(encoding="utf-8")
WORKER = "schedc.agent.worker"
ZYGOTE = "schedc.agent.zygote"
# 2**40 empty expansions from 40 macro lines: clang churns for hours, in little memory.
SLOW_C = (
    "#define A0\n"
    + "".join(f"#define A{i} A{i - 1} A{i - 1}\n" for i in range(1, 41))
    + "int v = A40 1;\n"
)


@pytest.fixture
def repo(tmp_path: Path, toolchain) -> Path:
    root = tmp_path / "policies"
    init_repo(root)
    return root


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> Path:
    """The server's TMPDIR: a folder of the test's own, to look for leftovers in."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return scratch


def serve(
    repo: Path,
    settings: Settings,
    tmpdir: Path,
    body: Callable[[Client], Awaitable[T]],
    *extra: str,
    env: dict[str, str] | None = None,
) -> T:
    """The server of test_agent_mcp, with its own TMPDIR: what it leaves behind is countable."""
    return serve_mcp(repo, settings, body, *extra, env={"TMPDIR": str(tmpdir), **(env or {})})


async def call(client: Client, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    result = await client.call_tool(name, arguments)
    if result.structured_content is not None:
        return bool(result.is_error), result.structured_content
    return bool(result.is_error), "".join(getattr(c, "text", "") for c in result.content)


def workers() -> dict[int, str]:
    """The worker processes under this test (the server is our child, they are its). A cold
    worker is a `python -m schedc.agent.worker`: a worker's own child shows the worker's
    command line from its fork until its exec (clang, bwrap), so one whose parent is a worker
    is that child, not another worker. A warm one is a job's supervisor: a child of the zygote
    (schedc.agent.zygote, whose parent is the server) that leads its own process group (the
    job and its children are in that group, or in groups of their own under the job)."""
    found = descendants(os.getpid())
    table = processes()
    cold = {pid: cmd for pid, cmd in found.items() if WORKER in cmd}
    cold = {pid: cmd for pid, cmd in cold.items() if table.get(pid, ("", 0, 0))[1] not in cold}
    zygotes = {
        pid
        for pid, cmd in found.items()
        if ZYGOTE in cmd and ZYGOTE not in found.get(table.get(pid, ("", 0, 0))[1], "")
    }
    warm = {
        pid: cmd
        for pid, cmd in found.items()
        if pid in table and table[pid][1] in zygotes and table[pid][2] == pid
    }
    return {**cold, **warm}


class Sampler:
    """Counts live workers every 20 ms in a thread; remembers every worker it saw."""

    def __init__(self) -> None:
        self.most = 0
        self.seen: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = workers()
            self.seen.update(now)
            self.most = max(self.most, len(now))
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def alive(seen: dict[int, str]) -> dict[int, str]:
    return {pid: cmd for pid, cmd in seen.items() if _stat(pid) and _cmdline(pid) == cmd}


def wait_gone(seen: dict[int, str], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while alive(seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = alive(seen)
    for pid in left:
        try:
            os.killpg(_stat(pid)[2], signal.SIGKILL)  # type: ignore[index]
        except (ProcessLookupError, TypeError):
            pass
    return left


async def until_worker(timeout: float = 30) -> dict[int, str]:
    with anyio.fail_after(timeout):
        while not (found := workers()):
            await anyio.sleep(0.05)
    return found


def leftovers(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.iterdir())


@pytest.fixture
def no_stray_workers() -> Iterator[None]:
    yield
    for pid in workers():
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- the worker pool ------------------------------------------------------------------------------


def test_concurrent_calls_never_run_more_workers_than_the_cap(
    repo, settings, tmpdir_env, no_stray_workers
):
    calls = 8

    async def body(client: Client) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = [(False, None)] * calls

        async def one(i: int) -> None:
            results[i] = await call(client, "compile_policy", {"source": SLOW_C, "language": "c"})

        async with anyio.create_task_group() as group:
            for i in range(calls):
                group.start_soon(one, i)
        return results

    with Sampler() as sampler:
        results = serve(
            repo,
            settings,
            tmpdir_env,
            body,
            "--compile-timeout",
            "3",
            env={"SCHEDC_MCP_WORKERS": "2", "SCHEDC_MCP_QUEUE": "2"},
        )
    kinds = [content["error"]["kind"] for _, content in results]
    assert all(is_error for is_error, _ in results)
    assert sampler.most <= 2, f"{sampler.most} workers at once, the cap is 2"
    assert set(kinds) <= {"busy", "timeout"}, kinds
    assert kinds.count("busy") >= 2, kinds  # 8 calls, 2 running and 2 waiting at most
    assert kinds.count("timeout") >= 3, kinds  # more than the 2 workers: the queue was served
    busy = next(content["error"] for _, content in results if content["error"]["kind"] == "busy")
    assert "SCHEDC_MCP_WORKERS" in busy["hint"] and busy["message"]
    assert leftovers(tmpdir_env) == []


# --- calls whose client stops waiting -------------------------------------------------------------


def test_a_cancelled_call_stops_its_worker(repo, settings, tmpdir_env, no_stray_workers):
    async def body(client: Client) -> dict[str, Any]:
        seen: dict[int, str] = {}
        with anyio.move_on_after(60) as scope:
            async with anyio.create_task_group() as group:

                async def slow() -> None:
                    await call(client, "compile_policy", {"source": SLOW_C, "language": "c"})

                group.start_soon(slow)
                seen = await until_worker()
                await anyio.sleep(0.5)
                group.cancel_scope.cancel()  # the client gives up: notifications/cancelled
        assert not scope.cancelled_caught, "the slow call never started"
        left = await anyio.to_thread.run_sync(wait_gone, seen, 5)
        with anyio.move_on_after(5):  # the runner's thread removes it once the group is dead
            while leftovers(tmpdir_env):
                await anyio.sleep(0.05)
        scratch = leftovers(tmpdir_env)
        _, after = await call(client, "compile_policy", {"source": FIFO})
        return {"left": left, "scratch": scratch, "after": after}

    got = serve(repo, settings, tmpdir_env, body, "--compile-timeout", "120")
    assert got["left"] == {}, f"the worker outlived its cancelled call: {got['left']}"
    assert got["scratch"] == []
    assert got["after"]["ok"] is True  # the server goes on


def test_a_client_that_goes_away_takes_its_worker_with_it(
    repo, settings, tmpdir_env, no_stray_workers
):
    seen: dict[int, str] = {}

    async def body(client: Client) -> None:
        async with anyio.create_task_group() as group:

            async def slow() -> None:
                await call(client, "compile_policy", {"source": SLOW_C, "language": "c"})

            group.start_soon(slow)
            seen.update(await until_worker())
            await anyio.sleep(0.5)
            group.cancel_scope.cancel()
        # and the session closes with the `async with Client` around us

    serve(repo, settings, tmpdir_env, body, "--compile-timeout", "120")
    assert seen
    left = wait_gone(seen, 10)
    assert left == {}, f"the worker outlived its client: {left}"
    deadline = time.monotonic() + 5
    while leftovers(tmpdir_env) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(tmpdir_env) == []


# --- nothing left behind --------------------------------------------------------------------------


def test_a_call_stopped_at_its_time_limit_leaves_no_scratch_folder(repo, settings, tmpdir_env):
    check_cache = Path(settings.cache_dir) / "check" if settings.cache_dir else None
    before = set(check_cache.iterdir()) if check_cache and check_cache.is_dir() else set()

    async def body(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(client, "compile_policy", {"source": SLOW_C, "language": "c"}),
            await call(client, "check_policy", {"source": SLOW_C, "language": "c"}),
        ]

    results = serve(repo, settings, tmpdir_env, body, "--compile-timeout", "2")
    for is_error, content in results:
        assert is_error and content["error"]["kind"] == "timeout", content
    assert leftovers(tmpdir_env) == [], "scratch folders with the agent's source were left"
    after = set(check_cache.iterdir()) if check_cache and check_cache.is_dir() else set()
    assert after <= before, f"check's generated C was left: {after - before}"


# --- arguments ------------------------------------------------------------------------------------


def test_unknown_fields_and_a_10mb_source_are_structured_errors(repo, settings, tmpdir_env):
    async def body(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(client, "compile_policy", {"source": FIFO, "optimise": True}),
            await call(client, "search_policies", {"query": "fifo", "colour": "blue"}),
            await call(client, "compile_policy", {"source": "#" * (10 * 1024 * 1024)}),
            await call(client, "record_result", {"name": "x", "values": [1.0] * 2_000_000}),
            await call(client, "compile_policy", {"source": FIFO}),
        ]

    started = time.monotonic()
    results = serve(repo, settings, tmpdir_env, body)
    took = time.monotonic() - started
    (e1, extra), (e2, extra2), (e3, big), (e4, many), (_, after) = results
    assert e1 and extra["error"]["kind"] == "invalid_arguments"
    assert "optimise" in extra["error"]["message"], extra
    assert e2 and "colour" in extra2["error"]["message"], extra2
    assert e3 and big["error"]["kind"] == "too_large", big
    assert "'source'" in big["error"]["message"] and "262144" in big["error"]["message"]
    assert len(json.dumps(big)) < 1000  # the answer does not quote the source back
    assert e4 and many["error"]["kind"] == "too_large", many
    assert after["ok"] is True
    assert took < 120


# --- what a client is told ------------------------------------------------------------------------


def test_error_messages_name_no_host_or_scratch_paths(repo, settings, tmpdir_env, no_stray_workers):
    bad_c = '#include "missing_header.h"\nint x = ;\n'

    async def body(client: Client) -> list[tuple[bool, Any]]:
        out = [
            await call(client, "compile_policy", {"source": "policy p {\n  oops\n}\n"}),
            await call(client, "compile_policy", {"source": bad_c, "language": "c"}),
            await call(client, "check_policy", {"source": bad_c, "language": "c"}),
            await call(client, "compile_policy", {"source": SLOW_C, "language": "c"}),
        ]
        messages: list[str] = []

        async def on_progress(_done: float, _total: float | None, message: str | None) -> None:
            messages.append(message or "")

        broken = {"source": "policy p {\n  oops\n}\n"}
        verified = await client.call_tool("verify_policy", broken, progress_callback=on_progress)
        assert verified.structured_content and messages, (verified, messages)
        out.append((bool(verified.is_error), {"progress": messages}))
        crashed: list[tuple[bool, Any]] = []

        async def slow() -> None:
            crashed.append(
                await call(client, "compile_policy", {"source": SLOW_C, "language": "c"})
            )

        for sig in (signal.SIGINT, signal.SIGKILL):  # a worker that crashes, loudly or not
            async with anyio.create_task_group() as group:
                group.start_soon(slow)
                [pid] = list(await until_worker())
                await anyio.sleep(1.0)
                os.kill(pid, sig)
        return out + crashed

    async def misconfigured(client: Client) -> list[tuple[bool, Any]]:
        return [
            await call(client, "search_policies", {"query": "fifo"}),
            await call(client, "compile_policy", {"source": FIFO}),
        ]

    results = serve(repo, settings, tmpdir_env, body, "--compile-timeout", "4")
    kinds = [c["error"]["kind"] if "error" in c else c.get("ok") for _, c in results]
    assert kinds[:4] == [False, False, False, "timeout"], kinds
    assert kinds[4] is None and results[4][1]["progress"], results[4]  # progress messages
    assert kinds[5:] == ["worker_failed", "worker_failed"], kinds
    no_repo, no_btf = repo.parent / "no-such-repo", repo.parent / "no-such" / "vmlinux.btf"
    wrong = serve(no_repo, settings, tmpdir_env, misconfigured, "--btf", str(no_btf))
    assert [c["error"]["kind"] for _, c in wrong] == ["repository", "environment"], wrong
    results += wrong
    private = [str(tmpdir_env), "/tmp/", str(ROOT), str(repo), str(Path.home()) + "/"]
    for _, content in results:
        text = json.dumps(content)
        for path in private:
            assert path not in text, f"{path} in {text}"
    diagnostic_files = {
        d["file"] for _, c in results for d in c.get("diagnostics", []) if d.get("file")
    }
    assert diagnostic_files <= {"policy.sched", "policy.bpf.c"}, diagnostic_files
    assert leftovers(tmpdir_env) == []


def test_sigterm_to_the_server_stops_its_workers(repo, settings, tmpdir_env, no_stray_workers):
    seen: dict[int, str] = {}
    servers: dict[int, str] = {}

    async def body(client: Client) -> None:
        async with anyio.create_task_group() as group:

            async def slow() -> None:
                try:
                    await call(client, "compile_policy", {"source": SLOW_C, "language": "c"})
                except Exception:  # noqa: BLE001 (the server is gone: that is the point)
                    pass

            group.start_soon(slow)
            seen.update(await until_worker())
            servers.update(
                {p: c for p, c in descendants(os.getpid()).items() if "schedc mcp" in c}
            )
            await anyio.sleep(0.5)
            for pid in servers:
                os.kill(pid, signal.SIGTERM)  # as a service manager stops it
            await anyio.sleep(3)
            group.cancel_scope.cancel()

    try:
        serve(repo, settings, tmpdir_env, body, "--compile-timeout", "120")
    except Exception:  # noqa: BLE001 (the client may complain that its server went away)
        pass
    assert seen and len(servers) == 1
    left = wait_gone({**seen, **servers}, 10)
    assert left == {}, f"left running after SIGTERM to the server: {left}"
    assert leftovers(tmpdir_env) == []
