"""Runs the kernel BPF verifier on sched_ext objects inside a throwaway QEMU guest.

The build hosts run kernels without sched_ext, so the verifier has to run in a guest that boots
a sched_ext kernel (settings.kernel) through virtme-ng. Booting costs seconds under TCG, so all
objects are verified in one boot: a guest script runs `bpftool -d prog loadall` per object and
writes every result into a shared folder that the host reads after the guest powers off.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from schedc.settings import EnvironmentProblem, Settings, find_bpftool

# Older bpftool/libbpf (Debian's 7.1 / 1.1) skip `.struct_ops.link` maps and sleepable programs.
MIN_BPFTOOL = (7, 2)
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


@dataclass(frozen=True)
class ProgramReport:
    name: str
    insns_processed: int | None
    states: int | None
    verification_time_us: int | None


@dataclass(frozen=True)
class LoadReport:
    object: str
    ok: bool
    log: str
    programs: list[ProgramReport]
    error: str | None


# libbpf (debug output of `bpftool -d`) wraps the kernel's log for each program it loads in
# these markers; the kernel's own stats lines close each log.
_BLOCK = re.compile(
    r"^libbpf: prog '(?P<name>[^']+)': -- BEGIN PROG LOAD LOG --\n(?P<body>.*?)-- END PROG LOAD LOG --",
    re.M | re.S,
)
_PROCESSED = re.compile(r"^processed (\d+) insns \(limit \d+\).*?\btotal_states (\d+)", re.M)
_VTIME = re.compile(r"^verification time (\d+) usec", re.M)
_FAILED = re.compile(r"^libbpf: prog '([^']+)': (?:BPF program load failed|failed to load)", re.M)
_STATS_LINE = re.compile(r"^(verification time \d+|stack depth [\d+]+$|processed \d+ insns)")
# libbpf lines that are debug chatter or a generic summary rather than the cause.
_LIBBPF_NOISE = re.compile(r"failed to load(?: object|: -?\d+)|skipping optional step")
_LIBBPF_ERROR = re.compile(r"fail|error|invalid|not found|unsupported|can't|cannot|unknown", re.I)


def _int(match: re.Match[str] | None, group: int = 1) -> int | None:
    return int(match.group(group)) if match else None


def _program(name: str, body: str) -> ProgramReport:
    stats = _PROCESSED.search(body)
    return ProgramReport(
        name=name,
        insns_processed=_int(stats),
        states=_int(stats, 2),
        verification_time_us=_int(_VTIME.search(body)),
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


def parse_load_log(obj: str, log: str, returncode: int) -> LoadReport:
    """A LoadReport from the output of `bpftool -d prog loadall` and its exit status."""
    blocks = {m.group("name"): m.group("body") for m in _BLOCK.finditer(log)}
    programs = [_program(name, body) for name, body in blocks.items()]
    error = None
    if returncode != 0:
        failed = _FAILED.search(log)
        body = blocks.get(failed.group(1)) if failed else None
        error = (_verifier_message(body) if body else None) or _loader_message(log)
        error = error or f"bpftool exited with status {returncode}"
    return LoadReport(object=obj, ok=returncode == 0, log=log, programs=programs, error=error)


def _bpftool_version(path: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [path, "version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"v(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    if not settings.kernel:
        problems.append("no sandbox kernel is configured (SCHEDC_KERNEL is unset)")
    elif not Path(settings.kernel).is_file():
        where = settings.sources.get("kernel", "settings")
        problems.append(f"the sandbox kernel '{settings.kernel}' (from {where}) does not exist")
    try:
        bpftool = find_bpftool(settings)
        version = _bpftool_version(bpftool)
        if version is None:
            problems.append(f"bpftool '{bpftool}' does not run or print its version")
        elif version < MIN_BPFTOOL:
            problems.append(
                f"bpftool '{bpftool}' is v{version[0]}.{version[1]}, too old for sched_ext objects"
            )
    except EnvironmentProblem as exc:
        problems.append(exc.message)
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
    problems = _problems(settings)
    if not problems:
        return None
    return f"The sched_ext sandbox cannot be booted: {'; '.join(problems)}. To get one, {REMEDY}."


def _guest_script(outdir: Path, bpftool: str, copies: list[Path]) -> str:
    out, tool = shlex.quote(str(outdir)), shlex.quote(bpftool)
    lines = ["#!/bin/sh", "mount -t bpf bpf /sys/fs/bpf 2>/dev/null"]
    for n, obj in enumerate(copies):
        pin = f"/sys/fs/bpf/schedc-{n}"
        # The .rc is renamed into place so that the host, polling for progress, never reads
        # half of one; the pins go at once so that many objects do not fill the guest's memory.
        lines += [
            f"mkdir -p {pin}",
            f"{tool} -d prog loadall {shlex.quote(str(obj))} {pin} > {out}/{n}.log 2>&1",
            f"echo $? > {out}/{n}.rc.tmp && mv {out}/{n}.rc.tmp {out}/{n}.rc",
            f"rm -rf {pin}",
        ]
    return "\n".join([*lines, f"touch {out}/done", ""])


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(ln.strip() for ln in text.strip().splitlines()[-lines:]) or "(no output)"


def _announce(outdir: Path, names: list[str], shown: int, say: Callable[[str], None]) -> int:
    """Reports the objects that the guest has finished since the last call, as it writes them."""
    while shown < len(names) and (outdir / f"{shown}.rc").exists():
        verdict = "passed" if (outdir / f"{shown}.rc").read_text().strip() == "0" else "rejected"
        say(f"verified {shown + 1}/{len(names)} {names[shown]}: {verdict}")
        shown += 1
    return shown


def _boot(
    cmd: list[str], outdir: Path, names: list[str], timeout_s: float, say: Callable[[str], None]
) -> int | None:
    """Runs vng until the guest powers off; vng's exit status, None if it hit the time limit."""
    deadline, shown = time.monotonic() + timeout_s, 0
    # Append mode: without it the file came back as NUL padding plus the last line (the output
    # is truncated and rewritten while vng and QEMU share it); appending keeps a readable tail.
    with open(outdir / "vng.out", "ab") as sink:
        # A session of its own, so that a timeout can stop vng and the QEMU it started together.
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True
        )
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                shown = _announce(outdir, names, shown, say)
                time.sleep(0.2)
        finally:
            status = proc.poll()
            if status is None:  # the time limit, or an exception such as KeyboardInterrupt
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    _announce(outdir, names, shown, say)
    return status


