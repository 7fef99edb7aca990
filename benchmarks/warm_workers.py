"""Per-call latency of the agent's compile and check calls: workers forked by the warm zygote
against a fresh `python -m schedc.agent.worker` per call.

    python benchmarks/warm_workers.py [--calls N] [--format human|json]

Each call goes through the MCP server's runner, as `schedc mcp` runs it: `compile_policy` and
`check_policy` of a DSL draft, a different text each call (nothing is reused from a cache but
the vmlinux.h and the precompiled header, as for an agent's drafts). The warm zygote's own
start (its imports, once per server) is printed on its own and not counted per call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from schedc.agent.runner import Runner
from schedc.repo.catalog import init_repo

ROOT = Path(__file__).resolve().parent.parent
DRAFT = (ROOT / "examples" / "fifo.sched").read_text()


def draft(n: int) -> str:
    return DRAFT.replace("fifo", f"fifo{n}", 1) + f"\n# draft {n}\n"


def timed(runner: Runner, op: str, n: int) -> float:
    started = time.monotonic()
    result = runner.call(op, {"source": draft(n)})
    if result.get("ok") is not True:
        raise SystemExit(f"{op} failed: {json.dumps(result)[:400]}")
    return time.monotonic() - started


def measure(warm: bool, calls: int, repo: Path) -> dict[str, object]:
    runner = Runner(repo=repo, warm_workers=warm)
    try:
        started = time.monotonic()
        timed(runner, "compile_policy", 10_000)  # warm: starts the zygote; cold: the caches
        first = time.monotonic() - started
        out: dict[str, object] = {"first_call_s": round(first, 3)}
        for op in ("compile_policy", "check_policy"):
            times = [timed(runner, op, n) for n in range(calls)]
            out[op] = {
                "median_s": round(statistics.median(times), 3),
                "min_s": round(min(times), 3),
                "max_s": round(max(times), 3),
            }
        return out
    finally:
        runner.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--format", choices=("human", "json"), default="human")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "policies"
        init_repo(repo)
        results = {
            "cold": measure(False, args.calls, repo),
            "warm": measure(True, args.calls, repo),
        }
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.calls} calls each, medians (min-max), seconds per call")
    print(f"{'':14} {'cold worker':>22} {'warm zygote':>22} {'ratio':>7}")
    for op in ("compile_policy", "check_policy"):
        cold, warm = results["cold"][op], results["warm"][op]  # type: ignore[index]
        ratio = cold["median_s"] / warm["median_s"] if warm["median_s"] else float("nan")
        print(
            f"{op:14} {cold['median_s']:>8.3f} ({cold['min_s']:.3f}-{cold['max_s']:.3f})"
            f" {warm['median_s']:>8.3f} ({warm['min_s']:.3f}-{warm['max_s']:.3f}) {ratio:>6.1f}x"
        )
    print(
        f"first call: cold {results['cold']['first_call_s']} s, warm (zygote start included) "
        f"{results['warm']['first_call_s']} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
