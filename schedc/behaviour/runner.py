"""The guest's workload program for behaviour tests: one process per task, forked from here
(with `process`, one process per task whose one more thread is the task).

Run by path with the host's Python (the guest sees the host's root file system read-only), so it
imports only the standard library:

    python runner.py PLAN.json OUTDIR

PLAN.json (written by schedc.behaviour.run from a Scenario) lists the groups. Each child names
itself (prctl PR_SET_NAME), joins its cgroup, sets its nice value and CPU affinity, says it is
ready, and waits at its group's gate (a pipe); the parent turns tracing on, marks the release
in the trace (trace_marker) and opens the gates, together or in order. Tasks stop on their own
at the scenario's end; the parent kills any left `grace` seconds later. OUTDIR/result.json
gets each task's pid (its thread id), comm, group and exit status, and the sched_ext state
sampled meanwhile.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any

PR_SET_NAME = 15
READY = struct.Struct("ii")  # what a task says when it is set up: its process id and thread id
TRACING = "/sys/kernel/tracing"
CGROUP_ROOT = "/sys/fs/cgroup"


def _busy(cpu_seconds: float) -> None:
    """Burns this much CPU time of this thread (time spent preempted does not count)."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        for _ in range(200):
            pass


def _spin_until(deadline: float) -> None:
    while time.monotonic() < deadline:
        for _ in range(200):
            pass


def _write_byte(fd: int) -> bool:
    try:
        os.write(fd, b"x")
        return True
    except BrokenPipeError:
        return False


def _read_byte(fd: int) -> bool:
    return os.read(fd, 1) != b""


def _behave(group: dict[str, Any], index: int, end: float, fds: dict[str, int]) -> None:
    start = time.monotonic()
    kind = group["kind"]
    if group.get("for") is not None:
        end = min(end, start + group["for"])
    if kind == "spin":
        if group.get("work") is not None:
            _busy(group["work"])
        else:
            _spin_until(end)
    elif kind == "cycle":
        n = 0
        while time.monotonic() < end and (group.get("times") is None or n < group["times"]):
            _busy(group["run"])
            time.sleep(group["sleep"])
            n += 1
    elif kind == "pingpong":
        n, work = 0, group.get("work") or 0.0
        if group["initiator"]:
            while time.monotonic() < end and (group.get("times") is None or n < group["times"]):
                if not _write_byte(fds["out"]) or not _read_byte(fds["in"]):
                    break
                if work:
                    _busy(work)
                n += 1
            os.close(fds["out"])  # the partner reads EOF and stops
        else:
            while _read_byte(fds["in"]):
                if work:
                    _busy(work)
                if not _write_byte(fds["out"]):
                    break
    elif kind == "requests":
        outs = [fd for key, fd in fds.items() if key.startswith("out")]
        due = time.monotonic()
        while time.monotonic() < end:
            for fd in outs:
                _write_byte(fd)
            due += group["every"]
            late = time.monotonic() - due
            if late < 0:
                time.sleep(-late)
            else:
                due = time.monotonic()  # behind: the next request is due now, no burst
        for fd in outs:
            os.close(fd)  # each worker reads EOF and stops
    elif kind == "serve":
        work = group.get("work") or 0.0
        while _read_byte(fds["in"]):
            if work:
                _busy(work)


