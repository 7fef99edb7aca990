"""Behaviour evidence for the repository: scenarios given to `repo add --scenario` (or
`submit_policy`), the behaviour test run on the very object that was checked and verified, and
its results as the `BehaviourReport`s that verification.json keeps (docs/repo.md).

A failed expectation is not hidden: the report is stored marked failed (`ok: false`), the add
says so with an error diagnostic at the expectation's line, and `search --behaviour-passing`
leaves the policy out. Only a report whose every expectation held counts as passing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from schedc.behaviour.report import CODES, ScenarioResult, test_policies
from schedc.behaviour.run import Case
from schedc.behaviour.scenario import Scenario, ScenarioError, parse_scenario
from schedc.bench.runner import BASELINE, BenchPolicy
from schedc.diagnostics import Diagnostic, Severity
from schedc.repo.models import (
    MAX_COUNTERS,
    MAX_SCENARIO_CHARS,
    BehaviourReport,
    ExpectationRecord,
    now,
    scenario_hash,
)
from schedc.settings import Settings

MAX_FAILED_PROCESSES = 16  # kept per report; the count says how many there were


@dataclass(frozen=True)
class ScenarioInput:
    """A parsed scenario and the exact text it came from (stored with its report)."""

    scenario: Scenario
    text: str

    @property
    def hash(self) -> str:
        return scenario_hash(self.text)

    @property
    def name(self) -> str:
        return stored_name(self.scenario.name)


def stored_name(name: str) -> str:
    """A scenario's name as a report stores it: its file name up to the first dot, with
    anything but letters, digits, '_' and '-' replaced."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "scenario"


def read_scenario(text: str, path: str) -> ScenarioInput:
    """A scenario from its text; raises ScenarioError with diagnostics at its lines (a text
    larger than a report can store is refused the same way)."""
    if len(text) > MAX_SCENARIO_CHARS:
        raise ScenarioError(
            [
                Diagnostic(
                    Severity.ERROR,
                    "T001",
                    f"the scenario is {len(text)} characters; a stored scenario has at most "
                    f"{MAX_SCENARIO_CHARS}",
                    path,
                )
            ]
        )
    return ScenarioInput(parse_scenario(text, path), text)


def load_scenario_file(path: Path) -> ScenarioInput:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(
            [
                Diagnostic(
                    Severity.ERROR,
                    "T001",
                    f"cannot read the scenario: {exc.strerror}",
                    str(path),
                )
            ]
        ) from None
    if len(raw) > 4 * MAX_SCENARIO_CHARS:  # before decoding a huge file
        raw = raw[: 4 * MAX_SCENARIO_CHARS + 1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(
            [Diagnostic(Severity.ERROR, "T001", "the scenario is not UTF-8 text", str(path))]
        ) from None
    return read_scenario(text, str(path))


def check_scenarios(scenarios: Sequence[ScenarioInput]) -> None:
    """Two scenarios that would be stored under one name are refused (ValueError)."""
    names: dict[str, str] = {}
    for s in scenarios:
        if s.name in names:
            raise ValueError(
                f"the scenarios {names[s.name]} and {s.scenario.path} would both be stored as "
                f"'{s.name}': give them different file names"
            )
        names[s.name] = s.scenario.path


def report_of(
    result: ScenarioResult, scenario: ScenarioInput, content_hash: str, runs: int
) -> BehaviourReport:
    """The stored form of one `schedc test` result."""
    failed = result.processes.get("failed")
    failed_list = list(failed) if isinstance(failed, list) else []
    return BehaviourReport(
        scenario=scenario.name,
        scenario_hash=scenario.hash,
        scenario_text=scenario.text,
        content_hash=content_hash,
        kernel=result.kernel or "unknown",
        accelerator=result.accel,
        emulated=result.accel == "tcg",
        baseline=BASELINE,
        runs=runs,
        expectations=[
            ExpectationRecord(
                kind=e.kind,  # type: ignore[arg-type]
                groups=list(e.groups),
                expected=e.expected,
                measured=None if e.measured is None else round(e.measured, 6),
                baseline=None if e.baseline is None else round(e.baseline, 6),
                unit=e.unit,
                ok=e.ok,
                line=e.line,
                detail=e.detail[:4000],
            )
            for e in result.expectations
        ],
        processes={
            "count": result.processes.get("count", 0),
            "failed": failed_list[:MAX_FAILED_PROCESSES],
        },
        counters=dict(list(result.counters.items())[:MAX_COUNTERS]),
        date=now(),
    )


def run_scenarios(
    name: str,
    source: str,
    obj: Path,
    scenarios: Sequence[ScenarioInput],
    settings: Settings,
    content_hash: str,
    *,
    runs: int = 1,
    counters: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> tuple[list[BehaviourReport], list[Diagnostic]]:
    """The behaviour test of the compiled object `obj` on every scenario (one boot for all
    scenarios of one CPU count, per kernel of the matrix); `counters` names the policy's
    counters by index. Raises EnvironmentProblem without a sandbox (callers check every kernel
    with check_sandboxes before they compile)."""
    policy = BenchPolicy(name, source, obj, tuple(counters))
    results = test_policies(
        [Case(s.scenario, [policy]) for s in scenarios], settings, runs=runs, progress=progress
    )
    by_path = {s.scenario.path: s for s in scenarios}
    reports, diags = [], []
    for r in results:
        given = by_path[r.scenario_path]
        reports.append(report_of(r, given, content_hash, runs))
        diags += r.diagnostics
    return reports, diags


def failed_diagnostics(
    reports: Sequence[BehaviourReport], paths: dict[str, str]
) -> list[Diagnostic]:
    """An error per failed expectation of reports given earlier (reused, not re-run), at its
    line in the scenario: the same words `schedc test` uses."""
    out = []
    for r in reports:
        for e in r.failed:
            measured = "no data" if e.measured is None else f"{e.measured:.4g}"
            base = "-" if e.baseline is None else f"{e.baseline:.4g}"
            out.append(
                Diagnostic(
                    Severity.ERROR,
                    CODES.get(e.kind, "T200"),
                    f"{e.kind} expectation failed: expected {e.expected}; measured {measured}"
                    f"{' ' + e.unit if e.unit and e.measured is not None else ''} "
                    f"({r.baseline} baseline: {base})",
                    paths.get(r.scenario, f"{r.scenario}.scenario.toml"),
                    e.line,
                    1 if e.line else None,
                    hint=e.detail or None,
                )
            )
    return out


def summary(report: BehaviourReport) -> str:
    """`ljf on 6.12.3 (tcg): passing, 4/4 expectations` — one line for listings."""
    held = sum(1 for e in report.expectations if e.ok)
    verdict = "passing" if report.ok else "FAILING"
    emulated = ", emulated timings" if report.emulated else ""
    return (
        f"{report.scenario} on {report.kernel} ({report.accelerator}{emulated}): {verdict}, "
        f"{held}/{len(report.expectations)} expectations held"
    )
