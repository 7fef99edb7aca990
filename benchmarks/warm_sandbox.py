"""Per-call latency of the agent's sandbox calls, warm guest against one boot per call.

    python benchmarks/warm_sandbox.py [--calls N] [--run SECONDS] [--format human|json]

Each call goes through the MCP server's runner (a worker process per call, as `schedc mcp`
runs them): `verify_policy` of a DSL draft (each call a slightly different policy, so nothing
is reused), then `verify_policy` with a run test of --run seconds. Cold: every call boots its
own guest. Warm: a pool keeps one guest per kernel (schedc.verifier.warm), as `schedc mcp`
does, booted before the first call and not counted in the per-call figures (its boot is printed on its own). Under TCG
timings are emulated: compare the two columns, not the figures with a real machine's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from schedc.agent.runner import Runner
from schedc.settings import kernel_matrix, load_settings
from schedc.verifier.warm import WarmPool
from schedc.verifier.warm_client import client_for

ROOT = Path(__file__).resolve().parent.parent
DRAFT = (ROOT / "examples" / "fifo.sched").read_text()


def draft(n: int) -> str:
    # A different slice each time: a new policy text, compiled and verified afresh.
    return DRAFT.replace("fifo", f"fifo{n}", 1) + f"\n# draft {n}\n"


def timed(runner: Runner, args: dict[str, object]) -> float:
    started = time.monotonic()
    result = runner.call("verify_policy", args)
    if result.get("ok") is not True:
        raise SystemExit(f"verify_policy failed: {json.dumps(result)[:2000]}")
    return time.monotonic() - started


def measure(runner: Runner, calls: int, run_s: float, offset: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"verify": [], "run": []}
    for n in range(calls):
        out["verify"].append(timed(runner, {"source": draft(offset + n)}))
        print(f"  verify {n + 1}/{calls}: {out['verify'][-1]:.1f} s", file=sys.stderr)
    for n in range(calls):
        args = {"source": draft(offset + 100 + n), "run_seconds": run_s, "workload": "spin"}
        out["run"].append(timed(runner, args))
        print(f"  verify --run {run_s:g}: {out['run'][-1]:.1f} s", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--run", type=float, default=10.0)
    ap.add_argument("--format", choices=("human", "json"), default="human")
    args = ap.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="schedc-bench-warm-") as repo:
        cold_runner = Runner(repo=Path(repo))
        print("one boot per call:", file=sys.stderr)
        cold = measure(cold_runner, args.calls, args.run, 0)
        warm_runner = Runner(repo=Path(repo))
        pool = WarmPool(settings, lambda m: print(f"  {m}", file=sys.stderr)).start()
        try:
            started = time.monotonic()
            for kernel in kernel_matrix(settings, attach=True):  # what the first call asks for
                client = client_for(kernel)
                while client is not None and not client.ready():
                    time.sleep(0.1)
            boot = time.monotonic() - started
            print(f"warm guest up after {boot:.1f} s; warm:", file=sys.stderr)
            hot = measure(warm_runner, args.calls, args.run, 1000)
        finally:
            pool.close()
    figures = {
        kind: {
            "cold_p50_s": round(statistics.median(cold[kind]), 2),
            "warm_p50_s": round(statistics.median(hot[kind]), 2),
            "cold_s": [round(x, 2) for x in cold[kind]],
            "warm_s": [round(x, 2) for x in hot[kind]],
        }
        for kind in ("verify", "run")
    }
    if args.format == "json":
        print(json.dumps({"warm_boot_s": round(boot, 2), "run_seconds": args.run, **figures}))
    else:
        print(f"warm guest boot (once): {boot:.1f} s")
        for kind, f in figures.items():
            what = "verify_policy" if kind == "verify" else f"verify_policy run {args.run:g} s"
            print(f"{what:28} cold p50 {f['cold_p50_s']:6.1f} s   warm p50 {f['warm_p50_s']:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
