"""`schedc verify`: compile (and check) policies, load them into a kernel that has sched_ext —
the host's, or a throwaway sandbox guest, all in one boot — and report what the verifier said
in terms of each policy's own source. Optionally attach and run them under load in the guest.

Stages: compile → check → verifier → run. A policy that fails a stage stops there and the
result says which.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schedc.compiler.pipeline import compile_policy
from schedc.compiler.toolchain import Toolchain, load_toolchain
from schedc.diagnostics import Diagnostic, Severity, has_errors
from schedc.settings import EnvironmentProblem, Settings, find_bpftool
from schedc.verifier.sandbox import (
    DEFAULT_WORKLOAD,
    LoadReport,
    ProgramReport,
    RunReport,
    crash_diagnostic,
    load_in_sandbox,
    parse_load_log,
)

HOST_SCHED_EXT = Path("/sys/kernel/sched_ext")

# Where the verifier's log says which source line an instruction came from:
# "; <source text> @ <file>:<line>" (BTF line info, with #line names for DSL policies).
_SOURCE_LINE = re.compile(r"^; (?P<text>.*) @ (?P<file>[^:@]+):(?P<line>\d+)$")
_INSN = re.compile(r"^(?P<idx>\d+): \([0-9a-f]{2}\) .*$")

# Common rejections, explained in sched_ext terms.
_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"_or_null|Possibly NULL pointer"),
        "a map lookup or kfunc can return NULL: check the pointer before using it "
        "(if (!ptr) return ...)",
    ),
    (
        re.compile(
            r"back-edge|infinite loop|loop is not bounded|BPF program is too large|"
            r"too many states|jumps is too complex"
        ),
        "the verifier must see every loop end: bound loops by a constant, or use bpf_for() / "
        "bpf_repeat(), and keep the work per callback small",
    ),
    (
        re.compile(
            r"calling kernel function .* is not allowed|kernel function .* (?:args|unsupported)|"
            r"program of this type cannot use helper|unknown func"
        ),
        "this kfunc or helper is not available to sched_ext struct_ops programs on this kernel, "
        "or not from this callback (see kernel/sched/ext.c for which callback may call what)",
    ),
    (
        re.compile(
            r"combined stack size|stack depth|invalid (?:read|write) from stack|"
            r"stack limit"
        ),
        "BPF programs have 512 bytes of stack: move large buffers into a per-CPU array map",
    ),
    (
        re.compile(r"invalid mem access 'scalar'"),
        "a plain number is used as a pointer: read kernel memory with bpf_probe_read_kernel() or "
        "use a pointer the verifier trusts (a callback argument or a kfunc result)",
    ),
    (
        re.compile(r"not found in kernel|not found in kernel or module BTFs"),
        "this kernel lacks the symbol: kfunc names changed in 6.13 (scx_bpf_dispatch → "
        "scx_bpf_dsq_insert); declare both __weak and test with bpf_ksym_exists()",
    ),
    (
        re.compile(r"R\d+ !read_ok|uninitialized"),
        "a register or stack slot is read before it is written: initialise the variable",
    ),
]


@dataclass
class VerifyResult:
    policy: str
    ok: bool = False
    stage: str = "compile"  # the last stage reached: compile | check | verifier | run
    diagnostics: list[Diagnostic] = field(default_factory=list)
    programs: list[ProgramReport] = field(default_factory=list)
    run: RunReport | None = None
    object_path: str | None = None
    source_kind: str = "dsl"  # dsl | c | object

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "ok": self.ok,
            "stage": self.stage,
            "diagnostics": [d.to_json() for d in self.diagnostics],
            "programs": [
                {
                    "name": p.name,
                    "insns_processed": p.insns_processed,
                    "states": p.states,
                    "verification_time_us": p.verification_time_us,
                }
                for p in self.programs
            ],
            "run": self.run.to_json() if self.run else None,
        }


def hint_for(message: str) -> str | None:
    for pattern, hint in _HINTS:
        if pattern.search(message):
            return hint
    return None


def _failed_program_log(log: str) -> str:
    """The verifier log of the program that failed (the last log block before the failure)."""
    marker = re.search(r"^libbpf: prog '([^']+)': BPF program load failed", log, re.M)
    if not marker or "-- BEGIN PROG LOAD LOG --" not in log:
        return log  # the guest loader's log: the rejected program's own log comes first
    name = re.escape(marker.group(1))
    block = re.search(
        rf"^libbpf: prog '{name}': -- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --",
        log,
        re.M | re.S,
    )
    return block.group(1) if block else ""


def rejection_diagnostic(report: LoadReport, policy: str) -> Diagnostic:
    """The kernel's rejection as a diagnostic at the source line of the failing instruction:
    the last `; text @ file:line` annotation before the message in the failing program's log."""
    message = report.error or "the kernel rejected the object"
    body = _failed_program_log(report.log)
    where: re.Match[str] | None = None
    insn: str | None = None
    for line in body.splitlines():
        line = line.rstrip()
        if line.strip() == message.strip():
            break
        src = _SOURCE_LINE.match(line)
        if src:
            where = src
        elif _INSN.match(line):
            insn = line
    hint = hint_for(message)
    failed = re.search(r"prog '([^']+)': BPF program load failed", report.log)
    text = f"the kernel verifier rejected {failed.group(1) if failed else 'the object'}: {message}"
    if insn:
        text += f" (at instruction {insn.split(':', 1)[0]}: {insn.split(') ', 1)[-1]})"
    if where is None:
        return Diagnostic(Severity.ERROR, "V001", text, policy, hint=hint)
    line_no = int(where.group("line"))
    file = where.group("file")
    if Path(file).name == Path(policy).name:
        file = policy  # clang records the name it was given; show the path the user gave
    return Diagnostic(Severity.ERROR, "V001", text, file, line_no, 1, line_no, 1, hint)


