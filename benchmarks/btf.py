"""How long reading a kernel's sched_ext facts from its BTF takes (schedc/verifier/btf.py), cold
(parse the raw vmlinux.btf) and warm (the JSON cached by the file's hash), per kernel of the
matrix; and the CPU time, which the load of other processes disturbs less.

    python benchmarks/btf.py [--repeat N] [BTF...]

Without BTF files: every kernel in use (`kernels` in schedc.toml, SCHEDC_KERNELS).
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

from schedc.settings import kernel_matrix, kernel_name, load_settings  # noqa: E402
from schedc.verifier.btf import facts_of, kernel_facts, read_btf  # noqa: E402


def timed(fn: object, repeat: int) -> tuple[float, float]:
    """(median wall, median CPU) seconds of `repeat` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("btf", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    files = [(str(p), p) for p in args.btf]
    if not files:
        for kit in kernel_matrix(load_settings(), attach=False):
            if kit.btf:
                files.append((kernel_name(kit), Path(kit.btf)))
    if not files:
        print("no BTF: pass files or set `kernels` (SCHEDC_KERNELS)", file=sys.stderr)
        return 2
    print(
        f"{'kernel':<14} {'MB':>5} {'types':>7} {'kfuncs':>6}  {'parse s':>8} {'cpu':>6}"
        f"  {'facts s':>8}  {'cached s':>8}"
    )
    for name, path in files:
        data = path.read_bytes()
        btf = read_btf(data)
        facts = facts_of(btf)
        parse_wall, parse_cpu = timed(lambda d=data: read_btf(d), args.repeat)
        facts_wall, _ = timed(lambda b=btf: facts_of(b), args.repeat)
        with tempfile.TemporaryDirectory(prefix="schedc-bench-btf-") as cache:
            kernel_facts(path, Path(cache))  # fills the cache
            warm_wall, _ = timed(lambda p=path, c=cache: kernel_facts(p, Path(c)), args.repeat)
        print(
            f"{name:<14} {len(data) / 1e6:>5.1f} {len(btf.types) - 1:>7} {len(facts.kfuncs):>6}"
            f"  {parse_wall:>8.2f} {parse_cpu:>6.2f}  {facts_wall:>8.2f}  {warm_wall:>8.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
