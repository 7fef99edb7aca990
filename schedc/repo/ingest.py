"""From a policy file to a candidate entry: compile, check and (when a kernel is at hand)
verify it, and collect what the metadata needs. Nothing here touches git.

The policy is copied into a scratch folder under its repository file name first, so the
generated C and every diagnostic name `policy.sched` the same way whatever the user's path
was; diagnostics are mapped back to the user's path for display.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from schedc.behaviour.counters import names_of_c, names_of_policy
from schedc.behaviour.run import check_sandboxes
from schedc.compiler.pipeline import (
    CHECKED,
    Options,
    Outcome,
    Source,
    run,
    translate,
    verify_policies,
)
from schedc.compiler.source import is_c, is_dsl, read_source
from schedc.compiler.toolchain import load_toolchain
from schedc.diagnostics import Diagnostic, Severity, has_errors
from schedc.dsl.sema import Ty, TypedPolicy
from schedc.repo import layout
from schedc.repo.evidence import ScenarioInput, run_scenarios
from schedc.repo.models import (
    MAX_RUN_FAILED,
    BehaviourReport,
    FailedProcess,
    KernelVerification,
    ProgramResult,
    RunRecord,
    Tunable,
    VerificationReport,
    VerificationSummary,
    name_problem,
    now,
)
from schedc.settings import EnvironmentProblem, Settings
from schedc.verifier.checks import kernel_targets
from schedc.verifier.rules.kernel import DEFAULT_TARGET, KernelVersion, Target, version_text
from schedc.verifier.sandbox import REMEDY, RunReport, sandbox_problem
from schedc.verifier.verify import KernelVerdict, VerifyResult, host_problem
from schedc.workloads import DEFAULT_WORKLOAD, run_load_problem

VerifyMode = Literal["auto", "always", "never"]
DEFAULT_RUN_SECONDS = 5.0  # `repo add --run` without --run-seconds
MAX_RUN_SECONDS = 600.0
MAX_SOURCE_BYTES = 512 * 1024

_C_TUNABLE = re.compile(
    r"^\s*const\s+volatile\s+(?P<type>u64|u32|s64|s32|int|unsigned|bool|__u64|__u32)\s+"
    r"(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<value>true|false|\d+)\s*(?:ULL|UL|U|LL)?\s*;",
    re.M,
)


@dataclass
class Candidate:
    name: str
    kind: Literal["dsl", "c"]
    source_text: str
    generated_c: str | None
    description: str
    tags: list[str]
    tunables: list[Tunable]
    verification: VerificationReport
    behaviour: list[BehaviourReport] = field(default_factory=list)  # of this add's scenarios

    @property
    def source_file(self) -> str:
        return layout.DSL_SOURCE if self.kind == "dsl" else layout.C_SOURCE

    @property
    def content_hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.source_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunTest:
    """`repo add --run WORKLOAD --run-seconds S`: attach in the sandbox under this load."""

    workload: str = DEFAULT_WORKLOAD
    seconds: float = DEFAULT_RUN_SECONDS


@dataclass
class Prepared:
    candidate: Candidate | None
    diagnostics: list[Diagnostic]


def _error(code: str, message: str, file: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, file, hint=hint)


def prepare(
    path: Path,
    settings: Settings,
    *,
    name: str | None = None,
    verify: VerifyMode = "auto",
    target_kernel: KernelVersion = DEFAULT_TARGET,
    progress: Callable[[str], None] | None = None,
    unverified_reason: str = "skipped (--unverified): compiled and checked only",
    verified: VerifyResult | None = None,
    scenarios: Sequence[ScenarioInput] = (),
    runs: int = 1,
    tested: Sequence[BehaviourReport] = (),
    run_test: RunTest | None = None,
) -> Prepared:
    """Raises EnvironmentProblem when a tool is missing (or no kernel with verify='always').
    `verified` is a passing verification of this very source, done earlier by the caller
    (the agent runner remembers them): it is recorded instead of booting the kernel again.
    `scenarios`: the behaviour test runs on the checked object (one boot for all), after the
    verification; `tested` are reports of this very source on some of them, made earlier in
    the caller's session, which are kept instead of running those scenarios again.
    `run_test`: also attach the policy in the sandbox under a workload (`verify --run`) on
    every kernel and record each kernel's run; a run that fails is recorded marked failed
    with its error diagnostics (V002, V003, V005), like a failed behaviour report."""
    if not (is_dsl(path) or is_c(path)):
        return Prepared(None, [_error("R001", "not a .sched or .bpf.c policy", str(path))])
    text, unreadable = read_source(path)
    if text is None:
        return Prepared(None, unreadable)
    if len(text.encode("utf-8")) > MAX_SOURCE_BYTES:
        return Prepared(None, [_error("R001", "the policy is larger than 512 KiB", str(path))])
    kind: Literal["dsl", "c"] = "dsl" if is_dsl(path) else "c"
    content_hash = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    reused = _reusable(tested, scenarios, content_hash)
    to_run = [s for s in scenarios if s.hash not in reused]
    if run_test is not None:
        if verify == "never":
            raise ValueError("a run test (--run) needs the kernel verifier: drop --unverified")
        problem = run_load_problem(run_test.workload)
        if problem:
            raise EnvironmentProblem(f"--run: {problem}", "choose another workload")
    if to_run or run_test is not None:
        check_sandboxes(settings)  # every kernel, before compiling (or verifying) for nothing
    with tempfile.TemporaryDirectory(prefix="schedc-repo-") as tmp:
        staged = Path(tmp) / (layout.DSL_SOURCE if kind == "dsl" else layout.C_SOURCE)
        staged.write_text(text, encoding="utf-8")
        compiled = _compile_and_check(staged, settings, target_kernel)
        diags = relocate(compiled.diagnostics, staged, path)
        if has_errors(diags):
            return Prepared(None, diags)
        policy = compiled.policy
        final_name = name or (policy.name if policy else _c_name(path))
        problem = name_problem(final_name)
        if problem:
            hint = "pass --name NAME" if not name else None
            return Prepared(None, [*diags, _error("R002", problem, str(path), hint)])
        report, verify_diags = _verification(
            Path(tmp) / "policy.bpf.o",
            settings,
            verify,
            target_kernel,
            diags,
            progress,
            unverified_reason,
            verified,
            run_test,
        )
        verify_diags = relocate(verify_diags, staged, path)
        if report is None:
            return Prepared(None, diags + verify_diags)
        diags += verify_diags  # a failed run test's errors: recorded, marked failed
        behaviour = [r for s in scenarios for r in reused.get(s.hash, [])]
        if reused and progress is not None:
            progress(
                f"tested earlier in this session: recording {len(behaviour)} behaviour report(s)"
            )
        if to_run:
            ran, test_diags = run_scenarios(
                final_name,
                str(path),
                Path(tmp) / "policy.bpf.o",
                to_run,
                settings,
                content_hash,
                runs=runs,
                counters=names_of_policy(policy) or names_of_c(text),
                progress=progress,
            )
            behaviour += ran
            diags += test_diags
    candidate = Candidate(
        name=final_name,
        kind=kind,
        source_text=text,
        generated_c=stored_c(text) if policy else None,
        description=policy.description if policy else _c_description(text),
        tags=list(policy.tags) if policy else [],
        tunables=_dsl_tunables(policy) if policy else _c_tunables(text),
        verification=report,
        behaviour=behaviour,
    )
    return Prepared(candidate, diags)


def _reusable(
    tested: Sequence[BehaviourReport], scenarios: Sequence[ScenarioInput], content_hash: str
) -> dict[str, list[BehaviourReport]]:
    """Earlier reports of this source on the given scenarios (one per kernel), by scenario
    hash, named as the scenario is named now."""
    wanted = {s.hash: s for s in scenarios}
    out: dict[str, list[BehaviourReport]] = {}
    for r in tested:
        given = wanted.get(r.scenario_hash)
        if given is not None and r.content_hash == content_hash:
            out.setdefault(r.scenario_hash, []).append(
                r.model_copy(update={"scenario": given.name})
            )
    return out


def _compile_and_check(staged: Path, settings: Settings, target_kernel: KernelVersion) -> Outcome:
    """Checked and compiled once (CHECKED); the generated C stays in the scratch folder.
    Checked for every kernel in use (each from its BTF) and for `target_kernel`, the oldest
    kernel the policy must load on, unless one of those kernels is of that version."""
    targets = kernel_targets(settings)
    if all(t.version != target_kernel for t in targets):
        targets = (*targets, Target(target_kernel))
    options = Options(
        settings=settings,
        toolchain=functools.cache(lambda: load_toolchain(settings)),
        target_kernel=target_kernel,
        targets=targets,
        out=staged.with_name("policy.bpf.o"),
        emit_c=staged.with_name("scratch.bpf.c") if is_dsl(staged) else None,
    )
    return run(CHECKED, [staged], options)[0]


def stored_c(text: str) -> str | None:
    """The generated C as the repository stores it: its #line directives name the entry's
    own files (policy.sched, generated.bpf.c), not a scratch folder."""
    return translate(Source(Path(layout.DSL_SOURCE), text), c_name=layout.GENERATED).c_text


def relocate(diags: list[Diagnostic], staged: Path, original: Path) -> list[Diagnostic]:
    """Diagnostics about a staged copy name the file the caller knows instead."""
    staged_names = {str(staged), str(staged.resolve())}
    return [replace(d, file=str(original)) if d.file in staged_names else d for d in diags]


def _verification(
    obj: Path,
    settings: Settings,
    mode: VerifyMode,
    target_kernel: KernelVersion,
    check_diags: list[Diagnostic],
    progress: Callable[[str], None] | None,
    unverified_reason: str,
    verified: VerifyResult | None = None,
    run_test: RunTest | None = None,
) -> tuple[VerificationReport | None, list[Diagnostic]]:
    """The verification record; None with the diagnostics when a kernel rejected the object.
    A run test that failed on a kernel that loaded the object is recorded (its run marked
    failed) and its error diagnostics come back beside the record."""
    findings = [d.to_json() for d in check_diags]
    warnings = sum(1 for d in check_diags if d.severity is Severity.WARNING)

    def unverified(reason: str) -> VerificationReport:
        summary = VerificationSummary(
            status="unverified", stage="check", warnings=warnings, reason=reason, date=now()
        )
        return VerificationReport(
            summary=summary, target_kernel=version_text(target_kernel), diagnostics=findings
        )

    if mode == "never":
        return unverified(unverified_reason), []
    where, reason = _kernel_at_hand(settings)
    if run_test is not None:
        where = "sandbox"  # a run test attaches the policy: never on the host
    elif where is None:
        if mode == "always":
            raise EnvironmentProblem(f"--verify needs a kernel with sched_ext: {reason}", REMEDY)
        return unverified(reason), []
    if verified is not None and verified.ok and run_test is None:
        result = verified
        if progress is not None:
            progress("verified earlier in this session: recording that verification")
    else:
        result = verify_policies(
            [obj],
            settings,
            mode=where,
            run_seconds=run_test.seconds if run_test else None,
            workload=run_test.workload if run_test else DEFAULT_WORKLOAD,
            progress=progress,
        )[0]
    run_failed = (
        run_test is not None
        and bool(result.kernels)
        and all(_loaded(k) for k in result.kernels)
        and not result.ok
    )
    if not result.ok and not run_failed:
        return None, result.diagnostics
    programs = [
        ProgramResult(
            name=p.name,
            insns_processed=p.insns_processed,
            states=p.states,
            verification_time_us=p.verification_time_us,
        )
        for p in result.programs
    ]
    summary = VerificationSummary(
        status="verified",
        stage="run" if result.stage == "run" and result.ok else "verifier",
        kernel=result.kernels[0].kernel if result.kernels else None,
        kernels=[
            KernelVerification(
                kernel=k.kernel,
                insns_processed=_total([p.insns_processed for p in k.programs]),
                programs=len(k.programs),
                run=run_record(k.run) if k.run is not None else None,
            )
            for k in result.kernels
        ],
        mode=where,  # type: ignore[arg-type]
        insns_processed=_total([p.insns_processed for p in result.programs]),
        programs=len(programs),
        warnings=warnings,
        date=now(),
    )
    report = VerificationReport(
        summary=summary,
        target_kernel=version_text(target_kernel),
        diagnostics=findings + [d.to_json() for d in result.diagnostics],
        programs=programs,
    )
    return report, result.diagnostics if run_failed else []


def _loaded(k: KernelVerdict) -> bool:
    """The kernel loaded the object (whatever its run test did)."""
    return k.ok or (k.run is not None and not k.run.ok and bool(k.programs))


def run_record(run: RunReport) -> RunRecord:
    """The stored form of one kernel's run test."""
    crashed = run.crashed or []
    return RunRecord(
        workload=run.workload,
        seconds=run.seconds,
        attached=run.attached,
        enabled_throughout=run.enabled_throughout,
        attach_error=(run.attach_error or "")[:1000] or None,
        exit_reason=(run.exit_reason or "")[:200] or None,
        exit_message=(run.exit_message or "")[:1000] or None,
        processes_traced=run.crashed is not None,
        failed=[
            FailedProcess(pid=c.pid, comm=c.comm[:64], signal=c.signal[:20], how=c.how)  # type: ignore[arg-type]
            for c in crashed[:MAX_RUN_FAILED]
        ],
        failed_count=len(crashed),
    )