def run_diagnostic(run: RunReport, policy: str) -> Diagnostic | None:
    if not run.attached:
        return Diagnostic(
            Severity.ERROR,
            "V002",
            f"the scheduler loaded but did not attach: {run.attach_error}",
            policy,
            hint="the kernel checks ops flags, name and timeout_ms at attach time "
            "(bpf_scx_init_member); a failing ops.init also stops it here",
        )
    if run.enabled_throughout:
        return crash_diagnostic(run, policy)
    reason = run.exit_reason or "it was not enabled"
    msg = f"the kernel ejected the scheduler during the run test ({reason})"
    if run.exit_message:
        msg += f": {run.exit_message}"
    hint = None
    if "stall" in reason:
        hint = (
            "a runnable task waited longer than the watchdog allows: every queue a task is "
            "inserted into must be consumed in ops.dispatch"
        )
    elif "error" in reason:
        hint = (
            "a kfunc was called from a callback where sched_ext forbids it, or with an "
            "invalid DSQ or CPU; sched_ext checks this at run time, not in the verifier"
        )
    return Diagnostic(Severity.ERROR, "V003", msg, policy, hint=hint)


def host_problem() -> str | None:
    """None when this host can run the verifier on sched_ext objects itself."""
    if not HOST_SCHED_EXT.is_dir():
        return "this host's kernel has no sched_ext (/sys/kernel/sched_ext is missing)"
    if os.geteuid() != 0:
        return "loading BPF programs on the host needs root (CAP_BPF and CAP_SYS_ADMIN)"
    if not Path("/sys/fs/bpf").is_dir():
        return "/sys/fs/bpf (the BPF file system) is not mounted on this host"
    return None


