"""The server's side of the warm zygote (schedc.agent.zygote): start it when a call first needs
a worker, hand it each job, start it again when it has ended (its job count, a crash, a kill).

`Zygote.start(request, answer, env)` returns a `ZygoteJob`, which the runner treats as it
treats the `subprocess.Popen` of a cold worker: `pid` is the job's process group (killed as a
group at the time limit), `stderr` carries its progress lines, `wait(timeout)` its status.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Any

from schedc.lifecycle import kill_group

START_TIMEOUT_S = 60.0  # the zygote's imports, on a loaded machine
HANDSHAKE_TIMEOUT_S = 30.0  # from the request to the job's pid
DEFAULT_MAX_JOBS = 500  # forks per zygote before a fresh one


class ZygoteUnavailable(Exception):
    """The zygote cannot take the job: the runner starts a cold worker instead."""


class ZygoteJob:
    """One job forked by the zygote, seen as a Popen: pid (its group), stderr, wait()."""

    def __init__(self, conn: socket.socket, pid: int, stderr: IO[bytes]) -> None:
        self._conn = conn
        self._buffer = b""
        self.pid = pid
        self.stderr = stderr
        self.returncode: int | None = None

    def _consume(self) -> None:
        while b"\n" in self._buffer and self.returncode is None:
            line, self._buffer = self._buffer.split(b"\n", 1)
            message = json.loads(line)
            if isinstance(message, dict) and "status" in message:
                self.returncode = int(message["status"])

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._consume()
        while self.returncode is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._conn], [], [], left)
            if not ready:
                raise subprocess.TimeoutExpired("zygote job", timeout or 0.0)
            try:
                data = self._conn.recv(4096)
            except OSError:
                data = b""
            if not data:  # the supervisor died without a word: killed with its group
                self.returncode = -signal.SIGKILL
                break
            self._buffer += data
            self._consume()
        self._conn.close()
        return self.returncode

    def close(self) -> None:
        self._conn.close()
        self.stderr.close()


class Zygote:
    """One warm zygote process for a runner (started lazily, replaced when it has ended)."""

    def __init__(self, max_jobs: int = DEFAULT_MAX_JOBS) -> None:
        self.max_jobs = max_jobs
        self.started = 0  # how many zygotes this runner started (for tests and benchmarks)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._name: str | None = None
        atexit.register(self.close)

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _ensure(self) -> str:
        with self._lock:
            if self._alive():
                assert self._name is not None
                return self._name
            self._stop_locked()
            name = f"schedc-zygote-{os.getpid()}-{secrets.token_hex(8)}"
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "schedc.agent.zygote", name, str(self.max_jobs)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self.started += 1
            assert self._proc.stdout is not None
            ready, _, _ = select.select([self._proc.stdout], [], [], START_TIMEOUT_S)
            line = self._proc.stdout.readline() if ready else b""
            if line != b"ready\n":
                self._proc.kill()
                _, err = self._proc.communicate(timeout=5)
                self._proc = None
                tail = err.decode(errors="replace").strip()[-300:]
                raise ZygoteUnavailable(f"the warm zygote did not start: {tail or 'no answer'}")
            self._name = name
            return name

    def start(self, request: dict[str, Any], answer: IO[bytes], env: dict[str, str]) -> ZygoteJob:
        """The job running in a child of the zygote; ZygoteUnavailable if it cannot be."""
        # A cold worker inherits the server's environment and folder (where schedc.toml is
        # looked for): a forked job is given both.
        payload = json.dumps({**request, "env": env, "cwd": os.getcwd()}).encode() + b"\n"
        for _attempt in range(2):  # a zygote that just ended after its last job: a new one
            name = self._ensure()
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            read_end, write_end = os.pipe()
            try:
                conn.connect("\0" + name)
                conn.settimeout(HANDSHAKE_TIMEOUT_S)
                socket.send_fds(conn, [payload[:1]], [answer.fileno(), write_end])
                conn.sendall(payload[1:])
                line = b""
                while not line.endswith(b"\n"):
                    data = conn.recv(4096)
                    if not data:
                        raise ConnectionError("the zygote closed the connection")
                    line += data
                pid = int(json.loads(line.split(b"\n", 1)[0])["pid"])
            except (OSError, ValueError, KeyError) as exc:
                conn.close()
                os.close(read_end)
                os.close(write_end)
                with self._lock:
                    if not self._alive():
                        self._stop_locked()
                last = exc
                continue
            os.close(write_end)
            conn.settimeout(None)
            job = ZygoteJob(conn, pid, os.fdopen(read_end, "rb"))
            job._buffer = line.split(b"\n", 1)[1]
            return job
        raise ZygoteUnavailable(f"the warm zygote did not take the job: {last}")

    def _stop_locked(self) -> None:
        if self._proc is not None:
            kill_group(self._proc.pid)
            try:
                self._proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self._proc = None
        self._name = None

    def close(self) -> None:
        with self._lock:
            self._stop_locked()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None
