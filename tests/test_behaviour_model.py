"""Behaviour tests without a VM: the scenario format and its diagnostics, trace parsing on a
trace recorded in the sandbox guest, every expectation kind on synthetic timelines, the
workload runner on this host (without tracing), and the report and CLI shells."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedc.behaviour import runner as runner_module
from schedc.behaviour.expect import (
    Observation,
    TaskRecord,
    evaluate,
    first_starts,
    percentile,
)
from schedc.behaviour.report import CODES, ScenarioResult, _diagnostics
from schedc.behaviour.run import Case, guest_script, plan_steps, runner_plan
from schedc.behaviour.scenario import (
    ScenarioError,
    load_scenario,
    parse_cpus,
    parse_duration,
    parse_scenario,
)
from schedc.behaviour.trace import Event, build_trace, parse_events, parse_trace
from schedc.cli import main as schedc_main

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "behaviour"
SCENARIOS = sorted((ROOT / "examples").glob("*.scenario.toml"))

BASE = """\
cpus = 2
duration = "1s"

[[group]]
name = "a"
comm = "worker-a"
count = 2
spin = {}

[[group]]
name = "b"
comm = "worker-b"
cycle = { run = "1ms", sleep = "2ms" }
"""


def errors(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.scenario.toml")
    return [(d.code, d.line, d.message) for d in info.value.diagnostics]


# --- the scenario format -----------------------------------------------------------------------


def test_every_example_scenario_loads_with_lines():
    names = {p.name.split(".")[0] for p in SCENARIOS}
    assert {"pinned_latency", "weighted_share", "ljf", "interactive_boost"} <= names
    for path in SCENARIOS:
        s = load_scenario(path)
        assert s.expect, path
        lines = path.read_text().splitlines()
        for e in s.expect:
            assert lines[e.line - 1].strip() == "[[expect]]"
        for g in s.group:
            assert lines[g.line - 1].strip() == "[[group]]"
        # every example names a policy of the same name
        assert (ROOT / "examples" / f"{s.name}.sched").is_file()


def test_durations_and_cpu_sets():
    assert parse_duration("2ms") == pytest.approx(0.002)
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("500us") == pytest.approx(0.0005)
    assert parse_duration(3) == 3.0
    for bad in ("2 hours", "-1s", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_cpus("0-1,3") == (0, 1, 3)
    assert parse_cpus([2, 0, 2]) == (0, 2)
    assert parse_cpus(1) == (1,)
    for bad in ("3-1", "x", "", []):
        with pytest.raises(ValueError):
            parse_cpus(bad)


def test_toml_syntax_error_has_its_line():
    [(code, line, message)] = errors(BASE + "\n[[expect]\nkind = 'share'\n")
    assert code == "T001" and line == 15 and "not valid TOML" in message


def test_unknown_key_is_reported_at_its_line():
    text = BASE.replace('comm = "worker-b"', 'comm = "worker-b"\ncolour = "red"')
    [(code, line, message)] = errors(text)
    assert (code, line) == ("T002", 13)
    assert message == "unknown key 'group.colour'"


def test_bad_value_in_an_inline_table_is_at_that_line():
    [(code, line, message)] = errors(BASE.replace('run = "1ms"', 'run = "1 fortnight"'))
    assert (code, line) == ("T002", 13)
    assert "group.cycle.run" in message and "not a duration" in message


def test_group_level_problems_point_at_the_group():
    [(code, line, message)] = errors(BASE.replace("worker-a", "a-very-long-command-name"))
    assert (code, line) == ("T002", 4)
    assert "longer than the kernel's 15 bytes" in message
    [(code, line, message)] = errors(
        BASE.replace("spin = {}", "spin = {}\ncycle = { run = 1, sleep = 1 }")
    )
    assert (code, line) == ("T002", 4) and "exactly one behaviour" in message


def test_top_level_key_errors():
    [(code, line, message)] = errors(BASE.replace("cpus = 2", "cpus = 99"))
    assert (code, line) == ("T002", 1) and message.startswith("cpus:")
    [(code, line, message)] = errors(BASE.replace('duration = "1s"\n', ""))
    assert code == "T002" and line is None and "duration" in message


def test_expectation_errors_point_at_the_expectation():
    text = BASE + '\n[[expect]]\nkind = "share"\ngroups = ["a", "b"]\nratio = -1\n'
    [(code, line, message)] = errors(text)
    assert (code, line) == ("T002", 18) and message.startswith("expect.ratio:")
    [(code, line, message)] = errors(BASE + '\n[[expect]]\nkind = "fastness"\ngroup = "a"\n')
    assert (code, line) == ("T002", 15) and "unknown expectation kind" in message
    [(code, line, message)] = errors(BASE + '\n[[expect]]\nkind = "order"\ngroup = "a"\n')
    assert (code, line) == ("T002", 15) and "exactly one of 'before' and 'max_rank'" in message


def test_cross_references_are_checked():
    text = BASE + '\n[[expect]]\nkind = "placement"\ngroup = "c"\ncpus = "0"\n'
    [(code, line, message)] = errors(text)
    assert (code, line) == ("T003", 15) and "group 'c'" in message
    text = BASE + '\n[[expect]]\nkind = "placement"\ngroup = "a"\ncpus = "0-3"\n'
    [(code, line, message)] = errors(text)
    assert (code, line) == ("T003", 15) and "CPU 3" in message
    text = BASE.replace("count = 2\n", "count = 2\naffinity = [5]\n")
    [(code, line, _m)] = errors(text)
    assert (code, line) == ("T003", 4)
    text = BASE.replace("spin = {}", 'pingpong = { partner = "b" }')
    [(code, line, message)] = errors(text)
    assert (code, line) == ("T003", 4) and "must be a pingpong group" in message
    text = BASE + '\n[start]\nmode = "ordered"\norder = ["a"]\n'
    [(code, _line, message)] = errors(text)
    assert code == "T003" and "missing: b" in message
    [(code, _line, message)] = errors(BASE + "\n[start]\ncpu = 2\n")  # cpus = 2: CPUs 0-1
    assert code == "T003" and "start.cpu is CPU 2" in message and "(0-1)" in message
    assert runner_plan(parse_scenario(BASE + "\n[start]\ncpu = 1\n"))["start"]["cpu"] == 1
    assert runner_plan(parse_scenario(BASE))["start"]["cpu"] is None


def test_runner_plan_marks_the_initiator():
    text = (
        BASE.replace("spin = {}", 'pingpong = { partner = "b", times = 3 }')
        .replace('cycle = { run = "1ms", sleep = "2ms" }', 'pingpong = { partner = "a" }')
        .replace(
            '[[group]]\nname = "b"\ncomm = "worker-b"',
            '[[group]]\nname = "b"\ncomm = "worker-b"\ncount = 2',
        )
    )
    plan = runner_plan(parse_scenario(text))
    assert [g["initiator"] for g in plan["groups"]] == [True, False]
    assert plan["groups"][0]["times"] == 3


# --- trace parsing, on a trace recorded in the sandbox guest -----------------------------------


def recorded() -> Observation:
    trace = parse_trace((DATA / "ljf.trace").read_text())
    result = json.loads((DATA / "ljf.result.json").read_text())
    tasks = [
        TaskRecord(
            t["group"], t["index"], t["pid"], t["comm"], t["comm_seen"], t["exit_code"], t["signal"]
        )
        for t in result["tasks"]
    ]
    return Observation(trace, tasks, result["released"])


def test_recorded_trace_gives_intervals_and_exits():
    obs = recorded()
    trace = obs.trace
    assert trace.lost == 0
    assert set(trace.releases()) == {"short", "long"}
    assert trace.start == pytest.approx(min(trace.releases().values()))
    assert len(obs.tasks) == 9
    for t in obs.tasks:
        tl = trace.tasks[t.pid]
        assert tl.comm == t.comm
        assert tl.exited is not None
        # each task burnt its CPU work (150 ms / 1 s of thread time) and not much more
        work = 1.0 if t.comm == "ffmpeg" else 0.15
        assert work * 0.98 <= tl.run_time <= work + 0.5, (t.comm, tl.run_time)
        for cpu, start, end in tl.intervals:
            assert 0 <= cpu < 4 and trace.start <= start < end <= trace.end
    # a CPU runs one task at a time: intervals on one CPU never overlap
    by_cpu: dict[int, list[tuple[float, float]]] = {}
    for tl in trace.tasks.values():
        for cpu, start, end in tl.intervals:
            by_cpu.setdefault(cpu, []).append((start, end))
    for spans in by_cpu.values():
        spans.sort()
        assert all(a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:], strict=False))
    # the long job was woken last and started last under ljf as recorded
    starts = first_starts(obs)
    ffmpeg = next(t.pid for t in obs.tasks if t.comm == "ffmpeg")
    assert starts[ffmpeg] == max(starts.values())


def test_trace_line_formats():
    text = (
        "# entries-in-buffer/entries-written: 5/7   #P:2\n"
        "        hog test-81      [000] d..2.    35.744875: sched_switch: prev_comm=hog test "
        "prev_pid=81 prev_prio=120 prev_state=R+ ==> next_comm=kworker/0:0 next_pid=9 next_prio=120\n"
        "          <idle>-0       [001] dNh2.    35.750000: sched_wakeup: comm=hog test pid=81 "
        "prio=120 target_cpu=001\n"
        "          <idle>-0       [001] d..2.    35.750100: sched_switch: prev_comm=swapper/1 "
        "prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=hog test next_pid=81 next_prio=120\n"
        "        hog test-81      [001] .....    35.760000: sched_process_exit: comm=hog test pid=81 prio=120\n"
        "          python-80      [001] .....    35.770000: tracing_mark_write: schedc end\n"
    )
    events = list(parse_events(text))
    assert [e.name for e in events] == [
        "sched_switch",
        "sched_wakeup",
        "sched_switch",
        "sched_process_exit",
        "tracing_mark_write",
    ]
    assert events[0].fields["prev_comm"] == "hog test" and events[0].fields["prev_state"] == "R+"
    trace = parse_trace(text)
    assert trace.lost == 2
    hog = trace.tasks[81]
    # preempted (R+) at 35.744875 then woken: the wait is from being preempted, not a wake-up
    assert hog.waits == [pytest.approx(35.7501 - 35.744875)]
    assert hog.wake_delays == []
    assert hog.exited == 35.76


# --- expectations on synthetic timelines -------------------------------------------------------


def sw(ts: float, cpu: int, prev: int, nxt: int, state: str = "S") -> Event:
    return Event(
        ts,
        cpu,
        prev,
        "sched_switch",
        {
            "prev_comm": f"t{prev}",
            "prev_pid": str(prev),
            "prev_state": state,
            "next_comm": f"t{nxt}",
            "next_pid": str(nxt),
        },
    )


def wake(ts: float, pid: int) -> Event:
    return Event(ts, 0, 0, "sched_wakeup", {"comm": f"t{pid}", "pid": str(pid)})


def exit_(ts: float, pid: int) -> Event:
    return Event(ts, 0, pid, "sched_process_exit", {"comm": f"t{pid}", "pid": str(pid)})


def mark(ts: float, text: str) -> Event:
    return Event(ts, 0, 1, "tracing_mark_write", {"text": text})


def obs(events: list[Event], groups: dict[int, str]) -> Observation:
    tasks = [TaskRecord(g, 0, pid, f"t{pid}", f"t{pid}", 0, None) for pid, g in groups.items()]
    return Observation(build_trace(events), tasks)


def scenario_with(expect: str) -> object:
    s = parse_scenario(BASE + "\n[[expect]]\n" + expect)
    return s.expect[0]


def two_cpu_run(a_cpu0: float, a_cpu1: float) -> Observation:
    """Task 10 (group a) runs a_cpu0 s on CPU 0 then a_cpu1 s on CPU 1; task 20 (b) 1 s on CPU 1."""
    ev = [
        mark(0.0, "schedc release a"),
        mark(0.0, "schedc release b"),
        sw(0.0, 0, 0, 10),
        sw(a_cpu0, 0, 10, 0, "R"),
        sw(a_cpu0, 1, 0, 10),
        sw(a_cpu0 + a_cpu1, 1, 10, 20),
        sw(a_cpu0 + a_cpu1 + 1.0, 1, 20, 0),
        exit_(a_cpu0 + a_cpu1 + 1.0, 20),
        exit_(a_cpu0 + a_cpu1, 10),
        mark(a_cpu0 + a_cpu1 + 1.0, "schedc end"),
    ]
    return obs(ev, {10: "a", 20: "b"})


def test_placement_boundary():
    e = scenario_with('kind = "placement"\ngroup = "a"\ncpus = "0"\nmin_fraction = 0.99\n')
    assert evaluate(e, [two_cpu_run(0.99, 0.01)], []).ok
    r = evaluate(e, [two_cpu_run(0.98, 0.02)], [two_cpu_run(0.5, 0.5)])
    assert not r.ok and r.measured == pytest.approx(0.98) and r.baseline == pytest.approx(0.5)
    assert r.line == 15


def test_share_boundary():
    e = scenario_with('kind = "share"\ngroups = ["a", "b"]\nratio = 2\ntolerance = 0.25\n')
    assert evaluate(e, [two_cpu_run(1.0, 1.5)], []).ok  # 2.5 = 2 * 1.25
    assert evaluate(e, [two_cpu_run(1.0, 0.5)], []).ok  # 1.5 = 2 * 0.75
    r = evaluate(e, [two_cpu_run(1.0, 1.6)], [])
    assert not r.ok and r.measured == pytest.approx(2.6)


def starts(first_a: float, first_b: float) -> Observation:
    ev = [
        mark(0.0, "schedc release a"),
        mark(0.0, "schedc release b"),
        wake(0.0, 10),
        wake(0.0, 20),
        wake(0.0, 30),
        sw(first_a, 0, 0, 10),
        sw(first_b, 1, 0, 20),
        sw(first_b + 0.5, 1, 20, 30),
        sw(3.0, 0, 10, 0),
        sw(3.0, 1, 30, 0),
        mark(3.0, "schedc end"),
    ]
    return obs(ev, {10: "a", 20: "b", 30: "b"})


def test_order_before_and_rank():
    before = scenario_with('kind = "order"\ngroup = "a"\nbefore = "b"\n')
    assert evaluate(before, [starts(0.1, 0.2)], []).ok
    tie = evaluate(before, [starts(0.2, 0.2)], [])
    assert not tie.ok and tie.measured == 0
    late = evaluate(before, [starts(0.3, 0.2)], [starts(0.1, 0.2)])
    assert not late.ok and late.measured == pytest.approx(-0.1)
    assert late.baseline == pytest.approx(0.1)
    rank = scenario_with('kind = "order"\ngroup = "a"\nmax_rank = 2\n')
    assert evaluate(rank, [starts(0.8, 0.2)], []).ok is False  # third of three
    assert evaluate(rank, [starts(0.3, 0.2)], []).measured == 2


def waits(delays: list[float], other: list[float]) -> Observation:
    ev = [mark(0.0, "schedc release a"), mark(0.0, "schedc release b")]
    t = 1.0
    for pid, ds in ((10, delays), (20, other)):
        for d in ds:
            ev += [wake(t, pid), sw(t + d, 0, 0, pid), sw(t + d + 0.001, 0, pid, 0)]
            t += 1.0
    ev.append(mark(t, "schedc end"))
    return obs(ev, {10: "a", 20: "b"})


def test_wait_kinds():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5 and percentile([], 50) is None
    absolute = scenario_with('kind = "wait"\ngroup = "a"\npercentile = 50\nmax = "2ms"\n')
    assert evaluate(absolute, [waits([0.001, 0.002, 0.003], [])], []).ok  # p50 = 2 ms exactly
    assert not evaluate(absolute, [waits([0.002, 0.003, 0.004], [])], []).ok
    below = scenario_with('kind = "wait"\ngroup = "a"\npercentile = 99\nbelow = "b"\n')
    assert evaluate(below, [waits([0.001], [0.002])], []).ok
    assert not evaluate(below, [waits([0.002], [0.002])], []).ok  # equal is not below
    rel = scenario_with('kind = "wait"\ngroup = "a"\npercentile = 50\nvs_baseline = 1.5\n')
    ok = evaluate(rel, [waits([0.003], [])], [waits([0.002], [])])
    assert ok.ok and ok.baseline == pytest.approx(0.002)
    assert not evaluate(rel, [waits([0.0031], [])], [waits([0.002], [])]).ok
    assert not evaluate(rel, [waits([0.001], [])], []).ok  # no baseline: cannot pass


def test_no_data_fails_with_a_reason():
    e = scenario_with('kind = "wait"\ngroup = "a"\nmax = "1s"\n')
    r = evaluate(e, [waits([], [0.001])], [])
    assert not r.ok and r.measured is None and "no data" in r.detail


def test_starvation_slice_completion():
    starve = scenario_with('kind = "starvation"\ngroup = "a"\nmax_wait = "3ms"\n')
    assert evaluate(starve, [waits([0.001, 0.003], [])], []).ok
    assert not evaluate(starve, [waits([0.001, 0.0031], [])], []).ok
    sl = scenario_with('kind = "slice"\ngroup = "b"\nmedian = "1s"\ntolerance = 0.1\n')
    assert evaluate(sl, [two_cpu_run(0.5, 0.5)], []).ok  # b ran one 1 s interval
    assert not evaluate(
        scenario_with('kind = "slice"\ngroup = "a"\nmedian = "1s"\ntolerance = 0.1\n'),
        [two_cpu_run(0.5, 0.5)],
        [],
    ).ok  # a ran two 0.5 s intervals
    whole = scenario_with('kind = "completion"\nvs_baseline = 1.0\n')
    fast, slow = two_cpu_run(0.5, 0.5), two_cpu_run(1.0, 1.0)  # makespan 2 s and 3 s
    r = evaluate(whole, [fast], [slow])
    assert r.ok and r.measured == pytest.approx(2.0) and r.baseline == pytest.approx(3.0)
    assert not evaluate(whole, [slow], [fast]).ok
    assert evaluate(whole, [fast], [fast]).ok  # equal to the baseline: at most 1.0 x
    one = scenario_with('kind = "completion"\ngroup = "a"\nmax = "1s"\n')
    assert evaluate(one, [fast], []).ok and not evaluate(one, [slow], []).ok


def test_several_runs_take_the_median():
    e = scenario_with('kind = "placement"\ngroup = "a"\ncpus = "0"\n')
    runs = [two_cpu_run(1.0, 0.0), two_cpu_run(0.5, 0.5), two_cpu_run(0.995, 0.005)]
    r = evaluate(e, runs, [])
    assert r.measured == pytest.approx(0.995) and r.ok and len(r.runs) == 3


# --- the workload runner, on this host without tracing ----------------------------------------


def run_runner(tmp_path: Path, plan: dict) -> dict:
    plan = {
        "tracing": False,
        "state_file": "/nonexistent",
        "grace": 1.0,
        "start": {"mode": "together", "order": [], "delay": 0},
        **plan,
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    proc = subprocess.run(
        [sys.executable, "-I", runner_module.__file__, str(tmp_path / "plan.json"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp_path / "result.json").read_text())


def test_a_task_is_at_the_gate_only_while_it_sleeps_in_its_read():
    """The release waits for every task to sleep in its gate's read (a `ready` task may still
    be on its way there): a real child blocked in read() is at the gate, a spinning one not."""
    r, w = os.pipe()
    blocked = os.fork()
    if blocked == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    spinning = os.fork()
    if spinning == 0:
        while True:
            pass
    os.close(r)
    try:
        seen = False
        for _ in range(400):  # until the child has reached its read
            seen = runner_module._at_the_gate(blocked, blocked)
            if seen:
                break
            time.sleep(0.005)
        assert seen is True
        assert runner_module._at_the_gate(spinning, spinning) is False
        assert runner_module._at_the_gate(2**22 + 7, 2**22 + 7) is None  # no such task
        tasks = [{"process_pid": p, "pid": p} for p in (blocked, spinning)]
        assert runner_module._wait_at_the_gates(tasks, 0.1) == 1  # the spinner, at the deadline
    finally:
        os.kill(spinning, signal.SIGKILL)
        os.close(w)
        os.waitpid(blocked, 0)
        os.waitpid(spinning, 0)


def test_runner_runs_named_tasks_of_each_behaviour(tmp_path: Path):
    groups = [
        {"name": "s", "comm": "spinner", "count": 2, "kind": "spin", "work": 0.05},
        {
            "name": "c",
            "comm": "cycler",
            "count": 1,
            "kind": "cycle",
            "run": 0.002,
            "sleep": 0.002,
            "times": 5,
        },
        {
            "name": "p",
            "comm": "ping",
            "count": 1,
            "kind": "pingpong",
            "partner": "q",
            "initiator": True,
            "times": 20,
        },
        {
            "name": "q",
            "comm": "pong",
            "count": 1,
            "kind": "pingpong",
            "partner": "p",
            "initiator": False,
        },
    ]
    result = run_runner(tmp_path, {"duration": 5.0, "groups": groups})
    tasks = result["tasks"]
    assert [t["comm_seen"] for t in tasks] == ["spinner", "spinner", "cycler", "ping", "pong"]
    assert all(t["exit_code"] == 0 and t["signal"] is None for t in tasks)
    assert len({t["pid"] for t in tasks}) == 5
    assert not result["killed_after_grace"]
    assert result["not_at_gate"] == 0  # every task slept in its gate's read at the release
    assert set(result["released"]) == {"s", "c", "p", "q"}
    # the bounded behaviours ended long before the scenario's 5 s
    assert result["finished"] - result["started"] < 4.0


def test_runner_makes_a_thread_named_apart_from_its_process(tmp_path: Path):
    """`process`: each task is a thread named `comm` of a process named `process` (what
    task.process.comm matches); its pid is the thread's id, which is what the trace shows, and
    it sets its own nice value and affinity (per thread)."""
    groups = [
        {"name": "bio", "comm": "bio_aof", "process": "redis-server", "count": 2,
         "kind": "spin", "work": 0.05, "nice": 3, "affinity": [0]},
        {"name": "plain", "comm": "plain", "count": 1, "kind": "spin", "work": 0.01},
    ]  # fmt: skip
    tasks = run_runner(tmp_path, {"duration": 5.0, "groups": groups})["tasks"]
    bio = [t for t in tasks if t["group"] == "bio"]
    assert [t["comm_seen"] for t in tasks] == ["bio_aof", "bio_aof", "plain"]
    assert [t["process_seen"] for t in tasks] == ["redis-server", "redis-server", "plain"]
    assert all(t["pid"] != t["process_pid"] for t in bio)  # a thread, not the process
    assert tasks[2]["pid"] == tasks[2]["process_pid"]
    assert all(t["exit_code"] == 0 and t["signal"] is None for t in tasks)
    assert len({t["pid"] for t in tasks}) == 3


def test_scenario_process_names_are_checked_like_comms():
    base = 'duration = "1s"\n[[group]]\nname = "a"\ncomm = "t"\nspin = {}\n'
    assert parse_scenario(base + 'process = "redis-server"\n').group[0].process == "redis-server"
    with pytest.raises(ScenarioError, match="process 'a-process-name-too-long' is longer"):
        parse_scenario(base + 'process = "a-process-name-too-long"\n')
    plan = runner_plan(parse_scenario(base + 'process = "p"\n'))
    assert plan["groups"][0]["process"] == "p"


REQUESTS = """\
cpus = 2
duration = "1s"

