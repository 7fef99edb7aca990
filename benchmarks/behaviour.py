"""Behaviour scenarios of the examples: what each costs under TCG and what it measures.

    python benchmarks/behaviour.py [--runs N] [--mutants] [--format human|json] [NAME...]

Every `examples/NAME.scenario.toml` runs under its example policy (and with --mutants, the
mutant of tests/test_behaviour_vm.py beside it) and under the kernel's default scheduler, all in
ONE boot of the sandbox, as `schedc test` does. Per scenario: the guest's wall time of each run
(baseline and policy, from the release of the tasks to the end of the trace), the time to attach
the policy (bpftool struct_ops register, the kernel verifier included), the trace events, and
each expectation's measured value beside the baseline's, with the verdict. The figures go into
benchmarks/README.md by hand (section "Behaviour scenarios").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.behaviour.report import ScenarioResult, format_value  # noqa: E402
from schedc.behaviour.report import test_policies as run_behaviour_tests  # noqa: E402
from schedc.behaviour.run import Case  # noqa: E402
from schedc.behaviour.scenario import load_scenario  # noqa: E402
from schedc.bench.runner import compile_for_bench  # noqa: E402
from schedc.bench.stats import median  # noqa: E402
from schedc.settings import load_settings  # noqa: E402

EXAMPLES = ROOT / "examples"


def _median(values: list[float]) -> float | None:
    return median(values) if values else None


def summarize(result: ScenarioResult) -> dict[str, Any]:
    runs = result.runs
    return {
        "scenario": result.scenario,
        "policy": result.policy,
        "ok": result.ok,
        "policy_seconds": _median(
            [r["policy"]["seconds"] for r in runs if r["policy"].get("seconds") is not None]
        ),
        "baseline_seconds": _median(
            [r["baseline"]["seconds"] for r in runs if r["baseline"].get("seconds") is not None]
        ),
        "attach_seconds": _median(
            [r["policy"]["attach_seconds"] for r in runs if r["policy"].get("attach_seconds")]
        ),
        "trace_events": _median([r["policy"]["trace_events"] for r in runs]),
        "baseline_trace_events": _median([r["baseline"]["trace_events"] for r in runs]),
        "expectations": [
            {
                "kind": e.kind,
                "groups": e.groups,
                "expected": e.expected,
                "measured": e.measured,
                "baseline": e.baseline,
                "unit": e.unit,
                "ok": e.ok,
                "per_run": e.runs,
            }
            for e in result.expectations
            if e.line is not None
        ],
    }


def render(rows: list[dict[str, Any]], seconds: float, runs: int) -> str:
    out = [
        f"one boot, {len(rows)} (scenario, policy) pairs, {runs} run(s) each: {seconds:.0f} s",
        "",
        "| scenario | policy | run s (policy / EEVDF) | attach s | trace events | expectation "
        "| measured | EEVDF | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        first = True
        for e in row["expectations"]:
            head = (
                [
                    row["scenario"],
                    row["policy"],
                    f"{row['policy_seconds'] or 0:.1f} / {row['baseline_seconds'] or 0:.1f}",
                    f"{row['attach_seconds'] or 0:.1f}",
                    f"{row['trace_events'] or 0:g}",
                ]
                if first
                else ["", "", "", "", ""]
            )
            first = False
            out.append(
                "| "
                + " | ".join(
                    [
                        *head,
                        f"{e['kind']} {'/'.join(e['groups'])}: {e['expected']}",
                        format_value(e["measured"], e["unit"]),
                        format_value(e["baseline"], e["unit"]),
                        "pass" if e["ok"] else "**fail**",
                    ]
                )
                + " |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="examples (default: every one with a scenario)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--mutants", action="store_true", help="also each example's mutant")
    ap.add_argument("--format", choices=["human", "json"], default="human")
    args = ap.parse_args(argv)
    names = args.names or sorted(
        p.name.removesuffix(".scenario.toml") for p in EXAMPLES.glob("*.scenario.toml")
    )
    settings = load_settings()
    build = Path(tempfile.mkdtemp(prefix="schedc-behaviour-bench-"))
    sources: list[Path] = []
    per_case = 1
    for name in names:
        sources.append(EXAMPLES / f"{name}.sched")
    if args.mutants:
        sys.path.insert(0, str(ROOT / "tests"))
        from tests.test_behaviour_vm import mutant_source  # noqa: PLC0415

        per_case = 2
        sources = [s for n in names for s in (EXAMPLES / f"{n}.sched", mutant_source(build, n))]
    compiled = compile_for_bench(sources, settings, build / "objects")
    if not compiled.ok:
        for d in compiled.diagnostics:
            print(d, file=sys.stderr)
        return 1
    cases = [
        Case(
            load_scenario(EXAMPLES / f"{name}.scenario.toml"),
            compiled.policies[per_case * i : per_case * (i + 1)],
        )
        for i, name in enumerate(names)
    ]
    started = time.monotonic()
    results = run_behaviour_tests(
        cases, settings, runs=args.runs, progress=lambda m: print(m, file=sys.stderr)
    )
    seconds = time.monotonic() - started
    rows = [summarize(r) for r in results]
    if args.format == "json":
        print(json.dumps({"seconds": seconds, "runs": args.runs, "results": rows}, indent=1))
    else:
        print(render(rows, seconds, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
