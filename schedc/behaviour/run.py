"""One boot of the sandbox for every (scenario, policy) of a call, with the baseline.

Per scenario and run: the workload under the kernel's default scheduler (nothing attached),
then under each policy, attached as `verify --run` does (bpftool struct_ops register into a
pinned link; detached by removing the pin). Each run is traced (ftrace) and the guest writes
the trace, the runner's record of its processes and sched_ext's state into the --rwdir
folder; the host reads them after the guest powers off (vng's own output is not trusted).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schedc.behaviour import runner as runner_module
from schedc.behaviour.counters import MAP_NAME, has_counter_map, named, totals
from schedc.behaviour.expect import Observation, TaskRecord
from schedc.behaviour.scenario import Scenario
from schedc.behaviour.trace import parse_trace
from schedc.bench.runner import BASELINE, BenchPolicy
from schedc.settings import EnvironmentProblem, Settings, find_bpftool, kernel_matrix, kernel_name
from schedc.verifier.sandbox import (
    REMEDY,
    boot_guest,
    guest_outdir,
    kconfig_lines,
    kernel_config,
    object_for_kernel,
    output_tail,
    parse_run,
    remove_guest_files,
    sandbox_problems,
    where_it_runs,
)

BOOT_ALLOWANCE_S = 180.0
RUN_ALLOWANCE_S = 45.0  # Python's start under TCG, attach, writing the trace
GRACE_S = 5.0  # after the scenario's end, before the runner kills what is left
TRACE_BUFFER_KB = 4096  # per CPU
EVENTS = ("sched_switch", "sched_wakeup", "sched_wakeup_new", "sched_process_exit")


@dataclass(frozen=True)
class Case:
    """A scenario and the policies to test on it (each beside the baseline)."""

    scenario: Scenario
    policies: list[BenchPolicy]


@dataclass(frozen=True)
class Step:
    index: int
    case: int
    run: int  # 0-based
    policy: int | None  # None: the baseline


@dataclass
class RunInfo:
    """What happened around one run in the guest."""

    step: Step
    attached: bool = True
    attach_error: str | None = None
    ops: str | None = None
    enabled_throughout: bool = True
    disabled_after: bool = True
    exit_reason: str | None = None
    exit_message: str | None = None
    runner_status: int | None = None
    runner_error: str | None = None
    events: int = 0
    lost_events: int = 0
    states: list[str] = field(default_factory=list)
    finished: bool = True
    seconds: float | None = None  # the workload's wall time in the guest (release to trace)
    attach_seconds: float | None = None  # bpftool struct_ops register (the verifier included)
    # The policy's counters at the end of the run, per key summed over CPUs (counters.py);
    # None when the object has no schedc_counters map.
    counters: dict[int, int] | None = None
    counters_error: str | None = None

    def named_counters(self, names: Sequence[str]) -> dict[str, int]:
        return named(self.counters or {}, names)

    def to_json(self, counter_names: Sequence[str] = ()) -> dict[str, object]:
        data: dict[str, object] = {
            "run": self.step.run + 1,
            "attached": self.attached,
            "attach_error": self.attach_error,
            "ops": self.ops,
            "enabled_throughout": self.enabled_throughout,
            "disabled_after": self.disabled_after,
            "exit_reason": self.exit_reason,
            "exit_message": self.exit_message,
            "runner_status": self.runner_status,
            "runner_error": self.runner_error,
            "trace_events": self.events,
            "trace_lost_events": self.lost_events,
            "state_samples": len(self.states),
            "finished": self.finished,
            "seconds": self.seconds,
            "attach_seconds": self.attach_seconds,
            "counters": self.named_counters(counter_names),
            "counters_error": self.counters_error,
        }
        if self.step.policy is None:  # the baseline attaches nothing
            keys = ("attached", "attach_error", "ops", "enabled_throughout", "disabled_after")
            for key in (*keys, "attach_seconds", "counters", "counters_error"):
                del data[key]
            data.update(exit_reason=None, exit_message=None)
        return data


@dataclass
class Measured:
    step: Step
    info: RunInfo
    observation: Observation | None


@dataclass
class BootResult:
    kernel: str | None
    vcpus: int | None
    accel: str
    measured: list[Measured]


def case_runs(case: Case, runs: int) -> int:
    return max(runs, case.scenario.runs)


def plan_steps(cases: Sequence[Case], runs: int) -> list[Step]:
    """Per case and run: the baseline, then each policy (A B A B across runs); a case runs
    `runs` times, or its scenario's own `runs` when that is more."""
    steps: list[Step] = []
    for c, case in enumerate(cases):
        for r in range(case_runs(case, runs)):
            steps.append(Step(len(steps), c, r, None))
            for p in range(len(case.policies)):
                steps.append(Step(len(steps), c, r, p))
    return steps


