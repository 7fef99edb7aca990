"""Kernel-verifier figures for the example policies on every kernel of the matrix, side by
side: boot time, per-object load time and the instructions processed per example, one boot per
kernel, next to the kernel's hand-written scx_simple where an example does the same thing
(vtime_fair). Every object is compiled for each kernel against that kernel's BTF and headers.

    python benchmarks/verify.py [--kernel KIT]... [--kernel-examples DIR]

Kernels: --kernel (repeatable), else the settings' `kernels` / SCHEDC_KERNELS, else
SCHEDC_KERNEL. scx_simple comes from each kit's own `sched_ext-examples` folder (that kernel's
tools/sched_ext) where it has one, else from DIR (--kernel-examples, else the
`kernel_examples` setting: an extracted linux-source tools/sched_ext). Under TCG, load times
are emulated: compare them between kernels, not with real hardware.

Each example is loaded twice: as written, and with the compiler's wake-up latency defaults off
(`latency kick_idle = false, wakeup_preempt = false`, the `_plain` rows). The difference is
what those defaults cost (docs/dsl.md section 6.1), and `vtime_fair_plain` is the like-for-like
comparison with scx_simple, which has none of them (issue 17: at most 1.05x).

It also loads one small policy per CPU set size (2, 16 and 64 CPUs, and a complement `on cpus
not 0-1`) and prints the instructions select_cpu needs for each (issue 17: at most 300 for a
64-CPU set), and the instructions dispatch and enqueue need with and without `max_wait` for
each dispatch kind (issue 18). --max-wait-only loads just those.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.compiler.pipeline import compile_policy  # noqa: E402
from schedc.compiler.toolchain import load_toolchain  # noqa: E402
from schedc.settings import Settings, each_kernel, load_settings  # noqa: E402
from schedc.verifier.sandbox import LoadReport, load_in_sandbox  # noqa: E402

# Which example implements the same policy as a hand-written kernel example.
EQUIVALENT = {"vtime_fair": "scx_simple"}
# CPU sets: one pinned class beside the rest, by the set it is pinned to.
CPU_SETS = {"cpus_2": "0-1", "cpus_16": "0-15", "cpus_64": "0-63", "cpus_not_0_1": "not 0-1"}
CPU_SET_POLICY = """scheduler {name} "a class on CPUs {cpus}" {{
  class pinned when task.nice > 0 on cpus {cpus}
  class rest otherwise
  queue pq for pinned fifo
  queue rq for rest vtime
  dispatch pq then rq, aging 100ms
}}
"""

# max_wait: one ordered queue below a fifo one, by dispatch kind; each compiled with and
# without the clause ("_0").
MAX_WAIT_POLICY = """scheduler {name} "a wait-bounded queue, {kind} dispatch" {{
  class hi when task.nice < 0
  class lo otherwise
  queue hq for hi fifo
  queue lq for lo {order}{wait}
  dispatch {dispatch}
  select cpu idle
}}
"""
MAX_WAIT_CASES = {
    "strict": ("ordered by task.avg_runtime ascending lag 5s", "hq then lq, aging 100ms"),
    "weighted": ("vtime", "weighted hq: 3, lq: 1"),
    "shares": ("deadline 5ms", "shares hq: 3, lq: 1"),
}


def compile_max_wait(settings: Settings, build: Path, tc: object) -> dict[str, Path]:
    objects: dict[str, Path] = {}
    for kind, (order, dispatch) in MAX_WAIT_CASES.items():
        for name, wait in ((f"wait_{kind}_0", ""), (f"wait_{kind}", " max_wait 200ms")):
            src = build / f"{name}.sched"
            src.write_text(
                MAX_WAIT_POLICY.format(
                    name=name, kind=kind, order=order, wait=wait, dispatch=dispatch
                )
            )
            res = compile_policy(src, settings, out=build / f"{name}.bpf.o", toolchain=tc)
            assert res.ok, res.diagnostics
            objects[name] = res.object_path
    return objects


def callback_insns(report: LoadReport, callback: str) -> int | None:
    found = [p for p in report.programs if p.name.endswith("_" + callback)]
    return found[0].insns_processed if found and report.ok else None


def print_max_wait(name: str, reports: dict[str, LoadReport]) -> None:
    for obj, report in reports.items():
        if obj.startswith("wait_") and not report.ok:
            tail = "\n".join((report.log or report.error or "").splitlines()[-15:])
            print(f"Linux {name}: {obj} REJECTED:\n{tail}", file=sys.stderr)
    for callback in ("dispatch", "enqueue"):
        cells = []
        for kind in MAX_WAIT_CASES:
            if f"wait_{kind}" in reports:
                before = callback_insns(reports[f"wait_{kind}_0"], callback)
                after = callback_insns(reports[f"wait_{kind}"], callback)
                cells.append(f"{kind} {before or 'REJECTED'} -> {after or 'REJECTED'}")
        if cells:
            print(f"Linux {name}: {callback} instructions without -> with max_wait: "
                  + ", ".join(cells))


PLAIN = "  latency kick_idle = false, wakeup_preempt = false\n"


def plain_variant(source: str, name: str) -> str:
    """An example's source with the compiler's wake-up latency defaults off, renamed."""
    head, brace, tail = source.rpartition("}")
    renamed = re.sub(r"\bscheduler\s+\w+", f"scheduler {name}", head, count=1)
    return renamed + PLAIN + brace + tail


def examples_folder(kernel: Settings, given: Path | None) -> Path | None:
    """Where this kernel's scx_simple comes from: --kernel-examples, else the kit's own
    sched_ext-examples (the same kernel's tools/sched_ext), else the kernel_examples setting."""
    if given is not None:
        return given
    if kernel.kernel:
        own = Path(kernel.kernel).parent / "sched_ext-examples"
        if (own / "scx_simple.bpf.c").is_file():
            return own
    return Path(kernel.kernel_examples) if kernel.kernel_examples else None


def compile_all(
    settings: Settings, build: Path, kernel_examples: Path | None, max_wait_only: bool = False
) -> dict[str, Path]:
    """Every object of the benchmark, compiled against `settings`' BTF and headers."""
    build.mkdir(parents=True, exist_ok=True)
    tc = load_toolchain(settings)
    if max_wait_only:
        return compile_max_wait(settings, build, tc)
    objects: dict[str, Path] = {}
    for ex in sorted((ROOT / "examples").glob("*.sched")):
        res = compile_policy(ex, settings, out=build / f"{ex.stem}.bpf.o", toolchain=tc)
        assert res.ok, res.diagnostics
        objects[ex.stem] = res.object_path
        plain = build / f"{ex.stem}_plain.sched"
        plain.write_text(plain_variant(ex.read_text(), f"{ex.stem}_plain"))
        res = compile_policy(plain, settings, out=build / f"{plain.stem}.bpf.o", toolchain=tc)
        assert res.ok, res.diagnostics
        objects[plain.stem] = res.object_path
    if kernel_examples and (kernel_examples / "scx_simple.bpf.c").is_file():
        inc = kernel_examples / "include"
        res = compile_policy(
            kernel_examples / "scx_simple.bpf.c",
            settings,
            out=build / "scx_simple.bpf.o",
            include_dirs=[inc, inc / "bpf-compat"],
            toolchain=tc,
        )
        if res.ok:
            objects["scx_simple"] = res.object_path
        else:
            print(f"{kernel_examples / 'scx_simple.bpf.c'} did not compile for this kernel: "
                  + "; ".join(str(d) for d in res.diagnostics[:3]), file=sys.stderr)
    else:
        print(f"no scx_simple.bpf.c for this kernel ({kernel_examples}): no hand-written "
              "comparison (a kit's sched_ext-examples, --kernel-examples or the "
              "kernel_examples setting)", file=sys.stderr)
    for name, cpus in CPU_SETS.items():
        src = build / f"{name}.sched"
        src.write_text(CPU_SET_POLICY.format(name=name, cpus=cpus))
        res = compile_policy(src, settings, out=build / f"{name}.bpf.o", toolchain=tc)
        assert res.ok, res.diagnostics
        objects[name] = res.object_path
    objects.update(compile_max_wait(settings, build, tc))
    return objects


def one_kernel(objects: dict[str, Path], settings: Settings) -> dict[str, object]:
    """One boot: the reports, the boot time (to the first result) and each object's load time."""
    stamps: list[tuple[float, str]] = []
    start = time.monotonic()
    reports = load_in_sandbox(
        list(objects.values()),
        settings,
        progress=lambda m: stamps.append((time.monotonic() - start, m)),
    )
    total = time.monotonic() - start
    done = [t for t, m in stamps if m.startswith("verified")]
    loads = [done[i] - (done[i - 1] if i else 0.0) for i in range(len(done))]
    return {
        "reports": dict(zip(objects, reports, strict=True)),
        "total": total,
        "boot": done[0] if done else total,
        "loads": dict(zip(objects, loads, strict=False)),
    }


def insns(report: LoadReport) -> int:
    return sum(p.insns_processed or 0 for p in report.programs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", dest="kernels", action="append", metavar="KIT")
    ap.add_argument("--kernel-examples", type=Path, help="tools/sched_ext of a kernel tree")
    ap.add_argument("--max-wait-only", action="store_true", help="only the max_wait figures")
    args = ap.parse_args()
    settings = load_settings(kernels=args.kernels)
    figures: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, (kernel, name, _say) in enumerate(each_kernel(settings, None, attach=False)):
            print(f"compiling for Linux {name} …", file=sys.stderr)
            objects = compile_all(
                kernel, Path(tmp) / str(n), examples_folder(kernel, args.kernel_examples),
                args.max_wait_only,
            )
            print(f"booting Linux {name} …", file=sys.stderr)
            figures[name] = one_kernel(objects, kernel)
    names = list(figures)
    rows: list[str] = []
    for f in figures.values():
        rows += [obj for obj in f["reports"] if obj not in rows]  # type: ignore[attr-defined]
    for name, f in figures.items():
        print(
            f"Linux {name}: {len(f['reports'])} objects in one boot, "  # type: ignore[arg-type]
            f"{f['total']:.1f} s in all "
            f"(boot to first result {f['boot']:.1f} s, includes the first load)"
        )
    print()
    head = "".join(f"{'insns ' + n:>18}{'load s':>8}" for n in names)
    print(f"{'object':22}{'programs':>10}{head}")
    for obj in rows:
        cells = ""
        programs = 0
        for n in names:
            report: LoadReport | None = figures[n]["reports"].get(obj)  # type: ignore[attr-defined]
            load = figures[n]["loads"].get(obj, float("nan"))  # type: ignore[attr-defined]
            if report is None:
                count = "–"
            else:
                count = str(insns(report)) if report.ok else "REJECTED"
                programs = programs or len(report.programs)
            cells += f"{count:>18}{load:>8.1f}"
        print(f"{obj:22}{programs:>10}{cells}")
    print()
    for n in names:
        reports: dict[str, LoadReport] = figures[n]["reports"]  # type: ignore[assignment]
        for ours, theirs in EQUIVALENT.items():
            for variant, note in ((ours, "as written"), (f"{ours}_plain", "defaults off")):
                if variant in reports and theirs in reports and insns(reports[theirs]):
                    a, b = insns(reports[variant]), insns(reports[theirs])
                    print(
                        f"Linux {n}: {variant} ({note}) vs hand-written {theirs}: {a} / {b} "
                        f"instructions processed = {a / b:.2f}x (goal <= 1.05x)"
                    )
        costs = []
        for obj in rows:
            plain = reports.get(f"{obj}_plain")
            if plain is not None and obj in reports and plain.ok and reports[obj].ok:
                costs.append(f"{obj} {insns(plain)} -> {insns(reports[obj])}")
        if costs:
            print(f"Linux {n}: latency defaults off -> on: " + ", ".join(costs))
    print()
    for n in names:
        print_max_wait(n, figures[n]["reports"])  # type: ignore[arg-type]
    if args.max_wait_only:
        return 0
    print()
    for n in names:
        reports = figures[n]["reports"]  # type: ignore[assignment]
        cells = []
        for name, cpus in CPU_SETS.items():
            select = [p for p in reports[name].programs if p.name.endswith("_select_cpu")]
            count = select[0].insns_processed if select and reports[name].ok else None
            cells.append(f"{cpus}: {count if count is not None else 'REJECTED'}")
        print(f"Linux {n}: select_cpu instructions by CPU set: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
