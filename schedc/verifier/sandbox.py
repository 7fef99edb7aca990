"""Runs the kernel BPF verifier on sched_ext objects inside a throwaway QEMU guest.

The build hosts run kernels without sched_ext, so the verifier has to run in a guest that boots
a sched_ext kernel (settings.kernel) through virtme-ng. Booting costs seconds under TCG, so all
objects are verified in one boot: a guest script runs `bpftool -d prog loadall` per object and
writes every result into a shared folder that the host reads after the guest powers off.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from schedc.diagnostics import Diagnostic, Severity
from schedc.lifecycle import child_group, kill_group
from schedc.settings import (  # noqa: F401  (bpftool_problem: part of the sandbox API)
    MIN_BPFTOOL,
    EnvironmentProblem,
    Settings,
    bpftool_problem,
    cache_root,
    find_bpftool,
)
from schedc.verifier import warm_client
from schedc.verifier.btf import kernel_facts
from schedc.verifier.scx_enums import ElfError, EnumFill, enum_slots, fill_enums
from schedc.workloads import DEFAULT_WORKLOAD, RUN_LOADS, run_load_command, run_load_problem

# Older bpftool/libbpf (Debian's 7.1 / 1.1) skip `.struct_ops.link` maps and sleepable programs.
REMEDY = (
    "set SCHEDC_KERNEL to a bzImage built with CONFIG_SCHED_CLASS_EXT=y, SCHEDC_BPFTOOL to "
    "bpftool >= 7.2, install qemu-system-x86 (apt-get install qemu-system-x86) and "
    "`pip install virtme-ng`"
)


def find_vng() -> str | None:
    """virtme-ng's `vng`: on PATH, or beside the running Python (a virtualenv not activated)."""
    found = shutil.which("vng")
    if found:
        return found
    beside = Path(sys.executable).parent / "vng"
    return str(beside) if os.access(beside, os.X_OK) else None


