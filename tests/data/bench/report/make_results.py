"""Writes the results files of tests/test_bench_targets.py (results-met.json, results-missed.json)
in the shape `python benchmarks/report.py --json FILE` keeps: each result is a real BenchResult's
to_json() (schedc/bench/runner.py), with made-up run values and an environment of the fields the
runner records. Run it again only when that shape changes:

    .venv/bin/python tests/data/bench/report/make_results.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from schedc.bench.runner import TCG_NOTE, BenchPolicy, BenchResult, RunOutcome  # noqa: E402
from schedc.workloads import RECIPES, WorkloadParams  # noqa: E402

PARAMS = WorkloadParams(duration=2.0, scale=0.5, cpus=2)
EJECTED = ("the kernel ejected the scheduler during the run (runnable task stall): "
           "cyclictest[212] failed to run for 30.2s")
BASE = {
    "cyclictest": (2932.0, 2632.0, 2359.0, 2518.0, 2742.0),
    "batch-makespan": (1.81, 1.85, 1.86, 1.88, 1.82),
    "stress-ng": (386.0, 379.0, 360.0, 389.0, 396.0),
}


def environment(workload: str) -> dict[str, object]:
    recipe = RECIPES[workload]
    return {
        "kernel": "6.12.117", "vcpus": 2, "memory_kb": 1000388, "accelerator": "tcg",
        "emulated": True, "timing_note": TCG_NOTE,
        "where": "sandbox: a virtme-ng QEMU guest booting the sched_ext kernel",
        "order": "per run: the baseline, then each policy (interleaved A B A B)",
        "runs": 5, "warmup_runs": 1,
        "recipe": {"summary": recipe.summary, "command": recipe.command_line(PARAMS),
                   "params": PARAMS.to_json()},
        "schedc": "0.1.0", "date": "2026-12-02T03:30:00Z", "host_machine": "x86_64",
        "host_cpu": "AMD EPYC", "host_cpus": 2,
        "qemu": "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
        "packages": {"rt-tests": "2.4-1", "stress-ng": "0.15.06-2"},
    }


def result(workload: str, name: str, values: tuple[float | None, ...],
           base: tuple[float, ...] | None = None) -> dict[str, object]:
    base_runs = [RunOutcome(i + 1, v, seconds=3.1) for i, v in enumerate(base or BASE[workload])]
    runs = [RunOutcome(i + 1, v, None if v is not None else EJECTED, seconds=3.2)
            for i, v in enumerate(values)]
    policy = BenchPolicy(name, f"examples/{name}.sched", Path(f"/tmp/x/{name}.bpf.o"))
    data = BenchResult(RECIPES[workload], policy, base_runs, runs, environment(workload),
                       ops=name).to_json()
    return data


def report(results: list[dict[str, object]], errors: dict[str, str]) -> dict[str, object]:
    return {"results": results, "errors": errors,
            "boot_seconds": {w: 300.0 for w in dict.fromkeys(r["workload"] for r in results)},
            "params": PARAMS.to_json(), "runs": 5}


MET = report([
    result("cyclictest", "interactive_boost", (1500.0, 1700.0, 1600.0, 1400.0, 1650.0)),
    result("cyclictest", "ljf", (213457.0, 209276.0, 222270.0, 210000.0, 215000.0)),
    result("cyclictest", "vtime_fair", (3100.0, 2900.0, 3300.0, 2800.0, 3000.0)),
    # median 1.48x, but an interval that reaches past 1.5: met, within noise of the bound
    result("cyclictest", "weighted_share", (3000.0, 4500.0, 3900.0, 2800.0, 4200.0)),
    result("batch-makespan", "ljf", (1.45, 1.5, 1.48, 1.52, 1.47)),
    result("stress-ng", "vtime_fair", (420.0, 411.0, 432.0, 423.0, 415.0)),
], {"hackbench": "hackbench needs rt-tests (hackbench): apt-get install rt-tests"})

MISSED = report([
    result("cyclictest", "deadline", (12184.0, None, 11633.0, 13360.0, 12000.0)),
    result("cyclictest", "fifo", (34671.0, 32452.0, 35803.0, 33000.0, 34000.0)),
    result("cyclictest", "interactive_boost", (2885.0, 2309.0, 4530.0, 2700.0, 3000.0)),
    result("cyclictest", "ljf", (213457.0, 209276.0, 222270.0, 210000.0, 215000.0)),
    result("cyclictest", "sjf", (2600.0, 2700.0), base=(2932.0, 2632.0)),
    result("cyclictest", "vtime_fair", (3100.0, 2900.0, 3300.0, 2800.0, 3000.0)),
    result("batch-makespan", "ljf", (1.69, 1.62, 1.97, 1.75, 1.8)),
    result("stress-ng", "fifo", (190.0, 200.0, 185.0, 195.0, 198.0)),
], {})

if __name__ == "__main__":
    for name, data in (("results-met.json", MET), ("results-missed.json", MISSED)):
        (HERE / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {HERE / name}")
