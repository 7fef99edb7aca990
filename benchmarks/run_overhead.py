"""Where a run test's guest time goes: attach (`bpftool struct_ops register`, the kernel
verifier included), the run (the workload for its seconds, then stopped), detach (the pin
removed, until sched_ext says disabled), per policy, in one boot per kernel.

    python benchmarks/run_overhead.py [--run SECONDS] [--workload NAME] [--kernel KIT]...
                                      [POLICY...]

POLICY defaults to three examples (fifo, vtime_fair, layered). The phases come from the
guest's own uptime (RunReport.phases, stamped by the run script), so the boot and the load
of every object before the runs are not in them; the boot is printed on its own. Issue 17's
goal: a 10 s run costs at most 13 s of guest time (total / run seconds <= 1.3). Under TCG the
guest's clock is emulated: compare the phases with each other, not with real hardware.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.compiler.pipeline import compile_policy  # noqa: E402
from schedc.settings import each_kernel, load_settings  # noqa: E402
from schedc.verifier.sandbox import load_in_sandbox  # noqa: E402
from schedc.workloads import DEFAULT_WORKLOAD  # noqa: E402

DEFAULT = ["fifo", "vtime_fair", "layered"]
GOAL = 1.3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policies", nargs="*", type=Path,
                    help="policies to run (default: examples " + ", ".join(DEFAULT) + ")")
    ap.add_argument("--run", type=float, default=10.0, help="seconds per run (default 10)")
    ap.add_argument("--workload", default=DEFAULT_WORKLOAD, help="the run test's load")
    ap.add_argument("--kernel", dest="kernels", action="append", metavar="KIT")
    args = ap.parse_args()
    policies = args.policies or [ROOT / "examples" / f"{n}.sched" for n in DEFAULT]
    settings = load_settings(kernels=args.kernels)
    rows: list[tuple[str, str, dict[str, float] | None, str | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (kernel, name, _say) in enumerate(each_kernel(settings, None, attach=True)):
            objects = []
            for policy in policies:
                res = compile_policy(policy, kernel, out=Path(tmp) / f"{n}-{policy.stem}.bpf.o")
                if not res.ok:
                    print(f"{policy}: did not compile: {res.diagnostics[:1]}", file=sys.stderr)
                    return 1
                objects.append(res.object_path)
            print(f"Linux {name}: booting, {len(objects)} run tests of {args.run:g} s …",
                  file=sys.stderr)
            started = time.monotonic()
            stamps: list[tuple[float, str]] = []
            reports = load_in_sandbox(
                objects, kernel, run_seconds=args.run, workload=args.workload,
                progress=lambda m, seen=stamps: seen.append((time.monotonic(), m)),
            )
            wall = time.monotonic() - started
            # The first object's verdict: the boot and the loads, before any run.
            loaded = [t for t, m in stamps if m.startswith("verified")]
            boot = (loaded[0] - started) if loaded else float("nan")
            print(f"Linux {name}: {wall:.1f} s host wall time in all, the first verdict "
                  f"after {boot:.1f} s")
            for policy, report in zip(policies, reports, strict=True):
                run = report.run
                problem = None if report.ok else (report.error or "failed")
                rows.append((name, policy.stem, run.phases if run else None, problem))
    print()
    print(f"{'kernel':10}{'policy':20}{'attach s':>10}{'run s':>8}{'detach s':>10}"
          f"{'total s':>9}{'total/run':>11}")
    ratios = []
    for kernel, policy, phases, problem in rows:
        if not phases:
            print(f"{kernel:10}{policy:20}  no phases: {problem or 'the guest wrote no stamps'}")
            continue
        ratio = phases.get("total", 0) / args.run
        ratios.append(ratio)
        print(f"{kernel:10}{policy:20}{phases.get('attach', 0):>10.1f}{phases.get('run', 0):>8.1f}"
              f"{phases.get('detach', 0):>10.1f}{phases.get('total', 0):>9.1f}{ratio:>10.2f}x"
              + (f"  ({problem})" if problem else ""))
    if ratios:
        print(f"\nmedian total/run {statistics.median(ratios):.2f}x (goal <= {GOAL}x: a "
              f"{args.run:g} s run in at most {GOAL * args.run:g} s of guest time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