def vng_environment(vng: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for vng: PATH starts with vng's folder and the running Python's.

    vng starts `virtme-run` (and virtme-ng's other helpers) through PATH; a virtualenv that is
    not activated is not on PATH, and the guest then never starts (`virtme-run: not found`).
    """
    env = dict(os.environ if base is None else base)
    first = [str(Path(vng).parent), str(Path(sys.executable).parent)]
    rest = [d for d in env.get("PATH", os.defpath).split(os.pathsep) if d]
    env["PATH"] = os.pathsep.join(dict.fromkeys([*first, *rest]))
    return env


@dataclass(frozen=True)
class ProgramReport:
    name: str
    insns_processed: int | None
    states: int | None
    verification_time_us: int | None
    peak_states: int | None = None  # the most verifier states held at once


@dataclass(frozen=True)
class ProcessExit:
    """A workload process that died during a run test: by a crash signal it did not handle
    (SIGSEGV, SIGABRT, ...) or killed by the kernel (the OOM killer's SIGKILL)."""

    pid: int
    comm: str
    signal: str  # "SIGSEGV"
    how: str  # "crashed" | "killed by the kernel"

    def describe(self) -> str:
        return f"{self.comm} (pid {self.pid}) {self.how} by {self.signal}"

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "comm": self.comm, "signal": self.signal, "how": self.how}


@dataclass(frozen=True)
class RunReport:
    """What happened when the scheduler was attached in the guest and ran under load."""

    seconds: float
    workload: str
    attached: bool
    attach_error: str | None
    enabled_throughout: bool
    samples: int  # how often /sys/kernel/sched_ext/state was read while the workload ran
    ops: str | None  # /sys/kernel/sched_ext/root/ops right after attaching
    exit_reason: str | None  # from the kernel log: "runnable task stall", "runtime error", ...
    exit_message: str | None
    kernel_log: str
    # Workload processes that crashed or were killed by the kernel while it ran (from the
    # guest's signal trace); None when that was not traced (a guest without tracefs).
    crashed: list[ProcessExit] | None = None
    # Guest seconds of each phase of the run test (RUN_PHASES: attach, run, detach) from the
    # guest's uptime; None when the guest wrote no stamps (a run that never started).
    phases: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.attached and self.enabled_throughout and not self.crashed

    def to_json(self) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "workload": self.workload,
            "attached": self.attached,
            "attach_error": self.attach_error,
            "enabled_throughout": self.enabled_throughout,
            "samples": self.samples,
            "ops": self.ops,
            "exit_reason": self.exit_reason,
            "exit_message": self.exit_message,
            "crashed": None if self.crashed is None else [c.to_json() for c in self.crashed],
            "phases": self.phases,
        }


@dataclass(frozen=True)
class LoadReport:
    object: str
    ok: bool
    log: str
    programs: list[ProgramReport]
    error: str | None
    run: RunReport | None = None
    verified: bool = True  # False: the guest never got to this object
    kernel: str | None = None  # the kernel's release (settings.kernel_name) in a kernel matrix
    # The scx enum values written into this kernel's copy of the object (None: it has none).
    scx_enums: EnumFill | None = None
    # Where a failed load stopped: "open" or "prepare" (libbpf failed before the kernel's
    # verifier saw a program), "verifier", or None (loaded, or not known).
    stage: str | None = None


TRACEFS = "/sys/kernel/tracing"
MAX_LOG_BYTES = 8_000_000  # of a failing object's verbose verifier log, its end kept
_DISABLED = re.compile(r'sched_ext: BPF scheduler "(?P<name>[^"]*)" disabled \((?P<reason>[^)]*)\)')


def kernel_config(settings: Settings) -> str | None:
    """The kernel's config for `__kconfig` externs (settings.kconfig), when set and present."""
    if settings.kconfig and Path(settings.kconfig).is_file():
        return str(Path(settings.kconfig).absolute())
    return None


def libbpf_library(settings: Settings) -> str | None:
    """The libbpf library for the quiet loader, when configured and present."""
    if settings.libbpf and Path(settings.libbpf).is_file():
        return settings.libbpf
    return None


# Signals whose default action is to dump core: a process that dies of one crashed.
CRASH_SIGNALS = frozenset(
    "SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGSEGV SIGXCPU SIGXFSZ SIGSYS".split()
)
SI_KERNEL = 0x80  # si_code of a signal the kernel itself sends (the OOM killer's SIGKILL)
# ftrace's text: "  comm-pid  [cpu] flags  stamp: event: fields" (the flags column optional).
_TRACE_LINE = re.compile(
    r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+(?:\S+\s+)?[\d.]+: "
    r"(?P<event>signal_deliver|signal_generate): (?P<fields>.*)$"
)
_FIELD = re.compile(r"(\w+)=(\S*)")
_TARGET = re.compile(r"\bcomm=(?P<comm>.*?) pid=(?P<pid>\d+)")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def parse_signal_trace(text: str) -> list[ProcessExit]:
    """The workload processes that died of a signal, from the guest's trace of
    signal:signal_deliver (filtered to default actions) and signal:signal_generate.

    A crash signal delivered with its default action kills the receiving task (the line's
    task); a SIGKILL the kernel generated (si_code SI_KERNEL: the OOM killer) kills its
    target. Signals the workload handles, and the SIGTERM/SIGKILL that a workload or the run
    test sends to its own processes at the end, are not failures."""
    out: dict[int, ProcessExit] = {}
    for line in text.splitlines():
        m = _TRACE_LINE.match(line)
        if m is None:
            continue
        fields = dict(_FIELD.findall(m.group("fields")))
        try:
            number, code = int(fields["sig"]), int(fields.get("code", "0"))
        except (KeyError, ValueError):
            continue
        name = _signal_name(number)
        if m.group("event") == "signal_deliver":
            if fields.get("sa_handler", "0") in ("0", "0x0") and name in CRASH_SIGNALS:
                pid = int(m.group("pid"))
                out.setdefault(pid, ProcessExit(pid, m.group("comm").strip(), name, "crashed"))
        elif name == "SIGKILL" and code == SI_KERNEL:
            target = _TARGET.search(m.group("fields"))
            if target:
                pid = int(target.group("pid"))
                exit_ = ProcessExit(pid, target.group("comm"), name, "killed by the kernel")
                out.setdefault(pid, exit_)
    return list(out.values())


def crash_diagnostic(run: RunReport, policy: str) -> Diagnostic | None:
    """V005 when a workload process crashed or was killed by the kernel during the run test."""
    if not run.crashed:
        return None
    shown = "; ".join(c.describe() for c in run.crashed[:5])
    more = f"; and {len(run.crashed) - 5} more" if len(run.crashed) > 5 else ""
    return Diagnostic(
        Severity.ERROR,
        "V005",
        f"a workload process died during the run test under '{run.workload}': {shown}{more}",
        policy,
        hint="the scheduler stayed enabled, but the workload did not survive it; a crash of "
        "the workload itself (not of the scheduler) also shows here, so run it once without "
        "the policy to tell them apart",
    )


def parse_run(outdir: Path, n: int, seconds: float, workload: str) -> RunReport:
    def read(name: str) -> str:
        path = outdir / f"{n}.{name}"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    attach_rc = read("attach.rc").strip()
    attached = attach_rc == "0"
    attach_error = None
    if not attached:
        log = read("attach.log")
        attach_error = (
            _loader_message(log) or f"bpftool struct_ops register exited {attach_rc or '?'}"
        )
    states = [s.strip() for s in read("states").splitlines() if s.strip()]
    kernel_log = read("dmesg")
    reason = message = None
    for match in _DISABLED.finditer(kernel_log):
        reason = match.group("reason")
        prefix = f"sched_ext: {match.group('name')}: "
        after = kernel_log[match.end() :].splitlines()
        message = next((ln.split(prefix, 1)[1].strip() for ln in after if prefix in ln), None)
        break
    return RunReport(
        seconds=seconds,
        workload=workload,
        attached=attached,
        attach_error=attach_error,
        enabled_throughout=attached and bool(states) and all(s == "enabled" for s in states),
        samples=len(states),
        ops=read("ops").strip() or None,
        exit_reason=reason,
        exit_message=message,
        kernel_log=kernel_log,
        crashed=parse_signal_trace(read("signals")) if (outdir / f"{n}.signals").exists() else None,
        phases=parse_phases(read("times")),
    )


# The stamps a run test writes (name, then the guest's uptime): before `struct_ops register`,
# once it returned, once the workload was stopped, once the scheduler was gone.
RUN_STAMPS = ("start", "attached", "ran", "detached")
RUN_PHASES = {"attach": ("start", "attached"), "run": ("attached", "ran"),
              "detach": ("ran", "detached")}


def parse_phases(text: str) -> dict[str, float] | None:
    """The seconds of each run-test phase (RUN_PHASES) and their total, from the stamps file;
    None without a start and an end stamp. A phase whose stamps are missing is left out."""
    stamps: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        try:
            stamps.setdefault(name, float(value))
        except ValueError:
            continue
    if "start" not in stamps or not any(s in stamps for s in RUN_STAMPS[1:]):
        return None
    phases = {
        phase: round(stamps[b] - stamps[a], 2)
        for phase, (a, b) in RUN_PHASES.items()
        if a in stamps and b in stamps
    }
    last = max(stamps[s] for s in RUN_STAMPS if s in stamps)
    phases["total"] = round(last - stamps["start"], 2)
    return phases


# libbpf (debug output of `bpftool -d`) wraps the kernel's log for each program it loads in
# these markers; the kernel's own stats lines close each log.
_BLOCK = re.compile(
    r"^libbpf: prog '(?P<name>[^']+)': -- BEGIN PROG LOAD LOG --\n(?P<body>.*?)-- END PROG LOAD LOG --",
    re.M | re.S,
)
_PROCESSED = re.compile(r"^processed (\d+) insns \(limit \d+\).*?\btotal_states (\d+)", re.M)
_VTIME = re.compile(r"^verification time (\d+) usec", re.M)
_PEAK = re.compile(r"^processed \d+ insns .*?\bpeak_states (\d+)", re.M)
_FAILED = re.compile(r"^libbpf: prog '([^']+)': (?:BPF program load failed|failed to load)", re.M)
# The closing stats lines; 7.x adds "stack depth N max M" and "insns processed N".
_STATS_LINE = re.compile(
    r"^(verification time \d+|stack depth [\d+]+(?: max \d+)?$|processed \d+ insns|"
    r"insns processed \d+$)"
)
# libbpf lines that are debug chatter or a generic summary rather than the cause.
_LIBBPF_NOISE = re.compile(r"failed to load(?: object|: -?\d+)|skipping optional step")
# ("not resolved": a strong extern; "no BTF-based attach target": fentry without a FUNC.)
_LIBBPF_ERROR = re.compile(
    r"fail|error|invalid|not found|not resolved|no BTF-based attach target|unsupported|can't|"
    r"cannot|unknown",
    re.I,
)


def _int(match: re.Match[str] | None, group: int = 1) -> int | None:
    return int(match.group(group)) if match else None


def _program(name: str, body: str) -> ProgramReport:
    stats = _PROCESSED.search(body)
    return ProgramReport(
        name=name,
        insns_processed=_int(stats),
        states=_int(stats, 2),
        verification_time_us=_int(_VTIME.search(body)),
        peak_states=_int(_PEAK.search(body)),
    )


def _verifier_message(body: str) -> str | None:
    """The kernel's complaint: the last line of its log that is not a closing stats line."""
    lines = [ln.strip() for ln in body.splitlines()]
    meaningful = [ln for ln in lines if ln and not _STATS_LINE.match(ln)]
    return meaningful[-1] if meaningful else None


def _loader_message(log: str) -> str | None:
    """Without a verifier log (libbpf gave up before loading), libbpf's last complaint says why."""
    outside = _BLOCK.sub("", log).splitlines()
    libbpf = [
        ln.removeprefix("libbpf: ").strip()
        for ln in outside
        if ln.startswith("libbpf: ") and _LIBBPF_ERROR.search(ln) and not _LIBBPF_NOISE.search(ln)
    ]
    if libbpf:
        return libbpf[-1]
    rest = [ln.strip() for ln in outside if ln.strip()]
    return rest[-1] if rest else None


def parse_prog_show(text: str) -> list[ProgramReport]:
    """Programs from `@@ NAME` + `bpftool -j prog show pinned` pairs: the kernel's count of
    instructions it verified (verified_insns) for each program that loaded."""
    programs = []
    for chunk in text.split("@@ ")[1:]:
        name, _, body = chunk.partition("\n")
        try:
            info = json.loads(body.strip() or "{}")
        except json.JSONDecodeError:
            info = {}
        insns = info.get("verified_insns")
        programs.append(
            ProgramReport(name.strip(), insns if isinstance(insns, int) else None, None, None)
        )
    return programs


def parse_load_log(obj: str, log: str, returncode: int, prog_show: str | None = None) -> LoadReport:
    """A LoadReport from the output of `bpftool [-d] prog loadall` and its exit status, with
    the programs from `prog show` when the quiet load passed."""
    blocks = {m.group("name"): m.group("body") for m in _BLOCK.finditer(log)}
    programs = [_program(name, body) for name, body in blocks.items()]
    if prog_show is not None and returncode == 0:
        programs = parse_prog_show(prog_show)
    error = None
    if returncode != 0:
        failed = _FAILED.search(log)
        body = blocks.get(failed.group(1)) if failed else None
        error = (_verifier_message(body) if body else None) or _loader_message(log)
        error = error or f"bpftool exited with status {returncode}"
    return LoadReport(
        object=obj,
        ok=returncode == 0,
        log=log,
        programs=programs,
        error=error,
        stage=_bpftool_stage(log, returncode, bool(blocks)),
    )


def _bpftool_stage(log: str, returncode: int, verified: bool) -> str | None:
    """Where `bpftool -d prog loadall` stopped: "verifier" when the kernel logged a program,
    "prepare" when only libbpf complained, None when it loaded (or the log does not say)."""
    if returncode == 0:
        return None
    if verified or _FAILED.search(log):
        return "verifier"
    complaints = [
        ln for ln in log.splitlines() if ln.startswith("libbpf: ") and _LIBBPF_ERROR.search(ln)
    ]
    return "prepare" if complaints else None


def sandbox_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    if not settings.kernel:
        problems.append("no sandbox kernel is configured (SCHEDC_KERNEL is unset)")
    elif not Path(settings.kernel).is_file():
        where = settings.sources.get("kernel", "settings")
        problems.append(f"the sandbox kernel '{settings.kernel}' (from {where}) does not exist")
    trouble = bpftool_problem(settings)
    if trouble:
        problems.append(trouble)
    if find_vng() is None:
        problems.append("virtme-ng's `vng` is not on PATH")
    if shutil.which("qemu-system-x86_64") is None:
        problems.append("qemu-system-x86_64 is not installed")
    if settings.accel not in ("tcg", "kvm"):
        problems.append(f"SCHEDC_ACCEL is '{settings.accel}'; it must be 'tcg' or 'kvm'")
    elif settings.accel == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        problems.append("SCHEDC_ACCEL is 'kvm' but /dev/kvm is not usable (set SCHEDC_ACCEL=tcg)")
    return problems


def sandbox_problem(settings: Settings) -> str | None:
    """None when the sandbox can be booted; else a one-paragraph reason and how to fix it."""
    problems = sandbox_problems(settings)
    if not problems:
        return None
    return f"The sched_ext sandbox cannot be booted: {'; '.join(problems)}. To get one, {REMEDY}."


def sampling_lines(seconds: float, sample: str, uptime: str = "/proc/uptime") -> list[str]:
    """Shell lines that run `sample` every 0.25 s for `seconds` of the guest's uptime, read
    in hundredths (/proc/uptime has two decimals: "123.45" -> 12345), so a "2 s" run lasts
    2 s: whole seconds made it anything from 1 to 2 s, too short for the watchdog to eject a
    stalling scheduler. `read` is a shell builtin, so a sample starts no process but `sleep`
    (under TCG each process start costs tens of ms, and a loop of `cat` and `sleep` made a
    10 s run take 25 s while the workload loaded the CPUs)."""
    window = max(1, math.ceil(seconds * 100))
    return [
        f"  read -r up _ < {uptime}; end=$(( ${{up%.*}}${{up#*.}} + {window} ))",
        f"  while :; do {sample};",
        f'    read -r up _ < {uptime}; [ "${{up%.*}}${{up#*.}}" -ge "$end" ] && break;',
        "    sleep 0.25; done",
    ]


def _run_lines(n: int, obj: str, out: str, tool: str, seconds: float, workload: str) -> list[str]:
    """Attach through a pinned link, sample the state while the workload runs, detach by
    removing the pin, and keep the kernel log of that window."""
    link = f"/sys/fs/bpf/schedc-run-{n}"
    state = "/sys/kernel/sched_ext/state"
    command = run_load_command(workload, seconds)
    times = f"{out}/{n}.times"

    def stamp(name: str) -> str:  # builtins only: no process start in the measured time
        return f'  read -r up _ < /proc/uptime; echo "{name} $up" >> {times}'

    return [
        f'if [ "$(cat {out}/{n}.rc.tmp)" = 0 ]; then',
        f"  before=$(dmesg | wc -l); mkdir -p {link}",
        stamp("start"),
        f"  {tool} struct_ops register {obj} {link} > {out}/{n}.attach.log 2>&1",
        f"  echo $? > {out}/{n}.attach.rc",
        stamp("attached"),
        f"  cat /sys/kernel/sched_ext/root/ops > {out}/{n}.ops 2>/dev/null",
        # The workload's deaths by signal, traced while it runs (see parse_signal_trace); the
        # trace stops before the run test's own kill at the end.
        f"  if [ -w {TRACEFS}/trace ]; then echo 0 > {TRACEFS}/tracing_on; echo > {TRACEFS}/trace;",
        f"    echo 'sa_handler == 0' > {TRACEFS}/events/signal/signal_deliver/filter;",
        f"    echo 'sig == 9 && code == {SI_KERNEL}' > {TRACEFS}/events/signal/signal_generate/filter;",
        f"    echo 'signal:signal_deliver signal:signal_generate' > {TRACEFS}/set_event;",
        f"    echo 1 > {TRACEFS}/tracing_on; fi",
        f"  ( {command} ) & wl=$!",
        *sampling_lines(seconds, f"read -r st < {state}; echo $st >> {out}/{n}.states"),
        f"  if [ -w {TRACEFS}/trace ]; then echo 0 > {TRACEFS}/tracing_on;",
        f"    cat {TRACEFS}/trace > {out}/{n}.signals; fi",
        "  kill $wl 2>/dev/null; wait $wl 2>/dev/null",
        stamp("ran"),
        f"  rm -rf {link}",
        f'  j=0; while read -r st < {state} && [ "$st" != disabled ] && [ $j -lt 40 ]; do',
        "    sleep 0.25; j=$((j+1)); done",
        stamp("detached"),
        f"  dmesg | tail -n +$((before + 1)) > {out}/{n}.dmesg",
        "fi",
    ]


def _loader_lines(
    out: str, libbpf: str, copies: list[Path], kconfig: str | None = None
) -> list[str]:
    """All objects through schedc's libbpf loader (guest_loader.py) in one Python process: the
    kernel logs only its statistics, and the trace only for a rejected program."""
    package_root = Path(__file__).resolve().parent.parent.parent
    args = ["--libbpf", libbpf, *(["--kconfig", kconfig] if kconfig else [])]
    args += ["--out", f"{out}/load", *(str(c) for c in copies)]
    # In the warm sandbox's guest (SCHEDC_AGENT set by its agent, schedc.verifier.warm_agent),
    # the agent runs the loader, which it has imported already: no Python start per job.
    request = " ".join(shlex.quote(a) for a in args)
    return [
        f"mkdir -p {out}/load",
        'if [ -n "$SCHEDC_AGENT" ]; then',
        f"  printf '%s\\n' {request} > {out}/loader.request.tmp",
        f"  mv {out}/loader.request.tmp {out}/loader.request",
        # Each `sleep` is a process start, costly under TCG, where the guest's vCPUs share one
        # host thread with the loader: a few a second, not twenty.
        f"  while [ ! -e {out}/loader.exit ]; do sleep 0.2; done",
        "else",
        f"  PYTHONPATH={shlex.quote(str(package_root))} {shlex.quote(sys.executable)} -m "
        f"schedc.verifier.guest_loader {request} > {out}/loader.log 2>&1",
        "fi",
    ]


def kconfig_lines(kconfig: str | None) -> list[str]:
    """Guest script lines that make `kconfig` the running kernel's /boot/config-$(uname -r),
    where libbpf looks for it when it loads an object with `__kconfig` externs. bpftool (its
    `prog loadall` and `struct_ops register`) has no option to name the file; the guest's /boot
    is the host's, read-only, so a tmpfs goes over it, once per guest (a warm guest keeps it
    for its later jobs). For guest scripts only: never run on a host."""
    if not kconfig:
        return []
    quoted = shlex.quote(kconfig)
    return [
        f'if [ -r {quoted} ] && [ ! -e "/boot/config-$(uname -r)" ] &&',
        "   mount -t tmpfs -o size=16m schedc-kconfig /boot; then",
        f'  cp {quoted} "/boot/config-$(uname -r)"',
        "fi",
    ]


def _guest_script(
    outdir: Path,
    bpftool: str,
    copies: list[Path],
    run: tuple[float, str] | None = None,
    libbpf: str | None = None,
    run_only: Collection[int] | None = None,
    kconfig: str | None = None,
) -> str:
    """The guest's script: load every copy, and with `run`, attach and run each one that
    loaded (only those whose index is in `run_only`, when it is given). `kconfig`, the
    kernel's config, goes to the libbpf loader and into the guest's /boot for bpftool."""
    out, tool = shlex.quote(str(outdir)), shlex.quote(bpftool)
    lines = ["#!/bin/sh", "mount -t bpf bpf /sys/fs/bpf 2>/dev/null", *kconfig_lines(kconfig)]
    if run is not None:
        lines.append(
            f"grep -q ' {TRACEFS} ' /proc/mounts || mount -t tracefs nodev {TRACEFS} 2>/dev/null"
        )
        # The kernel's log as it happens, for the run tests and for a guest that dies.
        lines.append(f"dmesg -w > {out}/kernel.log 2>&1 &")
    if libbpf:
        lines += _loader_lines(out, libbpf, copies, kconfig)
    every_run = run
    for n, obj in enumerate(copies):
        pin = f"/sys/fs/bpf/schedc-{n}"
        quoted = shlex.quote(str(obj))
        run = every_run if run_only is None or n in run_only else None
        # The pins go at once so that many objects do not fill the guest's memory. The .rc is
        # renamed into place last, after any run test, so that the host, polling for progress,
        # never reads half of one object's results.
        if libbpf:
            lines.append(
                f"cat {out}/load/{n}.rc > {out}/{n}.rc.tmp 2>/dev/null || echo 1 > {out}/{n}.rc.tmp"
            )
            if run is not None:
                lines += _run_lines(n, quoted, out, tool, run[0], run[1])
            lines.append(f"mv {out}/{n}.rc.tmp {out}/{n}.rc")
            continue
        # Without the libbpf loader: bpftool, quiet first. `-d` asks the kernel for its most
        # verbose log, hundreds of MB for a complex program that passes, so only a failing
        # object is loaded again with `-d` for the trace (its tail: the error and the source
        # lines before it). Passing programs report no counts this way.
        lines += [
            f"mkdir -p {pin}",
            f"{tool} prog loadall {quoted} {pin} > {out}/{n}.log 2>&1",
            f"echo $? > {out}/{n}.rc.tmp",
            f'if [ "$(cat {out}/{n}.rc.tmp)" = 0 ]; then',
            f'  for f in {pin}/*; do echo "@@ ${{f##*/}}"; {tool} -j prog show pinned "$f"; echo;'
            f" done > {out}/{n}.progs 2>&1",
            "else",
            f"  rm -rf {pin}; mkdir -p {pin}",
            f"  {tool} -d prog loadall {quoted} {pin} 2>&1 | tail -c {MAX_LOG_BYTES} > {out}/{n}.log",
            "fi",
            f"rm -rf {pin}",
        ]
        if run is not None:
            lines += _run_lines(n, quoted, out, tool, run[0], run[1])
        lines.append(f"mv {out}/{n}.rc.tmp {out}/{n}.rc")
    return "\n".join([*lines, f"touch {out}/done", ""])


def output_tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(ln.strip() for ln in text.strip().splitlines()[-lines:]) or "(no output)"


def announce(outdir: Path, names: list[str], shown: int, say: Callable[[str], None]) -> int:
    """Reports the objects that the guest has finished since the last call, as it writes them."""

    def rc_file(n: int) -> Path:
        loaded = outdir / "load" / f"{n}.rc"
        return loaded if loaded.exists() else outdir / f"{n}.rc"

    while shown < len(names) and rc_file(shown).exists():
        verdict = "passed" if rc_file(shown).read_text().strip() == "0" else "rejected"
        say(f"verified {shown + 1}/{len(names)} {names[shown]}: {verdict}")
        shown += 1
    return shown


def start_vng(cmd: list[str], outdir: Path) -> subprocess.Popen[bytes]:
    """Starts vng (`cmd`, from vng_command) with its output appended to outdir/vng.out, in a
    session of its own: the caller stops vng and the QEMU it started together (child_group)."""
    # Append mode: without it the file came back as NUL padding plus the last line (the output
    # is truncated and rewritten while vng and QEMU share it); appending keeps a readable tail.
    with open(outdir / "vng.out", "ab") as sink:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
            env=vng_environment(cmd[0]),
        )