def runner_plan(scenario: Scenario) -> dict[str, Any]:
    """The runner's PLAN.json for a scenario."""
    groups = []
    seen_pairs: set[str] = set()
    for g in scenario.group:
        item: dict[str, Any] = {
            "name": g.name,
            "comm": g.comm,
            "process": g.process,
            "count": g.count,
            "cgroup": g.cgroup,
            "nice": g.nice,
            "affinity": list(g.affinity) if g.affinity else None,
            "kind": g.behaviour,
        }
        if g.spin:
            item.update(work=g.spin.work, **{"for": g.spin.for_})
        elif g.cycle:
            item.update(run=g.cycle.run, sleep=g.cycle.sleep, times=g.cycle.times)
            item["for"] = g.cycle.for_
        elif g.pingpong:
            item.update(partner=g.pingpong.partner, times=g.pingpong.times, work=g.pingpong.work)
            item["for"] = g.pingpong.for_
            item["initiator"] = g.pingpong.partner not in seen_pairs
            seen_pairs.add(g.name)
        elif g.requests:
            item.update(workers=g.requests.workers, every=g.requests.every)
            item["for"] = g.requests.for_
        elif g.serve:
            item.update(work=g.serve.work)
        groups.append(item)
    return {
        "duration": scenario.duration,
        "grace": GRACE_S,
        "start": {
            "mode": scenario.start.mode,
            "order": scenario.start.order,
            "delay": scenario.start.delay,
            "cpu": scenario.start.cpu,
        },
        "groups": groups,
    }


def step_limit(scenario: Scenario) -> int:
    return int(scenario.duration + GRACE_S + scenario.start.delay * len(scenario.group) + 90)


def counter_dump(tool: str, n: int) -> tuple[str, ...]:
    """Shell lines that dump the policy's counter map into run N's folder while the policy is
    still attached. Map ids only grow, so the newest map of that name is the one this policy
    loaded (an earlier policy's may not be freed yet)."""
    return (
        f"  id=$({tool} map show 2>/dev/null | grep ' name {MAP_NAME} ' | cut -d: -f1 | tail -n 1)",
        f'  if [ -n "$id" ]; then {tool} -j map dump id "$id" > $O/{n}/counters.json '
        f"2> $O/{n}.counters.err; else echo 'no {MAP_NAME} map was loaded' "
        f"> $O/{n}.counters.err; fi",
    )


