"""The pipeline's `load` stage (`schedc verify`): load objects into a kernel that has
sched_ext — the host's, or a throwaway sandbox guest, all in one boot — and report what the
verifier said in terms of each policy's own source. Optionally attach and run them under load
in the guest. compiler/pipeline.py composes it after the checks and clang (VERIFY).

A result says the last stage reached: compile → check → verifier → run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from schedc.diagnostics import Diagnostic, Severity
from schedc.settings import (
    HOST_BTF,
    EnvironmentProblem,
    Settings,
    each_of,
    find_bpftool,
    host_choice,
    host_kernel_problem,
    kernel_matrix,
    kernel_name,
    load_settings,
)
from schedc.verifier.sandbox import (
    DEFAULT_WORKLOAD,
    LoadReport,
    ProgramReport,
    RunReport,
    crash_diagnostic,
    load_in_sandbox,
    object_for_kernel,
    parse_load_log,
)
from schedc.verifier.scx_enums import EnumFill

__all__ = [
    "VerifyResult",
    "apply_report",
    "choose_mode",
    "ejection_hint",
    "enum_diagnostic",
    "hint_for",
    "host_problem",
    "libbpf_diagnostic",
    "libbpf_hint",
    "host_report",
    "load_on_kernels",
    "matrix_of",
    "on_kernel",
    "preflight",
    "rejection_diagnostic",
    "run_diagnostic",
]


# Where the verifier's log says which source line an instruction came from:
# "; <source text> @ <file>:<line>" (BTF line info, with #line names for DSL policies).
_SOURCE_LINE = re.compile(r"^; (?P<text>.*) @ (?P<file>[^:@]+):(?P<line>\d+)$")
_INSN = re.compile(r"^(?P<idx>\d+): \([0-9a-f]{2}\) .*$")

# An access the verifier cannot keep inside its map value or stack slot: an index it cannot
# bound (or bounds past the end), a negative one.
_OUT_OF_BOUNDS = re.compile(
    r"invalid access to map value|min value is negative|max value is outside of the allowed "
    r"memory range|R\d+ unbounded memory access|invalid (?:unbounded )?variable-offset|"
    r"invalid access to (?:memory|packet)|value is outside of the allowed memory range"
)
# A subscript with an index that is not a plain number, as C writes it: `name[expr]`.
_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*(?:\s*(?:\.|->)\s*[A-Za-z_][A-Za-z_0-9]*)*\s*\[")

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
        _OUT_OF_BOUNDS,
        "the verifier cannot prove this index (or offset) stays inside the array or map "
        "value: bound it by the array's length on the path to the access (if (i >= N) "
        "return ...; a CPU from scx_bpf_task_cpu() or prev_cpu too: the verifier knows no "
        "bound of nr_cpu_ids), or mask it (i &= N - 1 for a power-of-two N); a signed index "
        "also needs i >= 0, or make it u32",
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
        re.compile(r"Tracing programs must provide btf_id"),
        "a fentry/fexit/fmod_ret/tp_btf/lsm/freplace/iter program names no attach target: "
        "schedc loads objects as they are and sets no target at run time; name it in the "
        "section: SEC(\"fentry/FUNCTION\")",
    ),
    (
        re.compile(r"R\d+ !read_ok|uninitialized"),
        "a register or stack slot is read before it is written: initialise the variable",
    ),
]


# libbpf's own messages (libbpf 1.5, src/libbpf.c) for a load that failed before the kernel's
# verifier saw a program, explained. The first match wins: CO-RE before the generic "failed
# to resolve".
CO_RE_FAILURE = re.compile(
    r"failed to resolve CO-RE relocation|<invalid CO-RE relocation>|"
    r"target candidate search failed|failed to perform CO-RE relocations"
)
_LIBBPF_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"(?:system|in-memory) Kconfig|Kconfig line"),
        "the object has __kconfig externs (extern int CONFIG_HZ __kconfig;) and libbpf found no "
        "kernel config: set `kconfig` in schedc.toml (SCHEDC_KCONFIG) to the kernel's .config; "
        "a kit's kernel.config is used automatically",
    ),
    (
        re.compile(r"extern \(kcfg\)"),
        "the kernel's config value does not fit the __kconfig extern's type: declare a y/n/m "
        "option as bool (or enum libbpf_tristate), a number as int or u64, a string as char[]",
    ),
    (
        CO_RE_FAILURE,
        "a type or field the program reads (BPF_CORE_READ, or a struct access CO-RE relocates) "
        "is not in this kernel's BTF: guard it with bpf_core_field_exists() / "
        "bpf_core_type_exists(), or leave it out for this kernel",
    ),
    (
        re.compile(
            r"no BTF-based attach target|attach target|failed to find kernel BTF type ID"
        ),
        "a tracing program (fentry/fexit/tp_btf) needs the kernel function it attaches to: "
        'name it in the section, SEC("fentry/FUNC"), and FUNC must exist in this kernel',
    ),
    (
        re.compile(
            r"extern '[^']*' \(strong\): not resolved|extern \((?:func|var) ksym\) '[^']*': "
            r"not found|failed to resolve|extern .* not found"
        ),
        "the symbol does not exist in this kernel (a kfunc or ksym missing, or renamed: 6.13 "
        "renamed scx_bpf_dispatch to scx_bpf_dsq_insert): declare it __weak and guard each use "
        "with bpf_ksym_exists()",
    ),
    (
        re.compile(r"map '[^']*': failed to create|failed to create (?:inner )?map"),
        "this kernel refused to create the map: its type, key or value size, max_entries or "
        "flags (BPF_F_NO_PREALLOC for a hash map, BPF_F_MMAPABLE for an array) are not "
        "accepted here, or the guest's memory is too small for it",
    ),
    (
        re.compile(r"struct_ops .*(?:not found in kernel BTF|[Cc]annot find member)"),
        "struct sched_ext_ops on this kernel lacks a callback or field the object sets (a newer "
        "kernel's): leave it out for this kernel",
    ),
]


def libbpf_hint(message: str) -> str | None:
    """The likely cause of a libbpf failure before the verifier ran, from libbpf's message."""
    return _first_hint(_LIBBPF_HINTS, message)