def run_vng(
    cmd: list[str], outdir: Path, names: list[str], timeout_s: float, say: Callable[[str], None]
) -> int | None:
    """Runs vng until the guest powers off; vng's exit status, None if it hit the time limit."""
    deadline, shown = time.monotonic() + timeout_s, 0
    # A session of its own, so that a timeout, an exception (KeyboardInterrupt, or Stopped:
    # SIGTERM, see schedc.lifecycle) or our exit stops vng and the QEMU it started together.
    proc = start_vng(cmd, outdir)
    with child_group(proc):
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                shown = announce(outdir, names, shown, say)
                time.sleep(0.2)
        finally:
            status = proc.poll()
            if status is None:  # the time limit, or an exception
                kill_group(proc.pid)
                proc.wait()
    announce(outdir, names, shown, say)
    return status


def vng_command(settings: Settings, outdir: Path, script: Path) -> list[str]:
    cmd = [str(find_vng()), "-r", str(settings.kernel), "--user", "root"]
    cmd += ["--cpus", str(settings.vm_cpus), "--memory", settings.vm_memory, "--rwdir", str(outdir)]
    if settings.accel == "tcg":
        # Single-threaded TCG: with one host thread per vCPU, the int3-based code patching
        # that sched_ext's static keys do on enable/disable races in QEMU and the guest
        # kernel oopses in __schedule now and then (seen here in ~1 of 6 attach/detach cycles).
        cmd += ["--disable-kvm", "--qemu-opts=-accel tcg,thread=single"]
    # The guest runs only our own scripts, and QEMU emulating it is the isolation from the host:
    # the guest kernel's speculation mitigations (retpolines, IBPB, RSB filling) protect
    # nothing there and, emulated, cost about a fifth of a boot (7.2 s -> 5.8 s to the script)
    # and of a Python start in it. Baseline and policy runs share the boot, so ratios are fair.
    cmd += ["--append", "mitigations=off"]
    return [*cmd, "--", f"sh {shlex.quote(str(script))}"]