def _task(
    group: dict[str, Any],
    index: int,
    gate_r: int,
    ready_w: int,
    shared: mmap.mmap,
    fds: dict[str, int],
) -> None:
    """The task itself, in the thread that is the task: named, in its cgroup, niced, pinned
    (each of these applies to the calling thread), then it says its thread id and waits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, group["comm"].encode(), 0, 0, 0)
    if group.get("cgroup"):
        with open(f"{CGROUP_ROOT}{group['cgroup']}/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))
    tid = threading.get_native_id()
    if group.get("nice"):
        os.setpriority(os.PRIO_PROCESS, tid, group["nice"])
    if group.get("affinity"):
        os.sched_setaffinity(tid, group["affinity"])
    os.write(ready_w, READY.pack(os.getpid(), tid))  # atomic: far below PIPE_BUF
    os.close(ready_w)
    os.read(gate_r, 1)  # EOF when the parent opens the gate
    os.close(gate_r)
    (end,) = struct.unpack("d", shared[:8])
    _behave(group, index, end, fds)


def _child(group: dict[str, Any], task: Callable[[], None]) -> int:
    """A forked process: the task itself, or with `process` set, the process (its main thread
    named `process`, waiting) of one thread that is the task, as a browser's or a JVM's
    threads are named apart from their process."""
    if not group.get("process"):
        task()
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, group["process"].encode(), 0, 0, 0)
    failed: list[BaseException] = []

    def body() -> None:
        try:
            task()
        except BaseException as exc:  # reported through the exit status
            traceback.print_exc()
            failed.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()  # blocked, so the task's thread never waits for the interpreter lock
    return 3 if failed else 0


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _at_the_gate(process: int, tid: int) -> bool | None:
    """Whether the task sleeps in its read of the gate (/proc's syscall: `0 0xFD ...` is
    read(FD) on x86-64; the gate is the only read a task makes before the release), or None
    when /proc does not say."""
    state = _read(f"/proc/{process}/task/{tid}/stat")
    call = _read(f"/proc/{process}/task/{tid}/syscall")
    if state is None or call is None:
        return None
    sleeping = state.rsplit(")", 1)[-1].split()[:1] == ["S"]
    return sleeping and call.split()[:1] == ["0"]


def _wait_at_the_gates(tasks: list[dict[str, Any]], seconds: float) -> int:
    """Waits until every task sleeps in its gate's read, or `seconds`: a task that said it is
    ready may still be on its way to the read, and would be woken later than the tasks already
    waiting, in a scenario whose figure is the order of the first starts. The tasks still on
    their way at the deadline (0 in the usual case)."""
    deadline = time.monotonic() + seconds
    while True:
        late = [t for t in tasks if _at_the_gate(t["process_pid"], t["pid"]) is False]
        if not late or time.monotonic() >= deadline:
            return len(late)
        time.sleep(0.005)


def _status(status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return {"exit_code": None, "signal": signal.Signals(sig).name}
    return {"exit_code": os.WEXITSTATUS(status), "signal": None}


def main(argv: list[str]) -> int:
    entered = time.time()
    plan_path, outdir = argv[0], argv[1]
    with open(plan_path) as f:
        plan = json.load(f)
    groups: list[dict[str, Any]] = plan["groups"]
    state_file = plan.get("state_file", "/sys/kernel/sched_ext/state")
    trace = plan.get("tracing", True)

    for g in groups:
        if g.get("cgroup"):
            os.makedirs(f"{CGROUP_ROOT}{g['cgroup']}", exist_ok=True)
    shared = mmap.mmap(-1, 8)  # MAP_SHARED: the children read the end time after release
    # One gate for all (together: a single close wakes every task at once), or one per group.
    ordered = plan["start"]["mode"] == "ordered"
    gates = {g["name"]: os.pipe() for g in groups} if ordered else {"*": os.pipe()}

    def gate_of(g: dict[str, Any]) -> str:
        return g["name"] if ordered else "*"

    ready_r, ready_w = os.pipe()
    # pingpong: for the i-th pair, one pipe each way; requests: one pipe per worker
    pipes: dict[tuple[str, int], dict[str, int]] = {}
    for g in groups:
        if g["kind"] == "pingpong" and g["initiator"]:
            for i in range(g["count"]):
                a_r, a_w = os.pipe()  # initiator -> partner
                b_r, b_w = os.pipe()  # partner -> initiator
                pipes[(g["name"], i)] = {"out": a_w, "in": b_r}
                pipes[(g["partner"], i)] = {"out": b_w, "in": a_r}
        if g["kind"] == "requests":
            workers = next(w for w in groups if w["name"] == g["workers"])
            per = workers["count"] // g["count"]  # the scenario checked that it divides
            for i in range(g["count"]):
                for j in range(per):
                    r, w = os.pipe()  # requests task i -> its j-th worker
                    pipes.setdefault((g["name"], i), {})[f"out{j}"] = w
                    pipes[(workers["name"], i * per + j)] = {"in": r}
    every_pp_fd = [fd for p in pipes.values() for fd in p.values()]

    tasks: list[dict[str, Any]] = []
    by_pid: dict[int, dict[str, Any]] = {}
    for g in groups:
        for i in range(g["count"]):
            mine = pipes.get((g["name"], i), {})
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    for _r, w in gates.values():
                        os.close(w)
                    for r, _w in gates.values():
                        if r != gates[gate_of(g)][0]:
                            os.close(r)
                    os.close(ready_r)
                    for fd in every_pp_fd:
                        if fd not in mine.values():
                            os.close(fd)
                    gate_r = gates[gate_of(g)][0]
                    code = _child(g, partial(_task, g, i, gate_r, ready_w, shared, mine))
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            task = {"group": g["name"], "index": i, "pid": pid, "comm": g["comm"]}
            tasks.append(task)
            by_pid[pid] = task
    os.close(ready_w)
    for r, _w in gates.values():
        os.close(r)
    for fd in every_pp_fd:
        os.close(fd)

    said = b""
    while len(said) < READY.size * len(tasks):  # every task is set up (named, in its cgroup)
        chunk = os.read(ready_r, 4096)
        if not chunk:
            break
        said += chunk
    os.close(ready_r)
    threads = dict(READY.iter_unpack(said[: len(said) - len(said) % READY.size]))
    for t in tasks:
        # The trace names tasks by thread id: a task that is a thread of a process is its tid.
        process = t["process_pid"] = t["pid"]
        t["pid"] = threads.get(process, process)
        t["comm_seen"] = _read(f"/proc/{process}/task/{t['pid']}/comm")
        t["process_seen"] = _read(f"/proc/{process}/comm")

    if plan["start"].get("cpu") is not None:
        # After the forks (a task without affinity keeps the mask it was forked with): the
        # runner releases the tasks from this CPU and waits there, never holding another.
        os.sched_setaffinity(0, {int(plan["start"]["cpu"])})
    for t in tasks:
        try:
            t["affinity_seen"] = sorted(os.sched_getaffinity(t["pid"]))
        except OSError:  # the task is gone already
            t["affinity_seen"] = None
    not_at_gate = _wait_at_the_gates(tasks, 2.0)
    ready = time.time()
    duration, grace = float(plan["duration"]), float(plan.get("grace", 5.0))
    if trace:
        _write(f"{TRACING}/tracing_on", "1")
    released: dict[str, float] = {}
    now = time.monotonic()
    shared[:8] = struct.pack("d", now + duration)
    order = plan["start"]["order"] if ordered else []
    delay = float(plan["start"].get("delay") or 0.0)
    marker = os.open(f"{TRACING}/trace_marker", os.O_WRONLY) if trace else None
    for n, name in enumerate(order or [g["name"] for g in groups]):
        if order and n and delay:
            time.sleep(delay)
        if marker is not None:
            os.write(marker, f"schedc release {name}\n".encode())
        released[name] = time.monotonic()
        if ordered:
            os.close(gates[name][1])
    if not ordered:
        os.close(gates["*"][1])

    states: list[str] = []
    deadline = now + duration + grace + (delay * len(order))
    left = set(by_pid)
    killed = False
    while left:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            if pid in by_pid:
                cpu = round(usage.ru_utime + usage.ru_stime, 4)
                by_pid[pid].update(_status(status), ended=time.monotonic(), cpu_seconds=cpu)
                left.discard(pid)
            continue
        states.append(_read(state_file) or "?")
        if not killed and time.monotonic() > deadline:
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed = True
        time.sleep(0.1)
    states.append(_read(state_file) or "?")
    if marker is not None:
        os.write(marker, b"schedc end\n")
        os.close(marker)
        _write(f"{TRACING}/tracing_on", "0")
    for g in groups:
        if g.get("cgroup"):
            try:
                os.rmdir(f"{CGROUP_ROOT}{g['cgroup']}")
            except OSError:
                pass
    result = {
        "tasks": tasks,
        "released": released,
        "started": now,
        "finished": time.monotonic(),
        "killed_after_grace": killed,
        "runner_affinity": sorted(os.sched_getaffinity(0)),
        "states": states,
        "not_at_gate": not_at_gate,  # tasks not yet asleep at their gate when it opened
        "wall": {"entered": entered, "ready": ready, "done": time.time()},
    }
    with open(os.path.join(outdir, "result.json"), "w") as f:
        json.dump(result, f)
    return 0


def serve(requests: str, replies: str) -> int:
    """One Python start for a whole boot (a start costs many seconds under TCG): read
    `PLAN OUTDIR LIMIT` lines from the `requests` FIFO, run each in a forked child (killed with
    its tasks after LIMIT seconds), and answer each with its exit status on `replies`."""
    while True:
        with open(requests) as f:
            line = f.readline().split()
        if not line or line[0] == "quit":
            return 0
        plan, outdir, limit = line[0], line[1], float(line[2])
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)  # the run and its tasks, to be killed together at the limit
            code = 3
            try:
                code = main([plan, outdir])
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        deadline = time.monotonic() + limit
        status = None
        while status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
                break
            if time.monotonic() > deadline:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(pid, 0)
                status = 124
                break
            time.sleep(0.1)
        with open(replies, "w") as f:
            f.write(f"{status}\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve(sys.argv[2], sys.argv[3]))
    sys.exit(main(sys.argv[1:]))