def libbpf_diagnostic(report: LoadReport, policy: str) -> Diagnostic:
    """V008: libbpf gave up before the kernel's verifier saw a program (report.stage "open" or
    "prepare"), or relocated a program for this kernel's BTF and could not (CO-RE: the
    verifier then only rejected the instruction libbpf had poisoned)."""
    message = report.error or "libbpf could not load the object"
    if report.stage == "open":
        text = f"libbpf could not open the object, before the kernel verifier ran: {message}"
    elif report.stage == "verifier":
        text = f"libbpf could not relocate the object for this kernel's BTF: {message}"
        found = rejection_diagnostic(report, policy)  # at the poisoned instruction's line
        return replace(found, code="V008", message=text, hint=libbpf_hint(message))
    else:
        text = f"libbpf failed before the kernel verifier ran: {message}"
    # libbpf's earlier lines may name the cause that its last complaint only summarises.
    hint = libbpf_hint(message) or libbpf_hint(report.log)
    return Diagnostic(Severity.ERROR, "V008", text, policy, hint=hint)


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
    # One verdict per kernel of the matrix (programs and run above are the first kernel's).
    kernels: list[KernelVerdict] = field(default_factory=list)
    params_set: dict[str, str] = field(default_factory=dict)  # --set NAME=VALUE it was built with

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "ok": self.ok,
            "stage": self.stage,
            "diagnostics": [d.to_json() for d in self.diagnostics],
            "programs": _programs_json(self.programs),
            "run": self.run.to_json() if self.run else None,
            "kernels": [k.to_json() for k in self.kernels],
            "set": self.params_set,
        }


@dataclass(frozen=True)
class KernelVerdict:
    """What one kernel of the matrix said about a policy's object."""

    kernel: str  # its release, e.g. "7.2.13"
    ok: bool  # loaded (and, with a run test, stayed enabled and nothing crashed)
    programs: list[ProgramReport]
    run: RunReport | None
    error: str | None  # why not, in one line
    scx_enums: EnumFill | None = None  # the scx enum values written for this kernel

    def to_json(self) -> dict[str, object]:
        return {
            "kernel": self.kernel,
            "ok": self.ok,
            "programs": _programs_json(self.programs),
            "run": self.run.to_json() if self.run else None,
            "error": self.error,
            "scx_enums": self.scx_enums.to_json() if self.scx_enums else None,
        }