def guest_script(
    outdir: Path,
    bpftool: str,
    steps: Sequence[Step],
    cases: Sequence[Case],
    objects: dict[tuple[int, int], Path],
    plans: dict[int, Path],
    runner: Path,
    kconfig: str | None = None,
) -> str:
    out, tool = shlex.quote(str(outdir)), shlex.quote(bpftool)
    py = shlex.quote(sys.executable)
    lines = [
        "#!/bin/sh",
        f"O={out}",
        "S=/sys/kernel/sched_ext/state",
        "T=/sys/kernel/tracing",
        "mount -t bpf bpf /sys/fs/bpf 2>/dev/null",
        # The kernel's config where bpftool's libbpf reads it (__kconfig externs).
        *kconfig_lines(kconfig),
        "grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev $T",
        "grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup",
        "cd /tmp",
        "uname -r > $O/env.kernel; nproc > $O/env.vcpus",
        "dmesg -w > $O/kernel.log 2>&1 &",
        "echo 0 > $T/tracing_on",
        f"echo {TRACE_BUFFER_KB} > $T/buffer_size_kb",
        "echo mono > $T/trace_clock",
        *[f"echo 1 > $T/events/sched/{e}/enable" for e in EVENTS],
        # One runner serves every run of the boot: a Python start costs many seconds under
        # TCG. It reads `PLAN OUTDIR LIMIT` from one FIFO and answers the status on the other.
        "mkfifo /tmp/schedc-req /tmp/schedc-rep",
        f"{py} -I -S {shlex.quote(str(runner))} --serve /tmp/schedc-req /tmp/schedc-rep "
        "> $O/runner.log 2>&1 &",
    ]
    for s in steps:
        n = s.index
        scenario = cases[s.case].scenario
        limit = step_limit(scenario)
        # N.runner.rc: the runner's answer; 125 when it is gone (a FIFO that nobody opens
        # would block the shell forever, so `timeout` bounds the wait).
        run = (
            f"  date +%s.%N > $O/{n}.t0",
            f'  timeout {limit + 120} sh -c \'echo "$1 $2 $3" > /tmp/schedc-req; '
            f"cat /tmp/schedc-rep' sh {shlex.quote(str(plans[s.case]))} $O/{n} {limit} "
            f"> $O/{n}.runner.rc || echo 125 > $O/{n}.runner.rc",
            "  echo 0 > $T/tracing_on",
            f"  cat $T/trace > /tmp/{n}.trace; cp /tmp/{n}.trace $O/{n}.trace; rm -f /tmp/{n}.trace",
            f"  date +%s.%N > $O/{n}.t1",
        )
        lines += [
            f"mkdir -p $O/{n}",
            "before=$(dmesg | wc -l)",
            "echo > $T/trace",
        ]
        if s.policy is None:
            lines += ["if true; then", *run, "fi"]
        else:
            link = f"/sys/fs/bpf/schedc-test-{n}"
            obj = shlex.quote(str(objects[(s.case, s.policy)]))
            lines += [
                f"date +%s.%N > $O/{n}.ta",
                f"mkdir -p {link}",
                f"{tool} struct_ops register {obj} {link} > $O/{n}.attach.log 2>&1",
                f"echo $? > $O/{n}.attach.rc",
                f'if [ "$(cat $O/{n}.attach.rc)" = 0 ]; then',
                f"  cat /sys/kernel/sched_ext/root/ops > $O/{n}.ops 2>/dev/null",
                f"  cat $S > $O/{n}.before",
                *run,
                *(counter_dump(tool, n) if has_counter_map(objects[(s.case, s.policy)]) else ()),
                f"  cat $S > $O/{n}.end",
                "fi",
                f"rm -rf {link}",
                'j=0; while [ "$(cat $S)" != disabled ] && [ $j -lt 40 ]; do sleep 0.25; '
                "j=$((j+1)); done",
                f"cat $S > $O/{n}.after",
            ]
        lines += [f"dmesg | tail -n +$((before + 1)) > $O/{n}.dmesg", f"touch $O/{n}.done"]
    lines.append("timeout 20 sh -c 'echo quit > /tmp/schedc-req'")
    return "\n".join([*lines, "touch $O/done", ""])


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _elapsed(outdir: Path, start: str, end: str) -> float | None:
    try:
        return round(float(_read(outdir / end)) - float(_read(outdir / start)), 3)
    except ValueError:
        return None


def read_counters(outdir: Path, n: int, info: RunInfo) -> None:
    """Run N's counter dump (when the guest made one) into `info`."""
    dump, err = outdir / str(n) / "counters.json", outdir / f"{n}.counters.err"
    if not dump.exists() and not err.exists():
        return  # no counter map in this object
    info.counters = {}
    try:
        info.counters = totals(_read(dump))
    except (ValueError, AttributeError):
        why = _read(err).strip() or "the dump is not a per-CPU map's JSON"
        info.counters_error = f"the counters could not be read: {why}"[:500]


