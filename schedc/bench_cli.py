"""`schedc bench POLICY... --workload NAME`: measure policies against EEVDF in the sandbox.

    schedc bench POLICY... --workload NAME[,NAME...] [--runs N] [--warmup N] [--cpus N]
                 [--duration SECONDS] [--scale X] [--record] [--plot OUT.png]
                 [--format human|json]

Exit status: 0 every run of every policy completed with the policy attached, 1 a policy did
not compile or a run failed (ejected by the kernel, did not attach, the workload failed), 2
usage or environment problem (no sandbox kernel, QEMU, workload tool, matplotlib for --plot,
or repository for --record), with the remedy. `python -m schedc.bench_cli ...` runs the same
command without the `schedc` front. docs/bench.md has the details.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from schedc.bench.runner import (
    DEFAULT_RUNS,
    DEFAULT_WARMUP,
    bench_objects,
    check_environment,
    compile_for_bench,
    render_human,
    results_json,
)
from schedc.bench.workloads import RECIPES, WorkloadParams
from schedc.diagnostics import render_human as render_diagnostics
from schedc.diagnostics import report_environment_problem
from schedc.lifecycle import run_main
from schedc.settings import EnvironmentProblem, load_settings

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def add_bench_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `bench` on the `schedc` command line."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmark policies against EEVDF on a workload in the sandbox VM (or --host)",
        description="Measure each policy against the kernel's default scheduler (EEVDF) on "
        "named workloads, in one boot of the sched_ext sandbox: per run the baseline, then "
        "each policy attached (A B A B). Reports every run, medians, spread and the ratio "
        "policy/baseline with a bootstrap 95% interval. docs/bench.md has the recipes.",
    )
    configure(parser)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _workloads(values: Sequence[str]) -> list[str]:
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            for one in RECIPES if name == "all" else [name]:
                if one and one not in names:
                    names.append(one)
    return names


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policies", type=Path, nargs="+", metavar="POLICY", help=".sched, .bpf.c or .bpf.o"
    )
    parser.add_argument(
        "--workload",
        action="append",
        required=True,
        metavar="NAME",
        help=f"{', '.join(RECIPES)}, or all; repeat or separate with commas for several "
        "(all in one boot)",
    )
    parser.add_argument(
        "--runs",
        type=_positive_int,
        metavar="N",
        default=DEFAULT_RUNS,
        help=f"measured runs per side (default {DEFAULT_RUNS}; 3 or more for an interval)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        metavar="N",
        help=f"unmeasured baseline runs first, per workload (default {DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--cpus",
        type=_positive_int,
        metavar="N",
        help="the guest's vCPUs (SCHEDC_VM_CPUS, default 2)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=WorkloadParams.duration,
        metavar="SECONDS",
        help="length of the timed workloads (stress-ng, cyclictest; default "
        f"{WorkloadParams.duration:g})",
    )
    parser.add_argument(
        "--scale",
        type=_positive_float,
        default=WorkloadParams.scale,
        metavar="X",
        help="amount of work of the fixed-work workloads (hackbench, batch-makespan, compile; "
        "default 1: a few seconds each under TCG)",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the results into the policy repository's performance records",
    )
    parser.add_argument(
        "--host",
        action="store_true",
        help="bench on THIS machine's sched_ext kernel instead of the sandbox VM: each policy "
        "is attached to this machine for its runs (root; no other scheduler attached)",
    )
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="plot the runs (matplotlib)")
    parser.add_argument("-I", dest="include", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--btf", metavar="FILE", help="vmlinux BTF of the target kernel")
    parser.add_argument("--format", choices=("human", "json"), default="human")
    parser.set_defaults(func=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    def progress(message: str) -> None:
        print(f"schedc: {message}", file=sys.stderr, flush=True)

    def usage(message: str) -> int:
        print(f"schedc: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    workloads = _workloads(args.workload)
    unknown = [w for w in workloads if w not in RECIPES]
    if unknown:
        return usage(
            f"unknown workload {', '.join(unknown)}; choose from {', '.join(RECIPES)}, all"
        )
    if args.warmup < 0:
        return usage("--warmup cannot be negative")
    # What would only fail after minutes in the guest is checked first.
    if args.plot is not None:
        from schedc.bench.plot import MATPLOTLIB_REMEDY, plot_problem  # noqa: PLC0415

        trouble = plot_problem()
        if trouble:
            raise EnvironmentProblem(trouble, MATPLOTLIB_REMEDY)
    if args.record:  # the CLI hands results to the repository; bench knows nothing of it
        from schedc.repo.perf import recording_problem  # noqa: PLC0415

        trouble = recording_problem([str(p) for p in args.policies])
        if trouble:
            raise EnvironmentProblem(
                trouble, "run without --record, and keep the JSON (--format json) for later"
            )
    settings = load_settings(btf=args.btf)
    where = "host" if args.host else "sandbox"
    if args.cpus is not None:
        settings = dataclasses.replace(
            settings, vm_cpus=args.cpus, sources={**settings.sources, "vm_cpus": "option"}
        )
    # On a host the workloads size themselves to its CPUs, or to --cpus.
    cpus = settings.vm_cpus if not args.host else (args.cpus or os.cpu_count() or 1)
    params = WorkloadParams(duration=args.duration, scale=args.scale, cpus=cpus)
    check_environment(settings, workloads, where)
    if args.host:
        progress(
            "--host: policies will be attached to this machine's kernel, one at a time; "
            "sched_ext's watchdog and the detach at the end return it to EEVDF"
        )
    build = Path(tempfile.mkdtemp(prefix="schedc-bench-build-"))
    try:
        compiled = compile_for_bench(
            args.policies, settings, build, include_dirs=args.include, progress=progress
        )
        if not compiled.ok:
            if args.format == "json":
                print(
                    json.dumps(
                        {
                            "ok": False,
                            "error": f"did not compile: {', '.join(compiled.failed)}",
                            "diagnostics": [d.to_json() for d in compiled.diagnostics],
                        },
                        indent=2,
                    )
                )
            else:
                sys.stderr.write(render_diagnostics(compiled.diagnostics))
                print(
                    f"schedc: not benchmarked: {', '.join(compiled.failed)} did not compile",
                    file=sys.stderr,
                )
            return EXIT_ERRORS
        results = bench_objects(
            compiled.policies,
            workloads,
            settings,
            runs=args.runs,
            warmup=args.warmup,
            params=params,
            progress=progress,
            where=where,
        )
    finally:
        shutil.rmtree(build, ignore_errors=True)
    if args.format == "json":
        print(json.dumps(results_json(results), indent=2))
    else:
        sys.stdout.write(render_human(results))
    if args.plot is not None:
        from schedc.bench.plot import plot_results  # noqa: PLC0415

        progress(f"wrote {plot_results(results, args.plot)}")
    if args.record:  # the CLI hands results to the repository; bench knows nothing of it
        from schedc.repo.perf import record_bench_result  # noqa: PLC0415

        for r in results:
            progress(f"recorded {record_bench_result(r.policy.source, r.to_json())}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_ERRORS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="schedc bench", description=__doc__.splitlines()[0])
    configure(parser)

    def body() -> int:
        args = parser.parse_args(argv)
        try:
            return run_bench_command(args)
        except EnvironmentProblem as problem:
            return report_environment_problem(problem, args.format)

    return run_main(body, "schedc bench")


if __name__ == "__main__":
    raise SystemExit(main())
