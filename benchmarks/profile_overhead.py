"""The profiler's own cost: `schedc profile` sampling a known workload at several intervals.

    python benchmarks/profile_overhead.py [--busy N] [--sleepy N] [--threads N]
                                          [--seconds S] [--intervals 10,100] [--all]

Starts N busy processes (a spinning thread each), N sleepy processes (wake ~100/s, run
~0.2 ms) and one process with N napping threads (tests/profile_child.py), profiles them with
schedc.profile.sample.collect for S seconds at each interval, and prints per interval the
profiler's CPU time as a fraction of one CPU, its cost per round and per thread-read, and
what it saw. `--all` also profiles every task on the machine (root only). Figures for
docs/profile.md, "Overhead"; not an assertion (the machine's load moves them).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.profile.model import Target  # noqa: E402
from schedc.profile.sample import collect  # noqa: E402

CHILD = str(ROOT / "tests" / "profile_child.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=1)
    parser.add_argument("--sleepy", type=int, default=4)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--intervals", default="10,100")
    parser.add_argument("--all", action="store_true", help="also profile every task (root)")
    args = parser.parse_args()
    intervals = [int(x) for x in args.intervals.split(",")]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(args.busy):
            procs.append(subprocess.Popen([sys.executable, CHILD, "spin", f"bench-busy{i}"]))
        for i in range(args.sleepy):
            procs.append(subprocess.Popen([sys.executable, CHILD, "nap", f"bench-nap{i}"]))
        if args.threads:
            procs.append(
                subprocess.Popen(
                    [sys.executable, CHILD, "multi", "bench-multi", "bench-w", str(args.threads)]
                )
            )
        time.sleep(1.0)  # started and named
        targets = [("pids", Target(mode="pids", pids=[p.pid for p in procs]))]
        if args.all and os.geteuid() == 0:
            targets.append(("all", Target(mode="all")))
        print(
            f"workload: {args.busy} busy, {args.sleepy} sleepy processes, 1 process with "
            f"{args.threads} napping threads; {os.cpu_count()} CPUs; "
            f"load {os.getloadavg()[0]:.1f}"
        )
        print("target  interval  rounds  threads  groups  profiler CPU  per round  per thread")
        for name, target in targets:
            for interval in intervals:
                profile = collect(target, seconds=args.seconds, interval_ms=interval)
                threads = sum(g.threads for g in profile.groups)
                per_round = profile.overhead.cpu_seconds / max(profile.samples, 1)
                print(
                    f"{name:6}  {interval:6} ms  {profile.samples:6}  {threads:7}  "
                    f"{len(profile.groups):6}  {profile.overhead.fraction_of_one_cpu:11.2%}  "
                    f"{per_round * 1e3:6.2f} ms  {per_round / max(threads, 1) * 1e6:7.1f} us"
                )
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