def read_step(outdir: Path, step: Step, finished: bool) -> Measured:
    """The observation and run facts of one step from the files the guest wrote."""
    n = step.index
    info = RunInfo(step)
    if not (outdir / f"{n}.done").exists():
        info.finished = False
        tail = " / ".join(_read(outdir / "kernel.log").strip().splitlines()[-3:])
        why = "the guest stopped" if finished else "the time limit ran out"
        info.runner_error = f"not run: {why} before this run ended" + (
            f" (kernel log: {tail})" if tail else ""
        )
        info.enabled_throughout = step.policy is None
        return Measured(step, info, None)
    result_file = outdir / str(n) / "result.json"
    result: dict[str, Any] = {}
    if result_file.exists():
        try:
            result = json.loads(result_file.read_text())
        except json.JSONDecodeError:
            result = {}
    info.states = [str(s) for s in result.get("states", [])]
    info.seconds = _elapsed(outdir, f"{n}.t0", f"{n}.t1")
    info.attach_seconds = _elapsed(outdir, f"{n}.ta", f"{n}.t0")
    rc = _read(outdir / f"{n}.runner.rc").strip()
    info.runner_status = int(rc) if rc.lstrip("-").isdigit() else None
    if step.policy is not None:
        before = _read(outdir / f"{n}.before").strip()
        end = _read(outdir / f"{n}.end").strip()
        # parse_run reads N.states: the samples before, during and at the end of the run.
        samples = [s for s in [before, *info.states, end] if s]
        (outdir / f"{n}.states").write_text("\n".join(samples) + ("\n" if samples else ""))
        run = parse_run(outdir, n, 0.0, "scenario")
        info.attached = run.attached
        info.attach_error = run.attach_error
        info.ops = run.ops
        info.enabled_throughout = run.enabled_throughout
        info.exit_reason = run.exit_reason
        info.exit_message = run.exit_message
        info.disabled_after = _read(outdir / f"{n}.after").strip() == "disabled"
        read_counters(outdir, n, info)
    if not result:
        if info.attached:
            log = " / ".join(_read(outdir / "runner.log").strip().splitlines()[-3:])
            info.runner_error = (
                f"the workload runner wrote no result (exit status {rc or '?'}"
                + (f"; {log}" if log else "")
                + ")"
            )
        return Measured(step, info, None)
    trace_text = _read(outdir / f"{n}.trace")
    trace = parse_trace(trace_text)
    info.events, info.lost_events = trace.events, trace.lost
    tasks = [
        TaskRecord(
            group=str(t["group"]),
            index=int(t["index"]),
            pid=int(t["pid"]),
            comm=str(t["comm"]),
            comm_seen=t.get("comm_seen"),
            exit_code=t.get("exit_code"),
            signal=t.get("signal"),
            process_seen=t.get("process_seen"),
        )
        for t in result.get("tasks", [])
    ]
    released = {str(k): float(v) for k, v in (result.get("released") or {}).items()}
    return Measured(step, info, Observation(trace, tasks, released))


def _watch(
    outdir: Path,
    steps: Sequence[Step],
    describe: Callable[[Step], str],
    say: Callable[[str], None],
    stop: threading.Event,
) -> None:
    shown = 0
    while shown < len(steps):
        if (outdir / f"{steps[shown].index}.done").exists():
            say(f"[{shown + 1}/{len(steps)}] {describe(steps[shown])} done")
            shown += 1
            continue
        if stop.is_set():
            return
        time.sleep(0.3)


def refuse_host(settings: Settings) -> None:
    """Scenarios run in the sandbox guest only: the host's kernel (host = "yes") is refused."""
    if settings.on_host:
        raise EnvironmentProblem(
            "schedc test runs its scenarios in the sandbox guest only, not on this host's "
            'kernel (host = "yes" adds it to the matrix)',
            'set host = "auto" or "no" for schedc test (SCHEDC_HOST, --host-kernel)',
        )


def check_sandbox(settings: Settings, which: str | None = None) -> None:
    """This kernel can be booted in the sandbox, else EnvironmentProblem; `which` names it in
    a matrix ("kernel 2/2 of the matrix (KIT)")."""
    refuse_host(settings)
    problems = sandbox_problems(settings)
    if problems:
        what = (
            f"{which} cannot be booted in the sched_ext sandbox"
            if which
            else "the sched_ext sandbox cannot be booted"
        )
        raise EnvironmentProblem(f"{what}: {'; '.join(problems)}", REMEDY)


def check_sandboxes(settings: Settings) -> None:
    """Every kernel of the matrix (settings.kernel_matrix) can be booted, checked once before
    anything is compiled or booted; else EnvironmentProblem naming the kernel that cannot."""
    kernels = kernel_matrix(settings, attach=True)  # a kit without a bzImage is refused here
    for n, kernel in enumerate(kernels, 1):
        given = settings.kernels[n - 1] if n <= len(settings.kernels) else None
        entry = given or kernel_name(kernel)  # the kit as configured
        which = f"kernel {n}/{len(kernels)} of the matrix ({entry})"
        check_sandbox(kernel, None if len(kernels) == 1 else which)