def remove_guest_files(settings: Settings, outdir: Path, progress: Callable[[str], None]) -> None:
    """The guest's shared folder after a boot: removed, or kept for a look when the settings
    say so (SCHEDC_KEEP_SANDBOX)."""
    if settings.keep_sandbox:
        progress(f"kept the guest's files in {outdir} (SCHEDC_KEEP_SANDBOX)")
    else:
        shutil.rmtree(outdir, ignore_errors=True)


def where_it_runs(settings: Settings) -> str:
    """For progress lines: the warm guest, or a fresh boot of the kernel."""
    if warm_client.client_for(settings) is not None:
        return f"in the warm sandbox guest ({settings.vm_cpus} CPUs)"
    return f"booting sandbox kernel ({settings.accel}, {settings.vm_cpus} CPUs)"


def guest_outdir(settings: Settings, prefix: str) -> Path:
    """A fresh folder for one guest job's files: in the warm sandbox's shared folder when this
    process (or its parent) keeps a warm guest of the settings' kernel (schedc.verifier.warm),
    else a temporary folder that a boot of its own will share."""
    client = warm_client.client_for(settings)
    if client is not None:
        return client.new_outdir(prefix)
    return Path(tempfile.mkdtemp(prefix=prefix))


def boot_guest(
    settings: Settings,
    outdir: Path,
    script: Path,
    timeout_s: float,
    progress: Callable[[str], None],
    names: Sequence[str] = (),
) -> int | None:
    """Runs `script` (a file in `outdir`, from guest_outdir) as root in a sandbox guest: the warm
    guest when `outdir` is one of its job folders, else a boot of the sandbox kernel with
    `outdir` as the guest's shared folder, until the guest powers off. 0 or vng's exit status
    when it finished, None when the time limit stopped it. Callers read results from `outdir`,
    never from vng's output."""
    client = warm_client.client_for(settings)
    if client is not None and client.owns(outdir):
        return client.run(outdir, script, timeout_s, progress, names, announce)
    return run_vng(vng_command(settings, outdir, script), outdir, list(names), timeout_s, progress)