def verdict_of(report: LoadReport) -> KernelVerdict:
    ran_ok = report.run is None or report.run.ok
    error = report.error
    if report.ok and report.run is not None and not report.run.ok:
        error = report.run.exit_reason or report.run.attach_error or "the run test failed"
    return KernelVerdict(
        kernel=report.kernel or "?",
        ok=report.verified and report.ok and ran_ok,
        programs=report.programs,
        run=report.run,
        error=None if report.ok and ran_ok else error,
        scx_enums=report.scx_enums,
    )


def _programs_json(programs: Sequence[ProgramReport]) -> list[dict[str, object]]:
    return [
        {
            "name": p.name,
            "insns_processed": p.insns_processed,
            "states": p.states,
            "verification_time_us": p.verification_time_us,
            "peak_states": p.peak_states,
        }
        for p in programs
    ]


def _first_hint(table: list[tuple[re.Pattern[str], str]], message: str) -> str | None:
    """The hint of the first pattern in `table` that `message` matches."""
    return next((hint for pattern, hint in table if pattern.search(message)), None)


def hint_for(message: str) -> str | None:
    """The likely cause of a verifier rejection, from the kernel's message."""
    return _first_hint(_HINTS, message)


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
    start, end = 1, 1
    if _OUT_OF_BOUNDS.search(message):
        span = _access_columns(_source_line(file, line_no, where.group("text")))
        if span is not None:
            start, end = span
    return Diagnostic(Severity.ERROR, "V001", text, file, line_no, start, line_no, end, hint)


def _source_line(file: str, line_no: int, logged: str) -> str | None:
    """The source line the log names, as the file has it (the log strips its indentation);
    None when the file cannot be read or no longer holds that line."""
    try:
        lines = Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    if not 1 <= line_no <= len(lines) or lines[line_no - 1].strip() != logged.strip():
        return None
    return lines[line_no - 1]


def _access_columns(line: str | None) -> tuple[int, int] | None:
    """The columns (1-based, inclusive) of the first subscript on `line` whose index is not a
    plain number: the access the verifier could not bound, as far as line info can tell (BTF
    line info has the line, the log no column)."""
    if line is None:
        return None
    for m in _SUBSCRIPT.finditer(line):
        depth, close = 0, None
        for i in range(m.end() - 1, len(line)):
            depth += {"[": 1, "]": -1}.get(line[i], 0)
            if depth == 0:
                close = i
                break
        if close is None:
            return None
        index = line[m.end() : close].strip()
        if re.fullmatch(r"\d+[uUlL]*|0[xX][0-9a-fA-F]+[uUlL]*", index):
            continue  # a constant index: the verifier checks it exactly
        return m.start() + 1, close + 1
    return None


# sched_ext's scx_ops_error() messages (6.12 kernel/sched/ext.c), explained.
_EJECTION_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"invalid DSQ ID 0x8000000000000001\b"),
        "consuming or moving tasks from SCX_DSQ_GLOBAL is not allowed on this kernel (6.12 "
        "refuses scx_bpf_consume(SCX_DSQ_GLOBAL)): leave SCX_DSQ_GLOBAL to the kernel, or "
        "insert into a custom DSQ created in ops.init and consume that one",
    ),
    (
        re.compile(r"already had (?:FIFO|PRIQ)-enqueued tasks|cannot use vtime ordering"),
        "one DSQ got both FIFO inserts (scx_bpf_dsq_insert / scx_bpf_dispatch) and vtime "
        "inserts (..._vtime): a DSQ is either FIFO or vtime-ordered, and built-in DSQs "
        "(SCX_DSQ_LOCAL, SCX_DSQ_GLOBAL) are FIFO only; use a separate custom DSQ per order",
    ),
    (
        re.compile(r"non-existent DSQ|invalid DSQ ID|destroyed dsq"),
        "a task was inserted into (or consumed from) a DSQ id that was never created: create "
        "each custom DSQ in ops.init with scx_bpf_create_dsq(id, -1) and use the same id",
    ),
    (
        re.compile(r"invalid CPU -?\d+|target CPU -?\d+ not allowed"),
        "a CPU outside 0..nr_cpu_ids-1 (or one the task may not run on) was passed to a kfunc "
        "(SCX_DSQ_LOCAL_ON | cpu, scx_bpf_kick_cpu, ...): bound it by "
        "scx_bpf_nr_cpu_ids() and check the task's cpumask",
    ),
    (
        re.compile(r"runnable task stall|failed to run for"),
        "a runnable task waited longer than the watchdog allows: every queue a task is "
        "inserted into must be consumed in ops.dispatch",
    ),
]