def _total(counts: list[int | None]) -> int | None:
    """The verifier's instruction count over all programs; None when it reported none."""
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def _kernel_at_hand(settings: Settings) -> tuple[str | None, str]:
    """('host' | 'sandbox', '') when the verifier can run, else (None, why not)."""
    host = host_problem()
    if host is None:
        return "host", ""
    sandbox = sandbox_problem(settings)
    if sandbox is None:
        return "sandbox", ""
    return None, f"no kernel verifier at hand ({host}; {sandbox})"


def _c_name(path: Path) -> str:
    name = path.name
    for suffix in (".bpf.c", ".c"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _c_description(text: str) -> str:
    """The first sentence of the file's leading comment (after any SPDX line)."""
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            if lines:
                break
            continue
        if not line.startswith(("/*", "*", "//")):
            break
        line = line.lstrip("/*").rstrip("*/").strip()
        if not line or line.startswith(("SPDX-License-Identifier", "Copyright")):
            if lines:
                break
            continue
        lines.append(line)
    first = " ".join(lines)
    return first.split(". ")[0].rstrip(".")[:200]


def _dsl_tunables(policy: TypedPolicy) -> list[Tunable]:
    out = []
    for p in policy.params:
        if p.ty is Ty.DURATION:
            kind, unit, default = "duration", "ns", p.value
        elif p.ty is Ty.BOOL:
            kind, unit, default = "bool", None, bool(p.value)
        else:
            kind, unit, default = "int", None, p.value
        out.append(
            Tunable(name=p.name, type=kind, default=default, min=p.low, max=p.high, unit=unit)
        )
    return out


def _c_tunables(text: str) -> list[Tunable]:
    """`const volatile` globals with an initial value: what a loader sets before loading."""
    out = []
    for m in _C_TUNABLE.finditer(text):
        value = m.group("value")
        if m.group("type") == "bool" or value in ("true", "false"):
            out.append(Tunable(name=m.group("name"), type="bool", default=value == "true"))
        else:
            out.append(Tunable(name=m.group("name"), type="int", default=int(value)))
    return out