[[group]]
name = "m"
comm = "msg"
count = 2
requests = { workers = "w", every = "2ms" }

[[group]]
name = "w"
comm = "worker"
count = 4
serve = { work = "100us" }
"""


def test_requests_and_serve_groups_are_checked():
    plan = runner_plan(parse_scenario(REQUESTS))
    assert [(g["kind"], g.get("workers"), g.get("every"), g.get("work")) for g in plan["groups"]] \
        == [("requests", "w", 0.002, None), ("serve", None, None, pytest.approx(0.0001))]
    [(code, line, message)] = errors(REQUESTS.replace("count = 4", "count = 3"))
    assert (code, line) == ("T003", 4) and "must be a multiple of 2" in message
    [(code, line, message)] = errors(REQUESTS.replace('workers = "w"', 'workers = "x"'))
    assert (code, line) == ("T003", 4) and "no workers group 'x'" in message
    alone = REQUESTS.replace('requests = { workers = "w", every = "2ms" }', "spin = {}")
    [(code, line, message)] = errors(alone)
    assert (code, line) == ("T003", 10) and "no group sends it any" in message
    as_spin = REQUESTS.replace('serve = { work = "100us" }', "spin = {}")
    [(code, line, message)] = errors(as_spin)
    assert code == "T003" and "must be a group with serve" in message
    [(code, line, message)] = errors(REQUESTS.replace('every = "2ms"', 'every = "0ms"'))
    assert code == "T002" and line == 8  # the requests line


def test_runner_requests_wake_their_workers(tmp_path: Path):
    """Two requests tasks, each waking its two workers every 20 ms for 0.5 s with 10 ms of
    work a request: the workers did the work (their CPU time), the requests tasks hardly any,
    and every worker stopped when its requests task did."""
    groups = [
        {"name": "m", "comm": "msg", "count": 2, "kind": "requests", "workers": "w",
         "every": 0.02, "for": None},
        {"name": "w", "comm": "worker", "count": 4, "kind": "serve", "work": 0.01},
    ]
    # the runner's own grace (5 s), not run_runner's 1 s: on a loaded host (a CI run beside a
    # sandbox boot) a worker's last request can take more than 1 s to end; one that never
    # stops is still killed, and fails this
    result = run_runner(tmp_path, {"duration": 0.5, "groups": groups, "grace": 5.0})
    assert not result["killed_after_grace"]
    by = {}
    for t in result["tasks"]:
        assert t["exit_code"] == 0, t
        by.setdefault(t["comm"], []).append(t["cpu_seconds"])
    # ~25 requests of 10 ms each: at least 0.1 s of CPU per worker, on a loaded host too
    assert len(by["worker"]) == 4 and min(by["worker"]) >= 0.1, by
    assert max(by["msg"]) < min(by["worker"]), by


def test_runner_releases_from_start_cpu_and_tasks_keep_their_own_mask(tmp_path: Path):
    everywhere = sorted(os.sched_getaffinity(0))
    groups = [
        {"name": "free", "comm": "free", "count": 1, "kind": "spin", "work": 0.01},
        {"name": "pinned", "comm": "pinned", "count": 1, "kind": "spin", "work": 0.01,
         "affinity": everywhere[-1:]},
    ]
    start = {"mode": "together", "order": [], "delay": 0, "cpu": everywhere[0]}
    result = run_runner(tmp_path, {"duration": 0.3, "groups": groups, "start": start})
    assert result["runner_affinity"] == [everywhere[0]]
    by = {t["comm"]: t for t in result["tasks"]}
    assert by["free"]["affinity_seen"] == everywhere  # forked before the runner moved
    assert by["pinned"]["affinity_seen"] == everywhere[-1:]
    unpinned = run_runner(tmp_path, {"duration": 0.3, "groups": groups})
    assert unpinned["runner_affinity"] == everywhere


def test_runner_ordered_start_and_a_killed_task(tmp_path: Path):
    groups = [
        {"name": "late", "comm": "late", "count": 1, "kind": "spin", "work": 0.01},
        {"name": "stuck", "comm": "stuck", "count": 1, "kind": "spin", "work": 60.0},
    ]
    start = {"mode": "ordered", "order": ["stuck", "late"], "delay": 0.2}
    result = run_runner(tmp_path, {"duration": 0.3, "groups": groups, "start": start})
    rel = result["released"]
    assert rel["late"] - rel["stuck"] >= 0.19
    by = {t["comm"]: t for t in result["tasks"]}
    assert by["late"]["exit_code"] == 0
    assert by["stuck"]["signal"] == "SIGKILL" and result["killed_after_grace"]


# --- the guest script, the report and the CLI --------------------------------------------------


def test_guest_script_runs_the_baseline_before_each_policy(tmp_path: Path):
    from schedc.bench.runner import BenchPolicy

    s = load_scenario(ROOT / "examples" / "weighted_share.scenario.toml")
    pols = [
        BenchPolicy("p", "p.sched", tmp_path / "p.bpf.o"),
        BenchPolicy("q", "q.sched", tmp_path / "q.bpf.o"),
    ]
    cases = [Case(s, pols)]
    steps = plan_steps(cases, 2)
    assert [st.policy for st in steps] == [None, 0, 1, None, 0, 1]
    objects = {(0, 0): tmp_path / "p.bpf.o", (0, 1): tmp_path / "q.bpf.o"}
    text = guest_script(
        tmp_path, "/bpftool", steps, cases, objects, {0: tmp_path / "0.json"}, tmp_path / "r.py"
    )
    assert text.count("struct_ops register") == 4
    assert text.count("rm -rf /sys/fs/bpf/schedc-test-") == 4
    assert "echo mono > $T/trace_clock" in text
    for event in ("sched_switch", "sched_wakeup", "sched_wakeup_new", "sched_process_exit"):
        assert f"events/sched/{event}/enable" in text
    # the baseline (step 0) attaches nothing
    first = text.split("touch $O/0.done")[0]
    assert "struct_ops register" not in first


def test_a_scenarios_own_runs_is_the_fewest_it_gets(tmp_path: Path):
    from schedc.bench.runner import BenchPolicy

    text = (ROOT / "examples" / "weighted_share.scenario.toml").read_text()
    noisy = tmp_path / "noisy.scenario.toml"
    noisy.write_text(text.replace('duration = ', 'runs = 3\nduration = ', 1))
    pol = [BenchPolicy("p", "p.sched", tmp_path / "p.bpf.o")]
    once = load_scenario(ROOT / "examples" / "weighted_share.scenario.toml")
    cases = [Case(load_scenario(noisy), pol), Case(once, pol)]
    steps = plan_steps(cases, 1)
    assert [(st.case, st.run) for st in steps if st.policy == 0] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert sum(st.case == 1 for st in plan_steps(cases, 4)) == 8  # --runs 4 is more than 3
    assert sum(st.case == 0 for st in plan_steps(cases, 4)) == 8
    noisy.write_text(text.replace('duration = ', 'runs = 0\nduration = ', 1))
    with pytest.raises(ScenarioError):
        load_scenario(noisy)


def test_failed_expectation_is_a_diagnostic_at_its_line():
    s = load_scenario(ROOT / "examples" / "weighted_share.scenario.toml")
    e = s.expect[0]
    r = evaluate(e, [two_cpu_run(0.5, 0.5)], [])  # groups a, b absent: no data
    result = ScenarioResult(
        "weighted_share", "x.sched", s.name, s.path, "6.12", "tcg", [r], {}, {}, []
    )
    [d] = _diagnostics(result, Case(s, []))
    assert d.code == CODES["share"] == "T103" and d.line == e.line and d.file == s.path
    assert "share expectation failed" in d.message


def test_cli_bad_scenario_is_a_usage_error_at_its_line(tmp_path: Path, capsys):
    bad = tmp_path / "bad.scenario.toml"
    bad.write_text(BASE.replace("count = 2", "count = 0"))
    assert schedc_main(["test", str(ROOT / "examples" / "fifo.sched"), "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(bad))}:7:1: error\[T002\]: group.count", err)
    argv = ["test", str(ROOT / "examples" / "fifo.sched"), "--scenario", str(bad)]
    assert schedc_main([*argv, "--format", "json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["results"] == []
    assert data["error"]["message"] == "not tested: a scenario file has errors"
    assert [(d["code"], d["file"], d["line"]) for d in data["diagnostics"]] == [
        ("T002", str(bad), 7)
    ]


def test_cli_without_a_sandbox_says_how_to_get_one(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("SCHEDC_KERNEL", str(tmp_path / "no-bzImage"))
    code = schedc_main(
        [
            "test",
            str(ROOT / "examples" / "fifo.sched"),
            "--scenario",
            str(ROOT / "examples" / "weighted_share.scenario.toml"),
            "--format",
            "json",
        ]
    )
    assert code == 2
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["command"] == "test" and out["results"] == []
    assert "cannot be booted" in out["error"]["message"] and "SCHEDC_KERNEL" in out["error"]["hint"]


def test_every_t_code_is_documented():
    doc = (ROOT / "docs" / "behaviour.md").read_text()
    codes = set(CODES.values()) | {"T001", "T002", "T003"}
    for code in codes:
        assert f"`{code}`" in doc, code


def test_runner_serves_several_runs_from_one_start(tmp_path: Path):
    import os

    req, rep = tmp_path / "req", tmp_path / "rep"
    os.mkfifo(req)
    os.mkfifo(rep)
    server = subprocess.Popen(
        [sys.executable, "-I", runner_module.__file__, "--serve", str(req), str(rep)]
    )
    try:
        plan = {
            "tracing": False,
            "state_file": "/nonexistent",
            "grace": 1.0,
            "duration": 0.2,
            "start": {"mode": "together", "order": [], "delay": 0},
            "groups": [{"name": "s", "comm": "served", "count": 1, "kind": "spin"}],
        }
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        for n in range(2):
            out = tmp_path / str(n)
            out.mkdir()
            req.write_text(f"{tmp_path / 'plan.json'} {out} 30\n")
            assert rep.read_text().strip() == "0"
            [task] = json.loads((out / "result.json").read_text())["tasks"]
            assert task["comm_seen"] == "served" and task["exit_code"] == 0
        req.write_text("quit\n")
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()


def test_results_json_has_the_documented_shape():
    from schedc.behaviour.report import results_json

    s = load_scenario(ROOT / "examples" / "pinned_latency.scenario.toml")
    e = evaluate(s.expect[0], [two_cpu_run(1.0, 0.0)], [two_cpu_run(0.5, 0.5)])
    r = ScenarioResult("p", "p.sched", s.name, s.path, "6.12.117", "tcg", [e], {"count": 0}, {}, [])
    [item] = results_json([r])
    assert {"policy", "scenario", "kernel", "ok", "expectations", "processes", "run"} <= set(item)
    [exp] = item["expectations"]
    assert {"kind", "groups", "expected", "measured", "baseline", "ok", "line"} <= set(exp)
    assert exp["line"] == s.expect[0].line and item["run"]["emulated"] is True


def test_run_facts_of_the_baseline_name_no_attachment():
    from schedc.behaviour.run import RunInfo, Step

    assert "attached" not in RunInfo(Step(0, 0, 0, None)).to_json()
    policy = RunInfo(Step(1, 0, 0, 0), ops="ljf").to_json()
    assert policy["attached"] is True and policy["ops"] == "ljf"


def test_cli_checks_every_kernel_of_the_matrix_before_compiling(tmp_path: Path, capsys, settings):
    from tests.conftest import needs_sandbox  # noqa: PLC0415

    needs_sandbox(settings)  # the first kernel passes the check; the second cannot boot
    kit = tmp_path / "kit-b"
    kit.mkdir()
    (kit / "bzImage").write_bytes(b"never booted")
    (kit / "bpftool").write_text("#!/bin/sh\nexit 1\n")
    (kit / "bpftool").chmod(0o755)
    broken = tmp_path / "broken.sched"
    broken.write_text("scheduler broken {\n  class a when task.nope\n}\n")
    scenario = str(ROOT / "examples" / "fifo.scenario.toml")
    argv = ["test", str(broken), "--scenario", scenario, "--format", "json"]
    code = schedc_main([*argv, "--kernel", str(settings.kernel), "--kernel", str(kit)])
    assert code == 2
    out = json.loads(capsys.readouterr().out)
    message = out["error"]["message"]
    assert message.startswith(f"kernel 2/2 of the matrix ({kit}) cannot be booted"), out
    assert "bpftool" in message and out["diagnostics"] == []  # not compiled
