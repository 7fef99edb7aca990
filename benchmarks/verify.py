"""Kernel-verifier figures for the example policies, in one boot of the sandbox kernel: boot
time, per-object load time, the total, and the instructions processed per example, next to the
kernel's hand-written scx_simple where the example does the same thing (vtime_fair, fifo).

    python benchmarks/verify.py [--kernel-examples DIR]

Needs the sandbox settings (SCHEDC_KERNEL, SCHEDC_BPFTOOL, SCHEDC_BTF; SCHEDC_LIBBPF_INCLUDE
and DIR = an extracted linux-source tools/sched_ext for the hand-written comparison).
Goal (issue 4): generated code within 1.1x of hand-written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.compiler.pipeline import compile_policy  # noqa: E402
from schedc.compiler.toolchain import load_toolchain  # noqa: E402
from schedc.settings import load_settings  # noqa: E402
from schedc.verifier.sandbox import load_in_sandbox  # noqa: E402

# Which example implements the same policy as a hand-written kernel example.
EQUIVALENT = {"vtime_fair": "scx_simple"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel-examples", type=Path, help="tools/sched_ext of a kernel tree")
    args = ap.parse_args()
    settings = load_settings()
    tc = load_toolchain(settings)
    objects: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        for ex in sorted((ROOT / "examples").glob("*.sched")):
            res = compile_policy(ex, settings, out=build / f"{ex.stem}.bpf.o", toolchain=tc)
            assert res.ok, res.diagnostics
            objects[ex.stem] = res.object_path
        kdir = args.kernel_examples
        if kdir and (kdir / "scx_simple.bpf.c").is_file():
            inc = kdir / "include"
            res = compile_policy(kdir / "scx_simple.bpf.c", settings, out=build / "scx_simple.bpf.o",
                                 include_dirs=[inc, inc / "bpf-compat"], toolchain=tc)
            assert res.ok, res.diagnostics
            objects["scx_simple"] = res.object_path
        stamps: list[tuple[float, str]] = []
        start = time.monotonic()
        reports = load_in_sandbox(
            list(objects.values()), settings,
            progress=lambda m: stamps.append((time.monotonic() - start, m)),
        )
        total = time.monotonic() - start
    done = [t for t, m in stamps if m.startswith("verified")]
    boot = done[0] if done else total
    print(f"{len(objects)} objects in one boot: {total:.1f} s in all "
          f"(boot to first result {boot:.1f} s, includes the first load)")
    print()
    print(f"{'object':20}{'programs':>10}{'insns':>8}{'verify us':>11}{'load s':>8}")
    insns: dict[str, int] = {}
    for i, (name, report) in enumerate(zip(objects, reports, strict=True)):
        n = sum(p.insns_processed or 0 for p in report.programs)
        us = sum(p.verification_time_us or 0 for p in report.programs)
        insns[name] = n
        load = done[i] - (done[i - 1] if i else 0.0) if i < len(done) else float("nan")
        status = "" if report.ok else f"  REJECTED: {report.error}"
        print(f"{name:20}{len(report.programs):>10}{n:>8}{us:>11}{load:>8.1f}{status}")
    print()
    for ours, theirs in EQUIVALENT.items():
        if ours in insns and theirs in insns and insns[theirs]:
            ratio = insns[ours] / insns[theirs]
            print(f"{ours} vs hand-written {theirs}: {insns[ours]} / {insns[theirs]} "
                  f"instructions processed = {ratio:.2f}x (goal <= 1.1x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
