"""`schedc bench`: measure policies against the kernel's default scheduler (EEVDF) on named
workloads, in one boot of the sched_ext sandbox guest.

One boot runs every (workload, policy) pair: for each workload, optional warm-up runs, then
per run the baseline (no sched_ext scheduler attached: EEVDF) followed by each policy
(attached through a pinned struct_ops link, detached by removing the pin) — A B A B, so that
drift over the boot hits both sides alike. Every run's value, the medians, the spread and the
ratio policy/baseline with a bootstrap interval (bench_stats) make a BenchResult. A policy that
the kernel ejects during a run has that run marked failed with the kernel's reason.

The guest writes everything into the --rwdir folder, and the host reads it after the guest
has powered off (vng's own output and exit status are not trusted, as in sandbox.py).
docs/bench.md documents the command, the recipes and the JSON.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import platform
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from schedc import __version__
from schedc.behaviour import counters
from schedc.bench.stats import Comparison, compare, median, spread
from schedc.compiler import pipeline
from schedc.compiler.toolchain import load_toolchain
from schedc.diagnostics import Diagnostic
from schedc.lifecycle import child_group, kill_group
from schedc.settings import (
    HOST_BTF,
    EnvironmentProblem,
    Settings,
    find_bpftool,
    host_kernel_problem,
)
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
from schedc.workloads import (
    RECIPES,
    ParseError,
    Workload,
    WorkloadParams,
    workload_problems,
)

BASELINE = "EEVDF"
DEFAULT_RUNS = 5
DEFAULT_WARMUP = 1
BOOT_ALLOWANCE_S = 180.0  # boot and power-off under TCG, with room to spare
ATTACH_ALLOWANCE_S = 30.0  # bpftool loads and verifies the object, then the detach
TCG_NOTE = (
    "TCG: QEMU emulates the guest's CPUs in software, all vCPUs on one host thread; timings are "
    "emulated, only comparable within one boot, and not those of real hardware"
)
KVM_NOTE = "KVM: a hardware-virtualized guest; timings include virtualization overhead"
HOST_NOTE = (
    "host: this machine's own kernel and CPUs; real timings, with whatever else runs on the "
    "machine as noise"
)
Where = Literal["sandbox", "host"]


@dataclass(frozen=True)
class BenchPolicy:
    """A policy ready to attach: its name (the file name up to the first dot), where it came
    from, its compiled object, and its counters' names by index (docs/dsl.md section 3.4; ()
    when it declares none or they are not known, as for an object given as it is)."""

    name: str
    source: str
    object_path: Path
    counters: tuple[str, ...] = ()
    params_set: tuple[tuple[str, str], ...] = ()  # --set NAME=VALUE it was built with


@dataclass(frozen=True)
class Measurement:
    """One run of one workload in the guest: the baseline (policy None) or a policy's index."""

    index: int
    workload: str
    run: int  # 0-based; warm-up runs are negative
    policy: int | None

    @property
    def warmup(self) -> bool:
        return self.run < 0


