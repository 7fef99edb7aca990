"""`schedc verify POLICY...`: the kernel verifier (host or sandbox VM), optionally a run."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from schedc.cli.exit import Exit
from schedc.cli.options import (
    add_btf,
    add_format,
    add_include,
    add_kernels,
    add_link,
    add_set,
)
from schedc.cli.output import json_envelope, print_json, progress, usage_error, write_diagnostics
from schedc.compiler.pipeline import Source, verify_policies
from schedc.settings import load_settings
from schedc.verifier.sandbox import ProgramReport
from schedc.verifier.verify import KernelVerdict, VerifyResult, host_report
from schedc.workloads import DEFAULT_WORKLOAD, RUN_LOADS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compile and check each policy, then load all of them into every kernel of the "
        "matrix in one go per kernel: a throwaway QEMU guest booting each sandbox kit "
        "(SCHEDC_KERNELS, SCHEDC_KERNEL), and this host's own kernel when it has sched_ext and "
        "we are root (SCHEDC_HOST / --host-kernel). --run attaches each one in the guest "
        "under a workload and checks that it stays enabled."
    )
    parser.add_argument(
        "policies", type=Path, nargs="+", metavar="POLICY", help=".sched, .bpf.c or .bpf.o"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--sandbox",
        dest="mode",
        action="store_const",
        const="sandbox",
        help="verify in the sandbox VM only, even if the host has sched_ext",
    )
    where.add_argument(
        "--host",
        dest="mode",
        action="store_const",
        const="host",
        help="verify on this host only (load only; never attaches)",
    )
    parser.add_argument(
        "--run",
        type=float,
        metavar="SECONDS",
        help="attach each policy in the sandbox and run the workload this long",
    )
    parser.add_argument(
        "--workload",
        default=DEFAULT_WORKLOAD,
        choices=sorted(RUN_LOADS),
        help=f"load for --run (default {DEFAULT_WORKLOAD})",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="print each program's verifier statistics (instructions, states, peak states, "
        "time), per kernel, like veristat",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="with exactly two policies (or two versions of one): their programs' verifier "
        "statistics side by side, per kernel, with the differences",
    )
    add_include(parser, None)
    add_link(parser)
    add_btf(parser, "vmlinux BTF of the target kernel")
    add_kernels(parser)
    add_set(parser)
    add_format(parser)
    parser.set_defaults(func=run, mode="auto")


def run(args: argparse.Namespace) -> Exit:
    settings = load_settings(
        btf=args.btf, kernels=args.kernels, host=args.host_kernel, params=args.params
    )
    if args.run is not None and args.run <= 0:
        return usage_error("--run needs a positive number of seconds", args)
    if args.compare and len(args.policies) != 2:
        return usage_error(f"--compare needs exactly two policies, got {len(args.policies)}", args)
    host = host_report(settings, args.mode, args.run)
    if host["reason"] and settings.host == "auto" and "host" in settings.sources:
        progress(f"this host's kernel is not in the matrix: {host['reason']}")  # asked: say why
    results = verify_policies(
        [Source(p, link=tuple(args.link)) for p in args.policies],
        settings,
        mode=args.mode,
        run_seconds=args.run,
        workload=args.workload,
        include_dirs=args.include,
        progress=progress,
    )
    compared = compare(results[0], results[1]) if args.compare else None
    if args.format == "json":
        extra: dict[str, object] = {"host": host}
        if compared is not None:
            extra["compare"] = [c.to_json() for c in compared]
        print_json(
            json_envelope(
                "verify",
                ok=all(r.ok for r in results),
                diagnostics=[d for r in results for d in r.diagnostics],
                results=[r.to_json() for r in results],
                **extra,
            )
        )
    else:
        for r in results:
            write_diagnostics(r.diagnostics, sys.stdout)
            several = len(r.kernels) > 1
            for k in r.kernels if several else []:
                print(_verdict_line(f"{r.policy} on {k.kernel}", k))
            if not r.ok:
                print(f"FAIL {r.policy}: stopped at the {r.stage} stage")
            elif several:
                print(f"ok   {r.policy}: every kernel ({len(r.kernels)})")
            else:
                print(_verdict_line(r.policy, r.kernels[0]))
            if r.params_set:
                print("     built with " + ", ".join(f"{k}={v}" for k, v in r.params_set.items()))
            for k in r.kernels if args.stats else []:
                print("\n".join(stats_table(k, several)))
                if k.run is not None and k.run.phases:
                    print(phases_line(k.run.phases))
        for c in compared or []:
            print("\n".join(compare_table(c, results[0].policy, results[1].policy)))
    return Exit.OK if all(r.ok for r in results) else Exit.ERRORS


def _verdict_line(what: str, k: KernelVerdict) -> str:
    if not k.ok:
        return f"FAIL {what}: {k.error or 'see the diagnostics above'}"
    insns = sum(p.insns_processed or 0 for p in k.programs)
    line = f"ok   {what}: {len(k.programs)} programs, {insns} instructions verified"
    if k.run is not None:
        line += f"; ran {k.run.seconds:g}s under '{k.run.workload}', stayed enabled"
    return line


def phases_line(phases: dict[str, float]) -> str:
    """Where a run test's guest time went (RunReport.phases), for --stats."""
    parts = [f"{name} {phases[name]:.1f} s" for name in ("attach", "run", "detach")
             if name in phases]
    return f"     run test: {', '.join(parts)} ({phases.get('total', 0):.1f} s of guest time)"


