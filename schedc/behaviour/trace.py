"""ftrace's text output (`/sys/kernel/tracing/trace`) to per-task run intervals and waits.

The guest enables sched_switch, sched_wakeup, sched_wakeup_new and sched_process_exit with
trace_clock `mono`; the workload runner writes `schedc release GROUP` and `schedc end` into
trace_marker. From the switches on each CPU come the intervals a task ran (cpu, start, end);
from a wakeup (or being switched out while still runnable) to the next switch-in comes a wait.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_LINE = re.compile(
    r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s:]{4,6})\s+)?(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s?(?P<body>.*)$"
)
_SWITCH = re.compile(
    r"prev_comm=(?P<prev_comm>.*?) prev_pid=(?P<prev_pid>-?\d+) prev_prio=-?\d+ "
    r"prev_state=(?P<prev_state>\S+) ==> next_comm=(?P<next_comm>.*?) "
    r"next_pid=(?P<next_pid>-?\d+) next_prio=-?\d+"
)
_WAKE = re.compile(r"comm=(?P<comm>.*?) pid=(?P<pid>\d+) prio=-?\d+(?: target_cpu=(?P<cpu>\d+))?")
_EXIT = re.compile(r"comm=(?P<comm>.*?) pid=(?P<pid>\d+)")
_ENTRIES = re.compile(r"entries-in-buffer/entries-written: (\d+)/(\d+)")


@dataclass(frozen=True)
class Event:
    ts: float
    cpu: int
    pid: int  # the task running on the CPU when the event was recorded
    name: str
    fields: dict[str, str]


def parse_events(text: str) -> Iterator[Event]:
    """The events of a `trace` text, in file order (the kernel merges the CPUs by time)."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        name, body = m.group("event"), m.group("body")
        pattern = {
            "sched_switch": _SWITCH,
            "sched_wakeup": _WAKE,
            "sched_wakeup_new": _WAKE,
            "sched_process_exit": _EXIT,
        }.get(name)
        if pattern is not None:
            fm = pattern.search(body)
            if fm is None:
                continue
            found = {k: v for k, v in fm.groupdict().items() if v is not None}
        elif name == "tracing_mark_write":
            found = {"text": body.strip()}
        else:
            continue
        yield Event(float(m.group("ts")), int(m.group("cpu")), int(m.group("pid")), name, found)


def lost_events(text: str) -> int:
    """Events the ring buffer dropped (written minus kept), from the `trace` header."""
    m = _ENTRIES.search(text[:2000])
    return max(0, int(m.group(2)) - int(m.group(1))) if m else 0


@dataclass
class TaskTimeline:
    pid: int
    comm: str = ""
    intervals: list[tuple[int, float, float]] = field(default_factory=list)  # (cpu, start, end)
    wake_delays: list[float] = field(default_factory=list)  # woken -> on a CPU
    waits: list[float] = field(default_factory=list)  # runnable (woken or preempted) -> on a CPU
    first_run: float | None = None
    exited: float | None = None

    @property
    def run_time(self) -> float:
        return sum(end - start for _cpu, start, end in self.intervals)


@dataclass
class Trace:
    tasks: dict[int, TaskTimeline]
    markers: list[tuple[float, str]]
    start: float  # the window: first release marker (or the first event) ...
    end: float  # ... to the end marker (or the last event)
    events: int
    lost: int = 0

    def releases(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for ts, text in self.markers:
            if text.startswith("schedc release "):
                out.setdefault(text.split(" ", 2)[2].strip(), ts)
        return out


def build_trace(events: Iterable[Event], lost: int = 0) -> Trace:
    """Timelines of every task seen, clipped to the window between the runner's markers."""
    evs = list(events)
    markers = [(e.ts, e.fields["text"]) for e in evs if e.name == "tracing_mark_write"]
    released = [ts for ts, text in markers if text.startswith("schedc release")]
    ended = [ts for ts, text in markers if text.startswith("schedc end")]
    first = evs[0].ts if evs else 0.0
    last = evs[-1].ts if evs else 0.0
    start = released[0] if released else first
    end = ended[-1] if ended else last
    tasks: dict[int, TaskTimeline] = {}
    on_cpu: dict[int, tuple[int, float]] = {}  # cpu -> (pid, since)
    running: dict[int, int] = {}  # pid -> cpu
    runnable: dict[int, tuple[float, bool]] = {}  # pid -> (since, woken rather than preempted)

    def task(pid: int, comm: str | None = None) -> TaskTimeline:
        t = tasks.get(pid)
        if t is None:
            t = tasks[pid] = TaskTimeline(pid)
        if comm:
            t.comm = comm
        return t

    def close(cpu: int, pid: int, at: float) -> None:
        since = on_cpu.pop(cpu, None)
        if since is None or since[0] != pid:
            since = (pid, start)  # running since before the window (or the first event)
        running.pop(pid, None)
        lo, hi = max(since[1], start), min(at, end)
        if pid > 0 and hi > lo:
            task(pid).intervals.append((cpu, lo, hi))

    for e in evs:
        if e.name == "sched_switch":
            prev, nxt = int(e.fields["prev_pid"]), int(e.fields["next_pid"])
            if prev > 0:
                task(prev, e.fields["prev_comm"])
                close(e.cpu, prev, e.ts)
                if e.fields["prev_state"].startswith("R"):
                    runnable[prev] = (e.ts, False)
            else:
                on_cpu.pop(e.cpu, None)
            if nxt > 0:
                t = task(nxt, e.fields["next_comm"])
                on_cpu[e.cpu] = (nxt, e.ts)
                running[nxt] = e.cpu
                since = runnable.pop(nxt, None)
                if since is not None and start <= e.ts <= end:
                    delay = e.ts - since[0]
                    t.waits.append(delay)
                    if since[1]:
                        t.wake_delays.append(delay)
                if t.first_run is None and start <= e.ts <= end:
                    t.first_run = e.ts
        elif e.name in ("sched_wakeup", "sched_wakeup_new"):
            pid = int(e.fields["pid"])
            task(pid, e.fields.get("comm"))
            if pid not in running and pid not in runnable:
                runnable[pid] = (e.ts, True)
        elif e.name == "sched_process_exit":
            task(int(e.fields["pid"]), e.fields.get("comm")).exited = e.ts
    for cpu, (pid, _since) in list(on_cpu.items()):
        close(cpu, pid, end)
    return Trace(tasks, markers, start, end, len(evs), lost)


def parse_trace(text: str) -> Trace:
    return build_trace(parse_events(text), lost_events(text))
