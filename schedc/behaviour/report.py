"""Results of `schedc test`: expectations (explicit and implicit) per (policy, scenario), their
diagnostics at the scenario's lines, and the human and JSON forms (docs/behaviour.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schedc.behaviour.expect import ExpectationResult, Observation, evaluate_all, process_summary
from schedc.behaviour.run import BootResult, Case, Measured, refuse_host, run_cases
from schedc.bench.runner import BASELINE, TCG_NOTE
from schedc.diagnostics import Diagnostic, Severity
from schedc.settings import Settings, each_of, kernel_matrix

CODES = {
    "placement": "T101",
    "order": "T102",
    "share": "T103",
    "wait": "T104",
    "completion": "T105",
    "starvation": "T106",
    "slice": "T107",
    "enabled": "T201",
    "exited": "T202",
    "trace": "T203",
}


@dataclass
class ScenarioResult:
    policy: str
    policy_source: str
    scenario: str
    scenario_path: str
    kernel: str | None
    accel: str
    expectations: list[ExpectationResult]
    processes: dict[str, object]
    baseline_processes: dict[str, object]
    runs: list[dict[str, object]]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # The policy's counters summed over its runs (each run's own are in runs[i]["policy"]);
    # {} for a policy without counters.
    counters: dict[str, int] = field(default_factory=dict)
    params_set: dict[str, str] = field(default_factory=dict)  # --set NAME=VALUE it was built with

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.expectations)

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "policy_source": self.policy_source,
            "scenario": self.scenario,
            "scenario_file": self.scenario_path,
            "kernel": self.kernel,
            "ok": self.ok,
            "expectations": [e.to_json() for e in self.expectations],
            "counters": self.counters,
            "set": self.params_set,
            "processes": {**self.processes, "baseline": self.baseline_processes},
            "run": {
                "accelerator": self.accel,
                "emulated": self.accel == "tcg",
                "baseline": BASELINE,
                "runs": self.runs,
            },
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


def _implicit(
    case: Case, mine: Sequence[Measured], base: Sequence[Measured]
) -> list[ExpectationResult]:
    """The policy stayed enabled; every workload process exited 0; the trace is whole."""
    out: list[ExpectationResult] = []
    bad = [
        m
        for m in mine
        if not (
            m.info.attached
            and m.info.enabled_throughout
            and m.info.disabled_after
            and m.info.finished
        )
    ]
    why = []
    for m in bad:
        i = m.info
        if not i.finished:
            why.append(f"run {m.step.run + 1}: {i.runner_error}")
        elif not i.attached:
            why.append(f"run {m.step.run + 1}: did not attach: {i.attach_error}")
        elif not i.enabled_throughout:
            reason = i.exit_reason or "sched_ext was not enabled throughout"
            msg = f": {i.exit_message}" if i.exit_message else ""
            why.append(f"run {m.step.run + 1}: the kernel ejected it ({reason}){msg}")
        else:
            why.append(f"run {m.step.run + 1}: sched_ext did not return to 'disabled' after detach")
    out.append(
        ExpectationResult(
            "enabled",
            [],
            "attached, 'enabled' throughout every run, 'disabled' after detach",
            float(len(mine) - len(bad)),
            None,
            not bad,
            None,
            "runs",
            "; ".join(why),
        )
    )
    failed = []
    for m in mine:
        if m.observation is None:
            if m.info.attached and m.info.finished:
                failed.append(f"run {m.step.run + 1}: {m.info.runner_error}")
            continue
        for t in m.observation.tasks:
            if not t.ok:
                how = f"killed by {t.signal}" if t.signal else f"exit status {t.exit_code}"
                failed.append(
                    f"run {m.step.run + 1}: {t.comm} (group {t.group}, pid {t.pid}) {how}"
                )
    base_failed = sum(1 for m in base if m.observation for t in m.observation.tasks if not t.ok)
    out.append(
        ExpectationResult(
            "exited",
            [],
            "every workload process exits 0",
            float(len(failed)),
            float(base_failed),
            not failed,
            None,
            "failed processes",
            "; ".join(failed[:8]) + (f"; and {len(failed) - 8} more" if len(failed) > 8 else ""),
        )
    )
    lost = sum(m.info.lost_events for m in mine if m.observation)
    base_lost = sum(m.info.lost_events for m in base if m.observation)
    out.append(
        ExpectationResult(
            "trace",
            [],
            "no trace events lost",
            float(lost),
            float(base_lost),
            lost == 0,
            None,
            "events",
            "the ring buffer overflowed: raise TRACE_BUFFER_KB or shorten the scenario"
            if lost
            else "",
        )
    )
    return out


def _diagnostics(result: ScenarioResult, case: Case) -> list[Diagnostic]:
    out = []
    lines = {g.name: g.line for g in case.scenario.group}
    for e in result.expectations:
        if e.ok:
            continue
        measured = "no data" if e.measured is None else f"{e.measured:.4g}"
        base = "-" if e.baseline is None else f"{e.baseline:.4g}"
        message = (
            f"{result.policy}: {e.kind} expectation failed: expected {e.expected}; measured "
            f"{measured}{' ' + e.unit if e.unit and e.measured is not None else ''} "
            f"({BASELINE} baseline: {base})"
        )
        line = e.line
        if e.kind == "exited" and e.detail:
            group = e.detail.split("(group ", 1)[-1].split(",", 1)[0]
            line = lines.get(group) or None
        out.append(
            Diagnostic(
                Severity.ERROR,
                CODES[e.kind],
                message,
                result.scenario_path,
                line,
                1 if line else None,
                hint=e.detail or None,
            )
        )
    return out


def total_counters(per_run: Sequence[dict[str, int]]) -> dict[str, int]:
    """Each counter summed over the runs, in the order the runs name them."""
    out: dict[str, int] = {}
    for run in per_run:
        for name, value in run.items():
            out[name] = out.get(name, 0) + value
    return out


def assemble(cases: Sequence[Case], boot: BootResult) -> list[ScenarioResult]:
    results = []
    for c, case in enumerate(cases):
        rows = [m for m in boot.measured if m.step.case == c]
        base = [m for m in rows if m.step.policy is None]
        base_obs = [m.observation for m in base if m.observation is not None]
        for p, policy in enumerate(case.policies):
            mine = [m for m in rows if m.step.policy == p]
            obs: list[Observation] = [m.observation for m in mine if m.observation is not None]
            expectations = _implicit(case, mine, base) + evaluate_all(case.scenario, obs, base_obs)
            runs = [
                {"baseline": b.info.to_json(), "policy": m.info.to_json(policy.counters)}
                for b, m in zip(base, mine, strict=False)
            ]
            result = ScenarioResult(
                policy=policy.name,
                policy_source=policy.source,
                scenario=case.scenario.name,
                scenario_path=case.scenario.path,
                kernel=boot.kernel,
                accel=boot.accel,
                expectations=expectations,
                processes=process_summary(obs),
                baseline_processes=process_summary(base_obs),
                runs=runs,
                counters=total_counters([m.info.named_counters(policy.counters) for m in mine]),
                params_set=dict(policy.params_set),
            )
            result.diagnostics = _diagnostics(result, case)
            results.append(result)
    return results


def test_policies(
    cases: Sequence[Case],
    settings: Settings,
    *,
    runs: int = 1,
    keep_trace: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ScenarioResult]:
    """Every case on every kernel of the matrix (settings.kernel_matrix), in as few boots per
    kernel as the scenarios' CPU counts allow (one for one count). The results come kernel by
    kernel, each naming its kernel; kept traces go to keep_trace/RELEASE/ in a matrix."""
    results: list[ScenarioResult] = []
    kernels = kernel_matrix(settings, attach=True)  # scenarios attach: no host by default
    for kernel in kernels:
        refuse_host(kernel)
    several = len(kernels) > 1
    for kernel, name, say in each_of(kernels, progress):
        traces = keep_trace / name if keep_trace is not None and several else keep_trace
        results += _on_one_kernel(cases, kernel, runs=runs, keep_trace=traces, progress=say)
    return results


def _on_one_kernel(
    cases: Sequence[Case],
    settings: Settings,
    *,
    runs: int,
    keep_trace: Path | None,
    progress: Callable[[str], None] | None,
) -> list[ScenarioResult]:
    by_cpus: dict[int, list[int]] = {}
    for i, case in enumerate(cases):
        by_cpus.setdefault(case.scenario.cpus, []).append(i)
    out: dict[int, list[ScenarioResult]] = {}
    for indices in by_cpus.values():
        chosen = [cases[i] for i in indices]
        boot = run_cases(chosen, settings, runs=runs, keep_trace=keep_trace, progress=progress)
        assembled = assemble(chosen, boot)
        k = 0
        for i in indices:
            n = len(cases[i].policies)
            out[i] = assembled[k : k + n]
            k += n
    return [r for i in range(len(cases)) for r in out.get(i, [])]


test_policies.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# --- human output ------------------------------------------------------------------------------


def format_value(x: float | None, unit: str) -> str:
    """A measured value as the reports show it (seconds as ms, fractions, counts)."""
    if x is None:
        return "-"
    if unit == "s":
        return f"{x * 1000:.3g} ms"
    if unit == "fraction":
        return f"{x:.3f}"
    if unit in ("rank", "runs", "failed processes", "events"):
        return f"{x:g}"
    return f"{x:.3g}"


def render_human(results: Sequence[ScenarioResult]) -> str:
    lines: list[str] = []
    for r in results:
        verdict = "ok  " if r.ok else "FAIL"
        lines.append(
            f"{verdict} {r.policy} on {r.scenario} (kernel {r.kernel}, {r.accel}; "
            f"baseline {BASELINE})"
        )
        lines.append(
            f"  {'':4} {'kind':<11} {'groups':<22} {'measured':>12} {BASELINE:>12}  expected"
        )
        for e in r.expectations:
            mark = "ok" if e.ok else "FAIL"
            groups = ",".join(e.groups) or "-"
            lines.append(
                f"  {mark:<4} {e.kind:<11} {groups:<22} {format_value(e.measured, e.unit):>12} "
                f"{format_value(e.baseline, e.unit):>12}  {e.expected}"
            )
        if r.counters:
            runs = f" (sum of {len(r.runs)} runs)" if len(r.runs) > 1 else ""
            shown = ", ".join(f"{k} {v}" for k, v in r.counters.items())
            lines.append(f"  counters{runs}: {shown}")
        lines.append("")
    if results and results[0].accel == "tcg":
        lines.append(f"note: {TCG_NOTE}; docs/behaviour.md says which expectations hold up.")
    return "\n".join(lines).rstrip() + "\n"


def results_json(results: Sequence[ScenarioResult]) -> list[dict[str, object]]:
    """Every (policy, scenario, kernel) result's object: the `results` of `schedc test
    --format json` (docs/json.md)."""
    return [r.to_json() for r in results]
