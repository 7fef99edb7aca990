"""A warm parent for the MCP server's workers: `python -m schedc.agent.zygote NAME [MAX_JOBS]`.

A worker started with `python -m schedc.agent.worker` spends most of its life importing
(the operations, the pipeline, pydantic models, the DSL parser): about 0.4 s before a compile
that takes 0.1 s. The zygote imports all of that once and then only forks: each job is a
fresh child of a process that never ran a job, so isolation is what it was with a worker of
its own — its own session and process group (killed as a group at the time limit, as
before), its own address-space limit, its own TMPDIR, its own stdin/stdout/stderr — and a
crash, a hang or a leak in one job cannot reach the next.

The protocol, over an abstract Unix socket of a random name (no file; peers of another user
are refused by their credentials), one connection per job: the server sends the request (JSON, as `schedc.agent.worker` reads it, plus `env`) with
two file descriptors attached (SCM_RIGHTS): the answer file (the job's stdout) and the write
end of its stderr pipe. The zygote forks a *supervisor* (setsid: the group's leader), which
forks the job and tells the server `{"pid": GROUP}` at once, then `{"status": N}` (the job's
exit status, negative for a signal) when the job ends. A connection that closes without a
status means the supervisor was killed: the server treats it as the job's death.

The zygote itself runs no job, keeps no job's state and ends after MAX_JOBS forks (the
server starts a new one), when the server that started it is gone, or on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

MAX_REQUEST_BYTES = 4 << 20  # the server bounds MCP arguments well below this


def _warm_up() -> None:
    """Everything a job imports, imported (and the DSL grammar built) before the first fork."""
    import schedc.agent.worker  # noqa: F401  (the operations, the runner, the cage)
    import schedc.compiler.pipeline  # noqa: F401
    from schedc.dsl.parser import build_grammar

    build_grammar()


def _receive(conn: socket.socket) -> tuple[dict[str, object], list[int]]:
    chunks: list[bytes] = []
    fds: list[int] = []
    size = 0
    while True:
        data, got, _flags, _addr = socket.recv_fds(conn, 1 << 16, 4)
        fds += got
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if size > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
        if data.endswith(b"\n"):
            break
    return json.loads(b"".join(chunks)), fds


def _job(request: dict[str, object], answer_fd: int, stderr_fd: int) -> int:
    """In the job process: become what `python -m schedc.agent.worker` is, and run."""
    import tempfile

    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(answer_fd, 1)
    os.dup2(stderr_fd, 2)
    for fd in (devnull, answer_fd, stderr_fd):
        if fd > 2:
            os.close(fd)
    env = request.pop("env", None)
    if isinstance(env, dict):
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
    cwd = request.pop("cwd", None)
    if isinstance(cwd, str):
        os.chdir(cwd)
    tempfile.tempdir = None  # TMPDIR is the job's scratch folder now
    sys.stdout = os.fdopen(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = os.fdopen(2, "w", encoding="utf-8", closefd=False, buffering=1)
    from schedc.agent.worker import run_request

    return run_request(request)


def _supervise(conn: socket.socket, request: dict[str, object], fds: list[int]) -> None:
    """In the supervisor: lead a new session, fork the job, report its pid and its status."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    answer_fd, stderr_fd = fds
    pid = os.fork()
    if pid == 0:
        conn.close()
        code = 1
        try:
            code = _job(request, answer_fd, stderr_fd)
        except BaseException as exc:  # noqa: BLE001 - the status says it failed; stderr says why
            try:
                os.write(2, f"worker: {type(exc).__name__}: {exc}\n".encode())
            except OSError:
                pass
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os._exit(code)
    os.close(answer_fd)
    os.close(stderr_fd)
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    try:
        conn.sendall(json.dumps({"status": code}).encode() + b"\n")
    except OSError:
        pass


def _same_user(conn: socket.socket) -> bool:
    """The peer runs as this process's user (SO_PEERCRED): an abstract socket has no file
    permissions, so this is what keeps other local users from handing it jobs."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def serve(name: str, max_jobs: int) -> int:
    """Serves jobs on the abstract Unix socket `name` (no file: nothing to leave behind) until
    `max_jobs` were forked or the server that started it is gone."""
    _warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + name)
    listener.listen(16)
    listener.settimeout(1.0)
    os.write(1, b"ready\n")
    served = 0
    while served < max_jobs and os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            break
        conn.settimeout(None)
        with conn:
            if not _same_user(conn):
                continue
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError):
                continue
            if len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                continue
            served += 1
            if os.fork() == 0:
                listener.close()
                try:
                    _supervise(conn, request, fds)
                finally:
                    os._exit(0)
            for fd in fds:
                os.close(fd)
    listener.close()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m schedc.agent.zygote NAME [MAX_JOBS]", file=sys.stderr)
        return 2
    return serve(argv[0], int(argv[1]) if len(argv) == 2 else 500)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