def _vng_command(settings: Settings, outdir: Path, script: Path) -> list[str]:
    cmd = [str(find_vng()), "-r", str(settings.kernel), "--user", "root"]
    cmd += ["--cpus", str(settings.vm_cpus), "--memory", settings.vm_memory, "--rwdir", str(outdir)]
    if settings.accel == "tcg":
        cmd.append("--disable-kvm")
    return [*cmd, "--", f"sh {shlex.quote(str(script))}"]


def _report(obj: Path, n: int, outdir: Path, status: int | None) -> LoadReport:
    rc_file = outdir / f"{n}.rc"
    if not rc_file.exists():
        # The guest stopped part-way (time limit or guest crash): say so rather than guess.
        why = "the time limit ran out" if status is None else "the guest stopped"
        return LoadReport(str(obj), False, "", [], f"not verified: {why} before this object")
    log = (outdir / f"{n}.log").read_text(encoding="utf-8", errors="replace")
    return parse_load_log(str(obj), log, int(rc_file.read_text().strip() or 1))


def load_in_sandbox(
    objects: Sequence[Path],
    settings: Settings,
    *,
    progress: Callable[[str], None] | None = None,
    timeout_s: float = 900,
) -> list[LoadReport]:
    """Verifies every object in one boot of the sandbox kernel: one LoadReport per object, in order.

    Raises EnvironmentProblem when the sandbox is unavailable or the guest writes no results.
    """
    say = progress or (lambda _message: None)
    problems = _problems(settings)
    if problems:
        raise EnvironmentProblem(
            f"the sched_ext sandbox cannot be booted: {'; '.join(problems)}", REMEDY
        )
    if not objects:
        return []
    outdir = Path(tempfile.mkdtemp(prefix="schedc-sandbox-"))
    try:
        # Copies, because the guest surely sees the rwdir (not necessarily every host mount). They
        # keep their file names: libbpf names the object's data maps after them.
        copies = [outdir / str(n) / Path(obj).name for n, obj in enumerate(objects)]
        for obj, copy in zip(objects, copies, strict=True):
            copy.parent.mkdir()
            shutil.copyfile(obj, copy)
        script = outdir / "run.sh"
        script.write_text(_guest_script(outdir, find_bpftool(settings), copies))
        say(f"booting sandbox kernel ({settings.accel}, {settings.vm_cpus} CPUs) …")
        # vng's exit status and stdout are unreliable (255 after a good run under TCG): only the
        # files that the guest wrote count.
        names = [Path(obj).name for obj in objects]
        cmd = _vng_command(settings, outdir, script)
        started = time.monotonic()
        status = _boot(cmd, outdir, names, timeout_s, say)
        seconds = time.monotonic() - started
        how = "hit the time limit" if status is None else f"exited with status {status}"
        say(f"sandbox {'powered off' if status is not None else 'stopped'} after {seconds:.1f} s")
        results = [(outdir / f"{n}.rc").exists() for n in range(len(objects))]
        if not (outdir / "done").exists() and not any(results):
            raise EnvironmentProblem(
                f"the sandbox guest wrote no results (vng {how} after {seconds:.1f} s); "
                f"the end of vng's output:\n{_tail(outdir / 'vng.out')}",
                f"check that {settings.kernel} boots with virtme-ng; {REMEDY}",
            )
        return [_report(obj, n, outdir, status) for n, obj in enumerate(objects)]
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