def ejection_hint(exit_message: str) -> str | None:
    """The likely cause of an ejection, from sched_ext's exit message (None: not a known one)."""
    return _first_hint(_EJECTION_HINTS, exit_message)


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
    hint = ejection_hint(run.exit_message or "")
    if hint is None and "stall" in reason:
        hint = (
            "a runnable task waited longer than the watchdog allows: every queue a task is "
            "inserted into must be consumed in ops.dispatch"
        )
    elif hint is None and "error" in reason:
        hint = (
            "a kfunc was called from a callback where sched_ext forbids it, or with an "
            "invalid DSQ or CPU; sched_ext checks this at run time, not in the verifier"
        )
    return Diagnostic(Severity.ERROR, "V003", msg, policy, hint=hint)


def host_problem(settings: Settings | None = None) -> str | None:
    """None when this host can run the verifier on sched_ext objects itself
    (settings.host_kernel_problem, the one check)."""
    return host_kernel_problem(settings if settings is not None else load_settings())


def load_on_host(objects: Sequence[Path], settings: Settings) -> list[LoadReport]:
    """Runs the verifier on the host without attaching: `bpftool prog loadall`, then unpin."""
    bpftool = find_bpftool(settings)
    reports = []
    for obj in objects:
        pin = Path(tempfile.mkdtemp(prefix="schedc-verify-", dir="/sys/fs/bpf"))
        scratch = Path(tempfile.mkdtemp(prefix="schedc-verify-"))
        try:
            # The host kernel's scx enum values, as the sandbox fills each kit's.
            copy = scratch / Path(obj).name
            fill = object_for_kernel(obj, copy, settings, HOST_BTF)
            proc = subprocess.run(
                [bpftool, "-d", "prog", "loadall", str(copy), str(pin)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            report = parse_load_log(str(obj), proc.stdout + proc.stderr, proc.returncode)
            reports.append(replace(report, scx_enums=fill))
        finally:
            shutil.rmtree(pin, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
    return reports


def choose_mode(mode: str) -> str:
    """'host' (only this host's kernel), 'sandbox' (only the kits: the host left out) or
    'auto' (the matrix: the kits, and the host's kernel when the `host` setting adds it)."""
    if mode not in ("auto", "host", "sandbox"):
        raise ValueError(f"not a verify mode: {mode!r}")
    return mode


def preflight(mode: str, run_seconds: float | None, settings: Settings | None = None) -> str:
    """Where the verifier will run (choose_mode), or EnvironmentProblem before anything is
    compiled: a verify that cannot load wastes no compile. (The sandbox checks the run
    test's workload itself, before booting.)"""
    where = choose_mode(mode)
    if where == "host":
        trouble = host_problem(settings)
        if trouble:
            raise EnvironmentProblem(
                f"cannot verify on the host: {trouble}",
                "use --sandbox (SCHEDC_KERNEL) or run as root on a kernel with sched_ext",
            )
    if run_seconds and (where == "host" or (where == "auto" and _host_asked(settings))):
        raise EnvironmentProblem(
            "--run attaches the scheduler and is only done in the sandbox",
            'use --sandbox with --run (or host = "auto"); schedc never attaches to the host '
            "in a verify run test (schedc bench --host-kernel yes measures on it)",
        )
    if where == "auto" and settings is not None:
        host_choice(settings, attach=bool(run_seconds))  # host = "yes" on a host that cannot
    return where


def _host_asked(settings: Settings | None) -> bool:
    return settings is not None and settings.host == "yes"


def matrix_of(settings: Settings, mode: str, run_seconds: float | None) -> list[Settings]:
    """The kernels a verify in this mode loads on (the host's entry has on_host set)."""
    if mode == "host":
        return [replace(settings, on_host=True)]
    if mode == "sandbox":
        settings = replace(settings, host="no")
    return kernel_matrix(settings, attach=bool(run_seconds))


def host_report(settings: Settings, mode: str, run_seconds: float | None) -> dict[str, object]:
    """For verify's output: whether this host's kernel is one of the kernels, and why not."""
    if mode != "auto":
        setting = "only" if mode == "host" else "no"
        kernel = kernel_name(replace(settings, on_host=True)) if mode == "host" else None
        return {"setting": setting, "included": mode == "host", "kernel": kernel, "reason": None}
    choice = host_choice(settings, attach=bool(run_seconds))
    return {
        "setting": settings.host,
        "included": choice.entry is not None,
        "kernel": kernel_name(choice.entry) if choice.entry is not None else None,
        "reason": choice.reason,
    }


def load_on_kernels(
    objects: Sequence[Path],
    settings: Settings,
    *,
    mode: str,
    run_seconds: float | None = None,
    workload: str = DEFAULT_WORKLOAD,
    progress: Callable[[str], None] | None = None,
) -> list[list[LoadReport]]:
    """For every kernel of the matrix (matrix_of: the kits, and the host's kernel by the
    `host` setting; with mode 'host' only the host's), one report per object, each naming its
    kernel: one boot per sandbox kernel; on the host, load only (never attached)."""
    kernels = matrix_of(settings, mode, run_seconds)
    out = []
    for kernel, name, say in each_of(kernels, progress):
        if kernel.on_host:  # preflight refused a run test here
            if say is not None:
                say(f"verifying {len(objects)} object(s) on this host")
            reports = load_on_host(objects, kernel)
        else:
            reports = load_in_sandbox(
                objects, kernel, progress=say, run_seconds=run_seconds, workload=workload
            )
        out.append([replace(r, kernel=name) for r in reports])
    return out


def on_kernel(diagnostic: Diagnostic, kernel: str) -> Diagnostic:
    """A kernel's finding in a matrix run: its message ends in the kernel it is for, as a
    check finding for some targets only does ("... [Linux 7.2.13]")."""
    return replace(diagnostic, message=f"{diagnostic.message} [Linux {kernel}]")


def enum_diagnostic(fill: EnumFill, policy: str) -> Diagnostic:
    """V006 (a note) for the scx enum values written into the object before it loaded, and the
    constants the kernel lacks (written 0, as scx's own loader does); V007 (a warning) when
    they could not be written at all."""
    if fill.problem is not None:
        return Diagnostic(
            Severity.WARNING,
            "V007",
            fill.describe(),
            policy,
            hint="give the kernel's vmlinux BTF (a kit folder in `kernels` has it, or "
            "SCHEDC_BTF): scx's loader fills them from it, and so does schedc",
        )
    return Diagnostic(Severity.NOTE, "V006", fill.describe(), policy)


def apply_report(report: LoadReport, policy: str) -> list[Diagnostic]:
    """What the kernel said about one object, as diagnostics on the policy: its verdict, and
    what was filled in before it loaded (V006/V007)."""
    verdict = _verdict_diagnostics(report, policy)
    if report.scx_enums is not None and report.verified:
        verdict.append(enum_diagnostic(report.scx_enums, policy))
    return verdict


def _verdict_diagnostics(report: LoadReport, policy: str) -> list[Diagnostic]:
    if not report.verified:
        return [
            Diagnostic(
                Severity.ERROR,
                "V004",
                f"{report.error}",
                policy,
                hint="an earlier policy in the same boot stopped the guest; verify this one "
                "on its own (SCHEDC_KEEP_SANDBOX=1 keeps the guest's files for a look)",
            )
        ]
    if not report.ok:
        if report.stage in ("open", "prepare") or CO_RE_FAILURE.search(report.error or ""):
            return [libbpf_diagnostic(report, policy)]
        return [rejection_diagnostic(report, policy)]
    if report.run is not None:
        problem = run_diagnostic(report.run, policy)
        if problem:
            return [problem]
    return []
