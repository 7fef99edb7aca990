"""Per-stage compile times for the example policies: parse, sema, lower (DSL → C) and clang
(C → .bpf.o), warm (vmlinux.h and the precompiled runtime header cached) and cold (empty cache).

    python benchmarks/compile.py [--repeat N] [--btf FILE]

Targets (issue 2): DSL → C under 20 ms; DSL → .bpf.o warm under 300 ms.
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
from schedc.compiler.toolchain import load_toolchain, runtime_pch  # noqa: E402
from schedc.settings import load_settings  # noqa: E402

STAGES = ("parse", "sema", "lower", "clang")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--btf")
    args = ap.parse_args()
    examples = sorted((ROOT / "examples").glob("*.sched"))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = load_settings(btf=args.btf, cache_dir=str(work / "cache"))
        t0 = time.perf_counter()
        tc = load_toolchain(settings)
        t1 = time.perf_counter()
        runtime_pch(tc)
        t2 = time.perf_counter()
        print(f"cold cache: vmlinux.h from BTF {1000 * (t1 - t0):.0f} ms, "
              f"precompiled runtime header {1000 * (t2 - t1):.0f} ms (once per BTF and clang)")
        print()
        header = f"{'policy':20}" + "".join(f"{s:>9}" for s in STAGES)
        header += f"{'DSL→C':>9}{'total':>9}{'no-pch':>9}"
        print(header + f"   (ms, median of {args.repeat})")
        all_front, all_total, speedups = [], [], []
        for ex in examples:
            times: dict[str, list[float]] = {s: [] for s in STAGES}
            totals, nopch = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                res = compile_policy(ex, settings, out=work / f"{ex.stem}.bpf.o", toolchain=tc)
                totals.append(time.perf_counter() - t)
                assert res.ok, res.diagnostics
                for s in STAGES:
                    times[s].append(res.timings.get(s, 0.0))
            for _ in range(args.repeat):
                t = time.perf_counter()
                compile_policy(ex, settings, out=work / f"{ex.stem}.np.bpf.o", toolchain=tc,
                               use_pch=False)
                nopch.append(time.perf_counter() - t)
            med = {s: 1000 * statistics.median(v) for s, v in times.items()}
            front = med["parse"] + med["sema"] + med["lower"]
            total = 1000 * statistics.median(totals)
            all_front.append(front)
            all_total.append(total)
            row = f"{ex.stem:20}" + "".join(f"{med[s]:9.1f}" for s in STAGES)
            plain = 1000 * statistics.median(nopch)
            speedups.append(plain / total)
            row += f"{front:9.1f}{total:9.1f}{plain:9.1f}"
            print(row)
        print()
        print(f"DSL → C: max {max(all_front):.1f} ms (target < 20 ms)")
        print(f"DSL → .bpf.o warm: max {max(all_total):.1f} ms, median "
              f"{statistics.median(all_total):.1f} ms (target < 300 ms)")
        print(f"precompiled runtime header: a warm compile is {statistics.median(speedups):.1f}x "
              f"as fast as one without it (median of the examples; "
              f"{min(speedups):.1f}x-{max(speedups):.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