def parse_loader_json(obj: str, data: dict[str, object]) -> LoadReport:
    """A LoadReport from one N.json of the guest loader."""
    programs = []
    for prog in data.get("programs") or []:  # type: ignore[union-attr]
        if isinstance(prog, dict):
            programs.append(
                ProgramReport(
                    str(prog.get("name")),
                    prog.get("insns_processed"),
                    prog.get("states"),
                    prog.get("verification_time_us"),
                    prog.get("peak_states"),
                )
            )
    ok = bool(data.get("ok"))
    error = data.get("error")
    if not ok and not error:
        error = "the loader gave no reason"
    stage = data.get("stage")
    return LoadReport(
        str(obj),
        ok,
        str(data.get("log") or ""),
        programs,
        str(error) if error else None,
        stage=str(stage) if stage and not ok else None,
    )


def _load_report(obj: Path, n: int, outdir: Path) -> LoadReport:
    loaded = outdir / "load" / f"{n}.json"
    if loaded.exists():
        return parse_loader_json(str(obj), json.loads(loaded.read_text(errors="replace")))
    log_file = outdir / f"{n}.log"
    if not log_file.exists():
        loader = outdir / "loader.log"
        why = output_tail(loader, 5) if loader.exists() else "no output"
        return LoadReport(str(obj), False, "", [], f"the loader wrote no result: {why}")
    log = log_file.read_text(encoding="utf-8", errors="replace")
    progs = outdir / f"{n}.progs"
    shown = progs.read_text(encoding="utf-8", errors="replace") if progs.exists() else None
    rc = (outdir / f"{n}.rc.tmp") if not (outdir / f"{n}.rc").exists() else (outdir / f"{n}.rc")
    return parse_load_log(str(obj), log, int(rc.read_text().strip() or 1), shown)