@dataclass
class RunOutcome:
    run: int  # 1-based in the output
    value: float | None
    error: str | None = None
    seconds: float | None = None  # the run's wall-clock time in the guest
    extra: dict[str, float | int | bool | str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None

    def to_json(self) -> dict[str, object]:
        return {
            "run": self.run,
            "ok": self.ok,
            "value": self.value,
            "error": self.error,
            "seconds": self.seconds,
            "extra": self.extra,
        }


def _values(runs: Sequence[RunOutcome]) -> list[float]:
    return [r.value for r in runs if r.ok and r.value is not None]


def _side(runs: Sequence[RunOutcome]) -> dict[str, object]:
    values = _values(runs)
    return {
        "values": values,
        "median": median(values) if values else None,
        "spread": spread(values).to_json() if values else None,
        "failed_runs": sum(not r.ok for r in runs),
        "runs": [r.to_json() for r in runs],
    }


@dataclass
class BenchResult:
    workload: Workload
    policy: BenchPolicy
    baseline_runs: list[RunOutcome]
    policy_runs: list[RunOutcome]
    environment: dict[str, object]
    ops: str | None = None  # the scheduler's name as the kernel reported it

    @property
    def baseline_values(self) -> list[float]:
        return _values(self.baseline_runs)

    @property
    def policy_values(self) -> list[float]:
        return _values(self.policy_runs)

    @property
    def comparison(self) -> Comparison:
        return compare(
            self.baseline_values,
            self.policy_values,
            self.workload.direction,
            policy_name=self.policy.name,
            baseline_name=BASELINE,
        )

    @property
    def ok(self) -> bool:
        """Every policy run completed with the scheduler attached throughout."""
        return bool(self.policy_runs) and all(r.ok for r in self.policy_runs)

    def to_json(self) -> dict[str, object]:
        return {
            "workload": self.workload.name,
            "metric": self.workload.metric,
            "unit": self.workload.unit,
            "direction": self.workload.direction,
            "baseline": {"scheduler": BASELINE, **_side(self.baseline_runs)},
            "policy": {
                "name": self.policy.name,
                "source": self.policy.source,
                "ops": self.ops,
                "set": dict(self.policy.params_set),
                **_side(self.policy_runs),
            },
            "ratio": self.comparison.to_json(),
            "environment": self.environment,
        }


def results_json(results: Sequence[BenchResult]) -> list[dict[str, object]]:
    """Every result's object, one per (policy, workload, kernel), as a list also for one: the
    `results` of `schedc bench --format json` (docs/json.md)."""
    return [r.to_json() for r in results]


# --- the plan and the guest script -----------------------------------------------------------


def plan_measurements(
    workloads: Sequence[str], policies: int, runs: int, warmup: int
) -> list[Measurement]:
    """Per workload: warm-up baselines, then per run the baseline and each policy in turn."""
    plan: list[Measurement] = []
    for name in workloads:
        for w in range(warmup):
            plan.append(Measurement(len(plan), name, -warmup + w, None))
        for run in range(runs):
            plan.append(Measurement(len(plan), name, run, None))
            for p in range(policies):
                plan.append(Measurement(len(plan), name, run, p))
    return plan


def time_limit(recipe: Workload, params: WorkloadParams) -> int:
    """Seconds a run may take in the guest before `timeout` stops it."""
    return math.ceil(4 * recipe.expected_seconds(params) + 30)


_MEASURE = r"""
# measure N SCRIPT LIMIT: one run, with sched_ext's state sampled every 0.25 s meanwhile. The
# output goes to the guest's /tmp first, so that nothing crosses to the host during the run.
measure() {
  t=/tmp/schedc-bench-$1; rm -f $t.stop
  cat $S > $t.states 2>/dev/null
  ( while [ ! -e $t.stop ]; do cat $S >> $t.states 2>/dev/null; sleep 0.25; done ) & smp=$!
  s=$(date +%s.%N)
  timeout -k 5 $3 sh $2 > $t.out 2>&1; echo $? > $O/$1.rc
  e=$(date +%s.%N)
  touch $t.stop; wait $smp
  cat $S >> $t.states 2>/dev/null
  echo "$s $e" > $O/$1.wall
  cp $t.out $O/$1.out; cp $t.states $O/$1.states
}
"""


def guest_script(
    outdir: Path,
    bpftool: str,
    plan: Sequence[Measurement],
    objects: Sequence[Path],
    scripts: dict[str, Path],
    limits: dict[str, int],
    pin_prefix: str = "/sys/fs/bpf/schedc-bench-",
    kconfig: str | None = None,
) -> str:
    """The guest's sh script: environment facts, then every measurement of the plan; each
    one ends by creating N.done, which the host watches for progress. The same script runs
    on a sched_ext host with `bench --host` (pin_prefix then names this process's pins; no
    `kconfig` then: a host has its own /boot config). `kconfig` (the guest kernel's config)
    goes where bpftool's libbpf reads it, for objects with __kconfig externs."""
    out, tool = shlex.quote(str(outdir)), shlex.quote(bpftool)
    lines = [
        "#!/bin/sh",
        f"O={out}",
        "S=/sys/kernel/sched_ext/state",
        # Mounted in the guest; on a host, a second bpffs on top would hide its pins.
        "grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf 2>/dev/null",
        *kconfig_lines(kconfig),
        "cd /tmp  # a writable working folder for the workloads (stress-ng needs one)",
        "uname -r > $O/env.kernel; nproc > $O/env.vcpus",
        "grep MemTotal /proc/meminfo > $O/env.memory",
        # The kernel's log as it happens, for a guest that dies during a run.
        "dmesg -w > $O/kernel.log 2>&1 &",
        _MEASURE.strip(),
    ]
    for m in plan:
        n = m.index
        script = shlex.quote(str(scripts[m.workload]))
        measure = f"measure {n} {script} {limits[m.workload]}"
        lines.append("before=$(dmesg | wc -l)")
        if m.policy is None:
            lines.append(measure)
        else:
            link = f"{pin_prefix}{n}"
            obj = shlex.quote(str(objects[m.policy]))
            lines += [
                f"mkdir -p {link}",
                f"{tool} struct_ops register {obj} {link} > $O/{n}.attach.log 2>&1",
                f"echo $? > $O/{n}.attach.rc",
                f'if [ "$(cat $O/{n}.attach.rc)" = 0 ]; then',
                f"  cat /sys/kernel/sched_ext/root/ops > $O/{n}.ops 2>/dev/null",
                f"  {measure}",
                "fi",
                f"rm -rf {link}",
                'j=0; while [ "$(cat $S)" != disabled ] && [ $j -lt 40 ]; do sleep 0.25; '
                "j=$((j+1)); done",
            ]
        lines += [f"dmesg | tail -n +$((before + 1)) > $O/{n}.dmesg", f"touch $O/{n}.done"]
    return "\n".join([*lines, "touch $O/done", ""])


# --- reading the results ---------------------------------------------------------------------


def _read(outdir: Path, name: str) -> str:
    path = outdir / name
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _last_lines(text: str, n: int = 3) -> str:
    return " / ".join(ln.strip() for ln in text.strip().splitlines()[-n:] if ln.strip())


def read_outcome(
    outdir: Path, m: Measurement, recipe: Workload, limit: int, finished: bool
) -> RunOutcome:
    """What one measurement gave, from the files the guest wrote."""
    n = m.index
    outcome = RunOutcome(run=m.run + 1, value=None)
    if not (outdir / f"{n}.done").exists():
        why = "the guest stopped" if finished else "the time limit ran out"
        tail = _last_lines(_read(outdir, "kernel.log"))
        outcome.error = f"not measured: {why} before this run ended" + (
            f" (kernel log: {tail})" if tail else ""
        )
        return outcome
    wall = _read(outdir, f"{n}.wall").split()
    if len(wall) == 2:
        outcome.seconds = round(float(wall[1]) - float(wall[0]), 3)
    if m.policy is not None:
        run = parse_run(outdir, n, outcome.seconds or 0.0, recipe.name)
        if not run.attached:
            outcome.error = f"the scheduler did not attach: {run.attach_error}"
            return outcome
        if not run.enabled_throughout:
            reason = run.exit_reason or "sched_ext was not enabled throughout the run"
            message = f": {run.exit_message}" if run.exit_message else ""
            # The first state sample is taken just before the workload starts.
            first = next(iter(_read(outdir, f"{n}.states").split()), "")
            when = "during" if first == "enabled" else "before"
            outcome.error = f"the kernel ejected the scheduler {when} the run ({reason}){message}"
    output = _read(outdir, f"{n}.out")
    rc = _read(outdir, f"{n}.rc").strip()
    if rc in ("124", "137"):
        outcome.error = outcome.error or f"the run did not finish within {limit} s"
        return outcome
    try:
        sample = recipe.parse(output)
    except ParseError as exc:
        detail = _last_lines(output) or "no output"
        outcome.error = outcome.error or f"{exc} (exit status {rc or '?'}; {detail})"
        return outcome
    outcome.extra.update(sample.extra)
    if outcome.error is None:
        outcome.value = sample.value
    else:  # measured, but not under the policy all along: kept aside, not counted
        outcome.extra["value_after_ejection"] = sample.value
    return outcome


def _host_facts(settings: Settings) -> dict[str, object]:
    facts: dict[str, object] = {"host_machine": platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["host_cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts["host_cpus"] = os.cpu_count()
    try:
        qemu = subprocess.run(
            ["qemu-system-x86_64", "--version"], capture_output=True, text=True, timeout=20
        ).stdout.splitlines()
        facts["qemu"] = qemu[0].strip() if qemu else None
    except (OSError, subprocess.SubprocessError):
        facts["qemu"] = None
    tools: dict[str, str] = {}
    if shutil.which("dpkg-query"):
        for package in ("rt-tests", "stress-ng", "gcc", "make"):
            proc = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", package],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode == 0 and proc.stdout.strip():
                tools[package] = proc.stdout.strip()
    facts["packages"] = tools
    return facts


def _environment(
    outdir: Path,
    settings: Settings,
    recipe: Workload,
    params: WorkloadParams,
    runs: int,
    warmup: int,
    host: dict[str, object],
    where: Where = "sandbox",
) -> dict[str, object]:
    vcpus = _read(outdir, "env.vcpus").strip()
    memory = _read(outdir, "env.memory").split()
    if where == "host":
        accel, note = "none", HOST_NOTE
        place = "host: this machine's sched_ext kernel (schedc bench --host)"
    else:
        accel, note = settings.accel, TCG_NOTE if settings.accel == "tcg" else KVM_NOTE
        place = "sandbox: a virtme-ng QEMU guest booting the sched_ext kernel"
    return {
        "kernel": _read(outdir, "env.kernel").strip() or None,
        "vcpus": int(vcpus) if vcpus.isdigit() else settings.vm_cpus,
        "memory_kb": int(memory[1]) if len(memory) > 1 and memory[1].isdigit() else None,
        "accelerator": accel,
        "emulated": accel == "tcg",
        "timing_note": note,
        "where": place,
        "order": "per run: the baseline, then each policy (interleaved A B A B)",
        "runs": runs,
        "warmup_runs": warmup,
        "recipe": {
            "summary": recipe.summary,
            "command": recipe.command_line(params),
            "params": params.to_json(),
        },
        "schedc": __version__,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **host,
    }


def _label(m: Measurement, runs: int, policies: Sequence[BenchPolicy]) -> str:
    which = BASELINE if m.policy is None else policies[m.policy].name
    when = "warm-up" if m.warmup else f"run {m.run + 1}/{runs}"
    return f"{m.workload} {when} {which}"


def _watch(
    outdir: Path,
    plan: Sequence[Measurement],
    describe: Callable[[Measurement], str],
    say: Callable[[str], None],
    stop: threading.Event,
) -> None:
    """Reports each measurement as the guest finishes it (N.done is written last)."""
    shown = 0
    while shown < len(plan):
        if (outdir / f"{plan[shown].index}.done").exists():
            say(f"[{shown + 1}/{len(plan)}] {describe(plan[shown])}")
            shown += 1
            continue
        if stop.is_set():
            return
        time.sleep(0.3)


# --- the whole bench -------------------------------------------------------------------------


def run_on_host(script: Path, outdir: Path, timeout_s: float, pin_prefix: str) -> int | None:
    """The bench script on this machine: the script's exit status, None at the time limit.
    However it ends (limit, Ctrl-C, an error), its process group is killed (the kernel-log
    follower with it) and every pin it made is removed, which detaches an attached policy."""
    with open(outdir / "host.out", "ab") as sink:
        proc = subprocess.Popen(
            ["sh", str(script)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
        status: int | None = None
        try:
            with child_group(proc):  # also killed at once on SIGTERM (schedc.lifecycle)
                status = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            kill_group(proc.pid)
            proc.wait()
            for pin in Path(pin_prefix).parent.glob(Path(pin_prefix).name + "*"):
                shutil.rmtree(pin, ignore_errors=True)
    return status


def host_bench_problem(settings: Settings) -> str | None:
    """None when policies can be attached on this host for `bench --host` (the settings'
    host_kernel_problem with attach: root, sched_ext, bpftool >= 7.2, nothing attached)."""
    return host_kernel_problem(settings, attach=True)


def check_environment(
    settings: Settings, workloads: Sequence[str], where: Where = "sandbox"
) -> None:
    """Raises EnvironmentProblem, with the remedy, when the sandbox cannot boot (or, with
    where='host', this host cannot attach policies) or a workload's program is missing: what
    would otherwise fail only in the middle of the bench."""
    if where == "host":
        trouble = host_bench_problem(settings)
        if trouble:
            raise EnvironmentProblem(
                f"cannot bench on this host: {trouble}",
                "run as root on a kernel with CONFIG_SCHED_CLASS_EXT=y and no scheduler "
                "attached, or leave out --host to bench in the sandbox VM",
            )
    else:
        problems = sandbox_problems(settings)
        if problems:
            raise EnvironmentProblem(
                f"the sched_ext sandbox cannot be booted: {'; '.join(problems)}", REMEDY
            )
    trouble = workload_problems(workloads)
    if trouble:
        raise EnvironmentProblem(
            "; ".join(trouble),
            f"install the packages named, or pick another workload ({', '.join(RECIPES)})",
        )


def bench_objects(
    policies: Sequence[BenchPolicy],
    workloads: Sequence[str],
    settings: Settings,
    *,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    params: WorkloadParams | None = None,
    progress: Callable[[str], None] | None = None,
    where: Where = "sandbox",
) -> list[BenchResult]:
    """Benchmarks compiled policies on the workloads in ONE boot of the sandbox: a result per
    (workload, policy), workloads outer. Raises EnvironmentProblem when the sandbox or a
    workload's tool is missing, or when the guest wrote nothing at all.

    where='host' runs the same script on this machine's sched_ext kernel instead, attaching
    each policy to it for its runs: only when a person asks for it (`bench --host`)."""
    say = progress or (lambda _m: None)
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be at least 1 and warmup not negative")
    if not policies or not workloads:
        raise ValueError("bench needs at least one policy and one workload")
    check_environment(settings, workloads, where)
    cpus = settings.vm_cpus if where == "sandbox" else (os.cpu_count() or 1)
    params = params or WorkloadParams(cpus=cpus)
    pin_prefix = "/sys/fs/bpf/schedc-bench-"
    if where == "host":  # this process's own pins, never another bench's
        pin_prefix += f"{os.getpid()}-"
    recipes = {name: RECIPES[name] for name in workloads}
    limits = {name: time_limit(r, params) for name, r in recipes.items()}
    plan = plan_measurements(list(recipes), len(policies), runs, warmup)
    host = _host_facts(settings)
    outdir = guest_outdir(settings, "schedc-bench-")
    try:
        objects = []
        for i, policy in enumerate(policies):
            # A copy the guest surely sees, keeping its name (libbpf names maps after it).
            copy = outdir / "objects" / str(i) / policy.object_path.name
            copy.parent.mkdir(parents=True)
            # With this kernel's scx enum values, as verify loads it (the host's for --host).
            btf = HOST_BTF if where == "host" else None
            fill = object_for_kernel(policy.object_path, copy, settings, btf)
            if fill is not None:
                say(f"{policy.object_path.name}: {fill.describe()}")
            objects.append(copy)
        scripts = {}
        for name, recipe in recipes.items():
            folder = outdir / "workloads" / name
            folder.mkdir(parents=True)
            for rel, text in (recipe.files(params) if recipe.files else {}).items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_text(text)
            scripts[name] = folder / "run.sh"
            scripts[name].write_text(f"#!/bin/sh\n# {recipe.summary}\n{recipe.script(params)}")
        script = outdir / "bench.sh"
        script.write_text(
            guest_script(
                outdir,
                find_bpftool(settings),
                plan,
                objects,
                scripts,
                limits,
                pin_prefix,
                None if where == "host" else kernel_config(settings),
            )
        )
        timeout_s = BOOT_ALLOWANCE_S + sum(
            limits[m.workload] + (ATTACH_ALLOWANCE_S if m.policy is not None else 0) for m in plan
        )

        def describe(m: Measurement) -> str:
            o = read_outcome(outdir, m, recipes[m.workload], limits[m.workload], True)
            unit = recipes[m.workload].unit
            shown = (
                f"{o.value:.4g} {unit}" if o.ok and o.value is not None else f"FAILED: {o.error}"
            )
            return f"{_label(m, runs, policies)}: {shown}"

        what = (
            f"{len(plan)} runs: {', '.join(recipes)} x {BASELINE} + "
            f"{', '.join(p.name for p in policies)} …"
        )
        if where == "host":
            say(
                f"running on this host's kernel ({os.uname().release}), attaching each policy "
                f"for its runs; {what}"
            )
        else:
            say(f"{where_it_runs(settings)} for {what}")
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch, args=(outdir, plan, describe, say, stop), daemon=True
        )
        watcher.start()
        started = time.monotonic()
        try:
            if where == "host":
                status = run_on_host(script, outdir, timeout_s - BOOT_ALLOWANCE_S, pin_prefix)
            else:
                status = boot_guest(settings, outdir, script, timeout_s, say)
        finally:
            stop.set()
            watcher.join(timeout=5)
        seconds = time.monotonic() - started
        if where == "host":
            say(
                f"host runs {'finished' if status is not None else 'stopped'} after {seconds:.1f} s"
            )
        else:
            say(
                f"sandbox {'powered off' if status is not None else 'stopped'} after {seconds:.1f} s"
            )
        if not (outdir / "env.kernel").exists():
            how = "hit the time limit" if status is None else f"exited with status {status}"
            log = "host.out" if where == "host" else "vng.out"
            raise EnvironmentProblem(
                f"the bench script wrote no results ({how} after {seconds:.1f} s); "
                f"the end of its output:\n{output_tail(outdir / log)}",
                f"check that {settings.kernel} boots with virtme-ng; {REMEDY}"
                if where == "sandbox"
                else "check that sh, timeout and the workload tools run on this host",
            )
        finished = status is not None
        results = []
        for name, recipe in recipes.items():
            env = _environment(outdir, settings, recipe, params, runs, warmup, host, where)
            measured = [m for m in plan if m.workload == name and not m.warmup]
            baseline = [
                read_outcome(outdir, m, recipe, limits[name], finished)
                for m in measured
                if m.policy is None
            ]
            for p, policy in enumerate(policies):
                mine = [m for m in measured if m.policy == p]
                ops = next(
                    (
                        _read(outdir, f"{m.index}.ops").strip()
                        for m in mine
                        if _read(outdir, f"{m.index}.ops").strip()
                    ),
                    None,
                )
                results.append(
                    BenchResult(
                        workload=recipe,
                        policy=policy,
                        baseline_runs=baseline,
                        policy_runs=[
                            read_outcome(outdir, m, recipe, limits[name], finished) for m in mine
                        ],
                        environment=env,
                        ops=ops,
                    )
                )
        return results
    finally:
        remove_guest_files(settings, outdir, say)


@dataclass
class CompiledPolicies:
    policies: list[BenchPolicy]
    diagnostics: list[Diagnostic]
    failed: list[str]  # the policies that did not compile

    @property
    def ok(self) -> bool:
        return not self.failed


def compile_for_bench(
    paths: Sequence[Path],
    settings: Settings,
    build: Path,
    *,
    include_dirs: Sequence[Path] = (),
    progress: Callable[[str], None] | None = None,
) -> CompiledPolicies:
    """Builds each .sched / .bpf.c policy into `build` (a .bpf.o is taken as it is)."""
    options = pipeline.Options(
        settings=settings,
        toolchain=functools.cache(lambda: load_toolchain(settings)),
        include_dirs=tuple(include_dirs),
        build=build,
        progress=progress,
    )
    out = CompiledPolicies([], [], [])
    for path, result in zip(paths, pipeline.run(pipeline.BUILD, paths, options), strict=True):
        out.diagnostics += result.diagnostics
        if result.ok and result.object_path is not None:
            names = counters.names_of_policy(result.policy) or counters.names_of_c(result.c_text)
            out.policies.append(
                BenchPolicy(
                    path.name.split(".")[0],
                    str(path),
                    result.object_path,
                    names,
                    tuple(result.artifact.params_set.items()),
                )
            )
        else:
            out.failed.append(str(path))
    return out


# --- human output ----------------------------------------------------------------------------


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.0f}"


def render_human(results: Sequence[BenchResult]) -> str:
    lines: list[str] = []
    for r in results:
        env = r.environment
        w = r.workload
        lines.append(
            f"{w.name}: {w.metric} in {w.unit}, {w.direction} is better — {r.policy.name} vs "
            f"{BASELINE}"
        )
        lines.append(
            f"  kernel {env.get('kernel')}, {env.get('vcpus')} vCPUs, {env.get('accelerator')}"
            + (" (emulated timings)" if env.get("emulated") else "")
        )
        lines.append(f"  {'run':>5}  {BASELINE:>12}  {r.policy.name:>12}")
        for b, p in zip(r.baseline_runs, r.policy_runs, strict=False):
            pv = _num(p.value) if p.ok else "FAILED"
            bv = _num(b.value) if b.ok else "FAILED"
            lines.append(f"  {b.run:>5}  {bv:>12}  {pv:>12}")
        for label, values in ((BASELINE, r.baseline_values), (r.policy.name, r.policy_values)):
            if values:
                s = spread(values)
                lines.append(
                    f"  {label}: median {_num(median(values))} {w.unit}, "
                    f"min {_num(s.minimum)}, max {_num(s.maximum)}, IQR {_num(s.iqr)}"
                )
        for o in r.policy_runs + r.baseline_runs:
            if not o.ok:
                lines.append(f"  run {o.run} failed: {o.error}")
        lines.append(f"  {r.comparison.statement}")
        lines.append("")
    if results and results[0].environment.get("emulated"):
        lines.append(f"note: {TCG_NOTE}.")
    return "\n".join(lines).rstrip() + "\n"
