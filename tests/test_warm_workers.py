"""The warm zygote (schedc.agent.zygote, schedc.agent.warm_workers): the MCP server's compile
and check workers are forked from one process that imported everything once. Real processes:
each call's job is a fresh fork, a job killed mid-call costs that call only, the zygote is
replaced after its job count or when it dies, and a peer of another user gets nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from schedc.agent.runner import Limits, Runner
from schedc.repo.catalog import init_repo
from tests.conftest import ROOT
from tests.test_agent_limits import SLOW_C
from tests.test_lifecycle import _cmdline, descendants

FIFO = (ROOT / "examples" / "fifo.sched").read_text(encoding="utf-8")
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def runner(tmp_path: Path, toolchain) -> Runner:
    root = tmp_path / "policies"
    init_repo(root)
    made = Runner(repo=root)
    yield made
    made.close()


def _compile(runner: Runner, source: str = FIFO, **kw: str) -> dict:
    return runner.call("compile_policy", {"source": source, **kw})


def _job_pids(zygote_pid: int) -> set[int]:
    """The zygote's descendants now: the supervisors and jobs of running calls."""
    return set(descendants(zygote_pid))


def test_calls_share_one_zygote_and_each_gets_a_fresh_fork(runner):
    first = _compile(runner)
    assert first["ok"] is True, first
    zygote = runner._zygote
    assert zygote is not None and zygote.started == 1 and zygote.pid is not None
    assert "schedc.agent.zygote" in _cmdline(zygote.pid)
    for _ in range(3):
        assert _compile(runner)["ok"] is True
    assert zygote.started == 1  # no new zygote, no cold worker
    assert _job_pids(zygote.pid) == set()  # every job's processes are gone
    bad = _compile(runner, "scheduler x {")
    assert bad["ok"] is False and bad["diagnostics"][0]["code"].startswith("E")


def test_a_job_killed_mid_call_fails_that_call_only(runner):
    assert _compile(runner)["ok"] is True
    zygote = runner._zygote
    assert zygote is not None and zygote.pid is not None
    answer: dict = {}
    thread = threading.Thread(
        target=lambda: answer.update(_compile(runner, SLOW_C, language="c")), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not _job_pids(zygote.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    jobs = _job_pids(zygote.pid)
    assert jobs, "the slow call never reached the zygote"
    time.sleep(0.3)
    for pid in jobs:  # the supervisor, the job and its clang: as a crash would
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    thread.join(30)
    assert answer["ok"] is False and answer["error"]["kind"] == "worker_failed", answer
    assert "SIGKILL" in answer["error"]["message"]
    assert _compile(runner)["ok"] is True  # the next call: same zygote, untouched
    assert zygote.started == 1


def test_the_zygote_is_replaced_after_its_job_count_and_when_it_dies(tmp_path, toolchain):
    root = tmp_path / "policies"
    init_repo(root)
    runner = Runner(repo=root, limits=Limits(warm_jobs=2))
    try:
        for _ in range(3):
            assert _compile(runner)["ok"] is True
        zygote = runner._zygote
        assert zygote is not None and zygote.started == 2  # 2 jobs, then a fresh one
        assert zygote.pid is not None
        os.kill(zygote.pid, signal.SIGKILL)
        time.sleep(0.2)
        assert _compile(runner)["ok"] is True
        assert zygote.started == 3
    finally:
        runner.close()
    assert runner._zygote is not None and runner._zygote.pid is None


def test_cold_workers_when_asked(tmp_path, toolchain):
    root = tmp_path / "policies"
    init_repo(root)
    runner = Runner(repo=root, warm_workers=False)
    assert _compile(runner)["ok"] is True
    assert runner._zygote is None


PEER = r"""
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0" + sys.argv[1])
out = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o666)
r, w = os.pipe()
request = {"op": "compile_policy", "arguments": {"source": ""}, "env": {}}
try:
    socket.send_fds(s, [json.dumps(request).encode() + b"\n"], [out, w])
    s.settimeout(10)
    answer = s.recv(4096).decode()
except (BrokenPipeError, ConnectionResetError):
    answer = ""  # refused before or while it was sent
print(json.dumps({"answer": answer}))
"""


def test_a_peer_of_another_user_gets_no_job(runner):
    if os.geteuid() != 0:
        pytest.skip("needs root to connect as another user (nobody)")
    if not Path(SYSTEM_PYTHON).is_file():
        pytest.fail(f"{SYSTEM_PYTHON} is missing (apt-get install python3)")
    assert _compile(runner)["ok"] is True
    zygote = runner._zygote
    assert zygote is not None and zygote._name is not None and zygote.pid is not None
    shared = Path(tempfile.mkdtemp(prefix="schedc-peer-"))  # one nobody can reach
    shared.chmod(0o777)
    canary = shared / "out"
    canary.touch(mode=0o666)
    canary.chmod(0o666)
    peer = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON, "-I",
         "-c", PEER, zygote._name, str(canary)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert peer.returncode == 0, peer.stderr
    assert json.loads(peer.stdout) == {"answer": ""}  # closed at once: no pid, no job
    assert _job_pids(zygote.pid) == set()
    assert canary.read_bytes() == b""  # no answer was written for it
    shutil.rmtree(shared)
    assert _compile(runner)["ok"] is True and zygote.started == 1