def _report(
    obj: Path, n: int, outdir: Path, status: int | None, run: tuple[float, str] | None
) -> LoadReport:
    rc_file = outdir / f"{n}.rc"
    loaded = outdir / f"{n}.rc.tmp"
    if (
        not rc_file.exists()
        and run is not None
        and loaded.exists()
        and loaded.read_text().strip() == "0"
    ):
        # Loaded, then the guest died during its run test: that is this scheduler's verdict.
        died = parse_run(outdir, n, run[0], run[1])
        kernel = outdir / "kernel.log"
        tail = kernel.read_text(errors="replace").splitlines()[-5:] if kernel.exists() else []
        died = replace(
            died,
            enabled_throughout=False,
            exit_reason=died.exit_reason or "the guest died while it ran",
            exit_message=died.exit_message or " / ".join(t.strip() for t in tail) or None,
        )
        return replace(_load_report(obj, n, outdir), run=died)
    if not rc_file.exists():
        # The guest stopped part-way (time limit or guest crash): say so rather than guess.
        why = "the time limit ran out" if status is None else "the guest stopped"
        return LoadReport(
            str(obj), False, "", [], f"not verified: {why} before this object", verified=False
        )
    report = _load_report(obj, n, outdir)
    if run is not None and report.ok:
        report = replace(report, run=parse_run(outdir, n, run[0], run[1]))
    return report