# ---- --stats and --compare: the verifier's own figures per program, like veristat ----------
_COLUMNS = ("insns", "states", "peak", "time_us")


def _figures(p: ProgramReport) -> tuple[int | None, ...]:
    return (p.insns_processed, p.states, p.peak_states, p.verification_time_us)


def _cell(v: int | None) -> str:
    return "-" if v is None else str(v)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "     "
        + "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]


def stats_table(k: KernelVerdict, name_kernel: bool = True) -> list[str]:
    """One kernel's per-program table: instructions processed, states, peak states and
    verification time, and their totals."""
    rows = [(p.name, *map(_cell, _figures(p))) for p in k.programs]
    total = _figures(_total(k.programs)) if k.programs else (None,) * len(_COLUMNS)
    rows.append(("total", *map(_cell, total)))
    title = (
        f"     verifier statistics on {k.kernel}:" if name_kernel else "     verifier statistics:"
    )
    return [title, *_table(("program", *_COLUMNS), rows)]


@dataclass(frozen=True)
class Comparison:
    """Two policies' programs on one kernel, matched by callback (the name less the policy's
    own prefix: `fifo_enqueue` and `ljf_enqueue` are both `enqueue`)."""

    kernel: str
    rows: list[tuple[str, ProgramReport | None, ProgramReport | None]]

    def to_json(self) -> dict[str, object]:
        def side(p: ProgramReport | None) -> dict[str, object] | None:
            return (
                None
                if p is None
                else {"name": p.name, **dict(zip(_COLUMNS, _figures(p), strict=True))}
            )

        return {
            "kernel": self.kernel,
            "programs": [{"callback": c, "a": side(a), "b": side(b)} for c, a, b in self.rows],
        }


def _callbacks(programs: list[ProgramReport]) -> dict[str, ProgramReport]:
    """Programs by callback: the name less the prefix every program of the policy shares up
    to an underscore (a lone program, or names with no common prefix, keep their names)."""
    names = [p.name for p in programs]
    prefix = os.path.commonprefix(names) if len(names) > 1 else ""
    prefix = prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""
    return {p.name.removeprefix(prefix) or p.name: p for p in programs}


def compare(a: VerifyResult, b: VerifyResult) -> list[Comparison]:
    """The two policies' programs side by side on every kernel both were loaded on."""
    b_kernels = {k.kernel: k for k in b.kernels}
    out = []
    for ka in a.kernels:
        kb = b_kernels.get(ka.kernel)
        if kb is None:
            continue
        pa, pb = _callbacks(ka.programs), _callbacks(kb.programs)
        order = list(pa) + [c for c in pb if c not in pa]
        out.append(Comparison(ka.kernel, [(c, pa.get(c), pb.get(c)) for c in order]))
    return out


def _diff(a: int | None, b: int | None) -> str:
    if a is None or b is None:
        return "-"
    if a == 0:
        return f"{b - a:+d}"
    return f"{b - a:+d} ({(b - a) * 100 / a:+.0f}%)"


def compare_table(c: Comparison, a_name: str, b_name: str) -> list[str]:
    """A as the baseline, B beside it: instructions and peak states with B's difference."""
    rows: list[tuple[str, ...]] = []
    for callback, pa, pb in [*c.rows, ("total", *_sums(c))]:
        fa = _figures(pa) if pa else (None,) * 4
        fb = _figures(pb) if pb else (None,) * 4
        rows.append(
            (
                callback,
                _cell(fa[0]),
                _cell(fb[0]),
                _diff(fa[0], fb[0]),
                _cell(fa[2]),
                _cell(fb[2]),
                _diff(fa[2], fb[2]),
            )
        )
    header = ("callback", "A insns", "B insns", "diff", "A peak", "B peak", "diff")
    return [f"     A = {a_name}, B = {b_name}, on {c.kernel}:", *_table(header, rows)]


def _total(programs: list[ProgramReport]) -> ProgramReport:
    """The programs' figures summed (a missing figure counts 0), as a program named total."""
    insns, states, peak, time_us = (
        sum(_figures(p)[i] or 0 for p in programs) for i in range(len(_COLUMNS))
    )
    return ProgramReport("total", insns, states, time_us, peak)


def _sums(c: Comparison) -> tuple[ProgramReport, ProgramReport]:
    return (
        _total([a for _, a, _ in c.rows if a is not None]),
        _total([b for _, _, b in c.rows if b is not None]),
    )