def run_cases(
    cases: Sequence[Case],
    settings: Settings,
    *,
    runs: int = 1,
    keep_trace: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> BootResult:
    """Runs every case in ONE boot (all scenarios must want the same number of CPUs).
    Raises EnvironmentProblem when the sandbox is missing or the guest wrote nothing."""
    say = progress or (lambda _m: None)
    if runs < 1:
        raise ValueError("runs must be at least 1")
    cpus = {c.scenario.cpus for c in cases}
    if len(cpus) != 1:
        raise ValueError("one boot runs scenarios of one CPU count")
    settings = dataclasses.replace(settings, vm_cpus=cpus.pop())
    check_sandbox(settings)
    steps = plan_steps(cases, runs)
    outdir = guest_outdir(settings, "schedc-test-")
    try:
        runner = outdir / "runner.py"
        shutil.copyfile(runner_module.__file__, runner)
        objects: dict[tuple[int, int], Path] = {}
        plans: dict[int, Path] = {}
        for c, case in enumerate(cases):
            plans[c] = outdir / "plans" / f"{c}.json"
            plans[c].parent.mkdir(exist_ok=True)
            plans[c].write_text(json.dumps(runner_plan(case.scenario), indent=1))
            for p, policy in enumerate(case.policies):
                copy = outdir / "objects" / f"{c}-{p}" / policy.object_path.name
                copy.parent.mkdir(parents=True)
                fill = object_for_kernel(policy.object_path, copy, settings)  # its scx enums
                if fill is not None:
                    say(f"{policy.object_path.name}: {fill.describe()}")
                objects[(c, p)] = copy
        script = outdir / "test.sh"
        script.write_text(
            guest_script(
                outdir,
                find_bpftool(settings),
                steps,
                cases,
                objects,
                plans,
                runner,
                kernel_config(settings),
            )
        )
        timeout_s = BOOT_ALLOWANCE_S + sum(
            step_limit(cases[s.case].scenario) + RUN_ALLOWANCE_S for s in steps
        )

        def describe(s: Step) -> str:
            case = cases[s.case]
            who = BASELINE if s.policy is None else case.policies[s.policy].name
            return f"{case.scenario.name} run {s.run + 1}/{case_runs(case, runs)} {who}"

        say(
            f"{where_it_runs(settings)} for "
            f"{len(steps)} runs: {', '.join(c.scenario.name for c in cases)} …"
        )
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch, args=(outdir, steps, describe, say, stop), daemon=True
        )
        watcher.start()
        started = time.monotonic()
        try:
            status = boot_guest(settings, outdir, script, timeout_s, say)
        finally:
            stop.set()
            watcher.join(timeout=5)
        seconds = time.monotonic() - started
        say(f"sandbox {'powered off' if status is not None else 'stopped'} after {seconds:.1f} s")
        if not (outdir / "env.kernel").exists():
            how = "hit the time limit" if status is None else f"exited with status {status}"
            raise EnvironmentProblem(
                f"the sandbox guest wrote no results (vng {how} after {seconds:.1f} s); "
                f"the end of vng's output:\n{output_tail(outdir / 'vng.out')}",
                f"check that {settings.kernel} boots with virtme-ng; {REMEDY}",
            )
        measured = [read_step(outdir, s, status is not None) for s in steps]
        if keep_trace is not None:
            for s in steps:
                src = outdir / f"{s.index}.trace"
                if src.exists():
                    case = cases[s.case]
                    who = "baseline" if s.policy is None else case.policies[s.policy].name
                    dest = keep_trace / case.scenario.name / f"{who}-run{s.run + 1}.trace"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dest)
        vcpus = _read(outdir / "env.vcpus").strip()
        return BootResult(
            kernel=_read(outdir / "env.kernel").strip() or None,
            vcpus=int(vcpus) if vcpus.isdigit() else None,
            accel=settings.accel,
            measured=measured,
        )
    finally:
        remove_guest_files(settings, outdir, say)