def object_for_kernel(
    obj: Path, copy: Path, settings: Settings, btf: Path | None = None
) -> EnumFill | None:
    """Writes `copy`, the object as one kernel loads it: an object that reads scx enum values
    from `.rodata` (`__SCX_<X>`, see verifier/scx_enums.py) gets that kernel's values, from
    `btf` (default: the settings' BTF, a kit's vmlinux.btf); any other object is copied as it
    is. What was filled, or None for an object without such values."""
    data = Path(obj).read_bytes()
    try:
        slots = enum_slots(data)
    except ElfError:
        slots = []  # not an ELF object this reader knows: libbpf will say what is wrong with it
    source = btf or (Path(settings.btf) if settings.btf else None)
    if not slots:
        copy.write_bytes(data)
        return None
    if source is None or not source.is_file():
        copy.write_bytes(data)
        where = f"its BTF {source} does not exist" if source else "no BTF is set for it"
        return EnumFill(problem=f"the kernel's values could not be read: {where}")
    patched, fill = fill_enums(data, kernel_facts(source, cache_root(settings)).enums)
    copy.write_bytes(patched)
    return fill


def load_in_sandbox(
    objects: Sequence[Path],
    settings: Settings,
    *,
    progress: Callable[[str], None] | None = None,
    timeout_s: float = 900,
    run_seconds: float | None = None,
    workload: str = DEFAULT_WORKLOAD,
    run_only: Collection[int] | None = None,
) -> list[LoadReport]:
    """Verifies every object in one boot of the sandbox kernel: one LoadReport per object, in order.
    With run_seconds, each object that loads is also attached and run under the workload (only
    the objects whose index is in `run_only`, when it is given: a few runs among many loads).

    Raises EnvironmentProblem when the sandbox is unavailable or the guest writes no results.
    """
    say = progress or (lambda _message: None)
    problems = sandbox_problems(settings)
    if problems:
        raise EnvironmentProblem(
            f"the sched_ext sandbox cannot be booted: {'; '.join(problems)}", REMEDY
        )
    run = (run_seconds, workload) if run_seconds else None
    if run is not None:
        trouble = run_load_problem(workload)
        if trouble:
            raise EnvironmentProblem(trouble, f"choose one of: {', '.join(RUN_LOADS)}")
        ran = len(objects) if run_only is None else len(set(run_only))
        timeout_s += ran * (run_seconds + 15)
    if not objects:
        return []
    outdir = guest_outdir(settings, "schedc-sandbox-")
    try:
        # Copies, because the guest surely sees the rwdir (not necessarily every host mount). They
        # keep their file names: libbpf names the object's data maps after them.
        # Each copy has this kernel's scx enum values filled in (object_for_kernel).
        copies = [outdir / str(n) / Path(obj).name for n, obj in enumerate(objects)]
        fills = []
        for obj, copy in zip(objects, copies, strict=True):
            copy.parent.mkdir()
            fills.append(object_for_kernel(obj, copy, settings))
        script = outdir / "run.sh"
        script.write_text(
            _guest_script(
                outdir,
                find_bpftool(settings),
                copies,
                run,
                libbpf_library(settings),
                run_only,
                kernel_config(settings),
            )
        )
        say(f"{where_it_runs(settings)} …")
        # vng's exit status and stdout are unreliable (255 after a good run under TCG): only the
        # files that the guest wrote count.
        names = [Path(obj).name for obj in objects]
        started = time.monotonic()
        status = boot_guest(settings, outdir, script, timeout_s, say, names)
        seconds = time.monotonic() - started
        how = "hit the time limit" if status is None else f"exited with status {status}"
        if warm_client.client_for(settings) is not None:
            ended = "finished" if status is not None else "stopped"
            say(f"the warm sandbox guest {ended} the job after {seconds:.1f} s")
        else:
            say(
                f"sandbox {'powered off' if status is not None else 'stopped'} after {seconds:.1f} s"
            )
        results = [(outdir / f"{n}.rc").exists() for n in range(len(objects))]
        if not (outdir / "done").exists() and not any(results):
            raise EnvironmentProblem(
                f"the sandbox guest wrote no results (vng {how} after {seconds:.1f} s); "
                f"the end of vng's output:\n{output_tail(outdir / 'vng.out')}",
                f"check that {settings.kernel} boots with virtme-ng; {REMEDY}",
            )
        return [
            replace(
                _report(obj, n, outdir, status, run if run_only is None or n in run_only else None),
                scx_enums=fill,
            )
            for n, (obj, fill) in enumerate(zip(objects, fills, strict=True))
        ]
    finally:
        remove_guest_files(settings, outdir, say)