def load_on_host(objects: Sequence[Path], settings: Settings) -> list[LoadReport]:
    """Runs the verifier on the host without attaching: `bpftool prog loadall`, then unpin."""
    bpftool = find_bpftool(settings)
    reports = []
    for obj in objects:
        pin = Path(tempfile.mkdtemp(prefix="schedc-verify-", dir="/sys/fs/bpf"))
        try:
            proc = subprocess.run(
                [bpftool, "-d", "prog", "loadall", str(obj), str(pin)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            reports.append(parse_load_log(str(obj), proc.stdout + proc.stderr, proc.returncode))
        finally:
            shutil.rmtree(pin, ignore_errors=True)
    return reports


def choose_mode(mode: str) -> str:
    """`auto` means the host when it can verify sched_ext objects, else the sandbox."""
    if mode != "auto":
        return mode
    return "host" if host_problem() is None else "sandbox"


def _checker() -> Callable[..., list[Diagnostic]] | None:
    """The static checks (schedc check), when that stage is installed."""
    try:
        from schedc.verifier import checks  # noqa: PLC0415 (optional stage)
    except ImportError:
        return None
    return getattr(checks, "check_c", None)


def _prepare(
    path: Path,
    settings: Settings,
    tc: Toolchain,
    build: Path,
    include_dirs: list[Path],
    index: int,
) -> VerifyResult:
    """compile and check one policy; the result's object_path is set when it may be loaded."""
    result = VerifyResult(str(path))
    if path.name.endswith(".bpf.o") or path.suffix == ".o":
        result.source_kind = "object"
        if not path.is_file():
            result.diagnostics.append(
                Diagnostic(Severity.ERROR, "E000", f"cannot read {path}", str(path))
            )
            return result
        result.stage = "verifier"
        result.object_path = str(path)
        return result
    result.source_kind = "c" if path.name.endswith(".c") else "dsl"
    out = build / str(index) / (path.name.split(".")[0] + ".bpf.o")
    # For C, compile_policy runs the security rules (K044, K060-K064) before clang.
    compiled = compile_policy(path, settings, out=out, include_dirs=include_dirs, toolchain=tc)
    result.diagnostics += compiled.diagnostics
    if not compiled.ok or compiled.c_path is None:
        if any(d.code.startswith("K") for d in compiled.diagnostics):
            result.stage = "check"  # stopped by the checks' security rules, before clang
        return result
    check = _checker()
    if check is not None:
        result.stage = "check"
        result.diagnostics += check(compiled.c_path, tc, include_dirs, line_files=[path])
        if has_errors(result.diagnostics):
            return result
    result.stage = "verifier"
    result.object_path = str(compiled.object_path)
    return result


def verify_policies(
    paths: Sequence[Path],
    settings: Settings,
    *,
    mode: str = "auto",
    run_seconds: float | None = None,
    workload: str = DEFAULT_WORKLOAD,
    include_dirs: list[Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[VerifyResult]:
    """Every policy through the stages; all loadable objects in one boot of the sandbox."""
    say = progress or (lambda _m: None)
    mode = choose_mode(mode)
    if mode == "host":
        trouble = host_problem()
        if trouble:
            raise EnvironmentProblem(
                f"cannot verify on the host: {trouble}",
                "use --sandbox (SCHEDC_KERNEL) or run as root on a kernel with sched_ext",
            )
        if run_seconds:
            raise EnvironmentProblem(
                "--run attaches the scheduler and is only done in the sandbox",
                "use --sandbox with --run; schedc never attaches to the host in a test",
            )
    needs_compile = any(not p.name.endswith(".o") for p in paths)
    tc = load_toolchain(settings) if needs_compile else None
    build = Path(tempfile.mkdtemp(prefix="schedc-verify-"))
    try:
        results = []
        for i, path in enumerate(paths):
            if tc is None:
                results.append(_prepare(path, settings, None, build, [], i))  # type: ignore[arg-type]
            else:
                say(f"compiling {path}")
                results.append(_prepare(path, settings, tc, build, include_dirs or [], i))
        loadable = [r for r in results if r.object_path]
        if loadable:
            objects = [Path(r.object_path) for r in loadable if r.object_path]
            if mode == "host":
                say(f"verifying {len(objects)} object(s) on this host")
                reports = load_on_host(objects, settings)
            else:
                reports = load_in_sandbox(
                    objects, settings, progress=say, run_seconds=run_seconds, workload=workload
                )
            for result, report in zip(loadable, reports, strict=True):
                _apply(result, report)
        for r in results:
            r.ok = not has_errors(r.diagnostics) and r.stage in ("verifier", "run")
        return results
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _apply(result: VerifyResult, report: LoadReport) -> None:
    result.programs = report.programs
    if not report.verified:
        result.diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "V004",
                f"{report.error}",
                result.policy,
                hint="an earlier policy in the same boot stopped the guest; verify this one "
                "on its own (SCHEDC_KEEP_SANDBOX=1 keeps the guest's files for a look)",
            )
        )
        return
    if not report.ok:
        result.diagnostics.append(rejection_diagnostic(report, result.policy))
        return
    if report.run is not None:
        result.stage = "run"
        result.run = report.run
        problem = run_diagnostic(report.run, result.policy)
        if problem:
            result.diagnostics.append(problem)
