"""`schedc bench POLICY... --workload NAME`: measure policies against EEVDF in the sandbox.

    schedc bench POLICY... --workload NAME[,NAME...] [--runs N] [--warmup N] [--cpus N]
                 [--duration SECONDS] [--scale X] [--record] [--plot OUT.png]
                 [--format human|json]

Exit status: 0 every run of every policy completed with the policy attached, 1 a policy did
not compile or a run failed (ejected by the kernel, did not attach, the workload failed), 2
usage or environment problem (no sandbox kernel, QEMU, workload tool, matplotlib for --plot,
or repository for --record), with the remedy. docs/bench.md has the details.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from schedc.bench.runner import (
    DEFAULT_RUNS,
    DEFAULT_WARMUP,
    BenchResult,
    Where,
    bench_objects,
    check_environment,
    compile_for_bench,
    render_human,
    results_json,
)
from schedc.cli.exit import Exit
from schedc.cli.options import (
    add_btf,
    add_format,
    add_include,
    add_kernels,
    add_set,
    positive_float,
    positive_int,
)
from schedc.cli.output import json_envelope, print_json, progress, usage_error, write_diagnostics
from schedc.settings import (
    EnvironmentProblem,
    Settings,
    each_of,
    kernel_matrix,
    load_settings,
)
from schedc.workloads import RECIPES, WorkloadParams


def workload_names(values: Sequence[str]) -> list[str]:
    """The --workload values, split at commas, `all` expanded, each name once."""
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            for one in RECIPES if name == "all" else [name]:
                if one and one not in names:
                    names.append(one)
    return names


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Measure each policy against the kernel's default scheduler (EEVDF) on "
        "named workloads, in one boot of the sched_ext sandbox: per run the baseline, then "
        "each policy attached (A B A B). Reports every run, medians, spread and the ratio "
        "policy/baseline with a bootstrap 95% interval. docs/bench.md has the recipes."
    )
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
        type=positive_int,
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
        type=positive_int,
        metavar="N",
        help="the guest's vCPUs (SCHEDC_VM_CPUS, default 2)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=WorkloadParams.duration,
        metavar="SECONDS",
        help="length of the timed workloads (stress-ng, cyclictest, wakebench; default "
        f"{WorkloadParams.duration:g})",
    )
    parser.add_argument(
        "--scale",
        type=positive_float,
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
        "--profile",
        type=Path,
        metavar="PROFILE.json",
        help="with --record: the workload profile (`schedc profile -o`) the results stand "
        "for, kept with each record (for `schedc repo search --profile`)",
    )
    parser.add_argument(
        "--host",
        action="store_true",
        help="bench on THIS machine's sched_ext kernel instead of the sandbox VM: each policy "
        "is attached to this machine for its runs (root; no other scheduler attached)",
    )
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="plot the runs (matplotlib)")
    add_include(parser, None)
    add_btf(parser, "vmlinux BTF of the target kernel")
    add_kernels(parser)
    add_set(parser)
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> Exit:
    workloads = workload_names(args.workload)
    unknown = [w for w in workloads if w not in RECIPES]
    if unknown:
        return usage_error(
            f"unknown workload {', '.join(unknown)}; choose from {', '.join(RECIPES)}, all", args
        )
    if args.warmup < 0:
        return usage_error("--warmup cannot be negative", args)
    # What would only fail after minutes in the guest is checked first.
    if args.plot is not None:
        from schedc.bench.plot import MATPLOTLIB_REMEDY, plot_problem

        trouble = plot_problem()
        if trouble:
            raise EnvironmentProblem(trouble, MATPLOTLIB_REMEDY)
    profile = None
    if args.profile is not None:
        if not args.record:
            return usage_error("--profile goes with --record: it is kept with the records", args)
        from schedc.repo.gitstore import RepoError  # noqa: PLC0415
        from schedc.repo.perf import profile_option  # noqa: PLC0415

        try:
            profile = profile_option(args.profile)
        except RepoError as problem:
            return usage_error(f"--profile: {problem.message}", args, problem.hint)
    if args.record:  # the CLI hands results to the repository; bench knows nothing of it
        from schedc.repo.perf import recording_problem  # noqa: PLC0415

        trouble = recording_problem([str(p) for p in args.policies])
        if trouble:
            raise EnvironmentProblem(
                trouble, "run without --record, and keep the JSON (--format json) for later"
            )
    settings = load_settings(
        btf=args.btf, kernels=args.kernels, host=args.host_kernel, params=args.params
    )
    if args.cpus is not None:
        settings = dataclasses.replace(
            settings, vm_cpus=args.cpus, sources={**settings.sources, "vm_cpus": "option"}
        )
    # --host: only this machine; else the matrix, with this machine's kernel in it only when
    # asked (host = "yes": a bench attaches, so "auto" leaves the host out).
    kernels = (
        [dataclasses.replace(settings, on_host=True)]
        if args.host
        else kernel_matrix(settings, attach=True)
    )
    for kernel in kernels:
        check_environment(kernel, workloads, _where(kernel))
    if any(k.on_host for k in kernels):
        asked = "--host" if args.host else 'host = "yes"'
        progress(
            f"{asked}: policies will be attached to this machine's kernel, one at a time; "
            "sched_ext's watchdog and the detach at the end return it to EEVDF"
        )
    build = Path(tempfile.mkdtemp(prefix="schedc-bench-build-"))
    try:
        compiled = compile_for_bench(
            args.policies, settings, build, include_dirs=args.include, progress=progress
        )
        if not compiled.ok:
            if args.format == "json":
                print_json(
                    json_envelope(
                        "bench",
                        ok=False,
                        diagnostics=compiled.diagnostics,
                        error=f"not benchmarked: {', '.join(compiled.failed)} did not compile",
                    )
                )
            else:
                write_diagnostics(compiled.diagnostics, sys.stderr)
                print(
                    f"schedc: not benchmarked: {', '.join(compiled.failed)} did not compile",
                    file=sys.stderr,
                )
            return Exit.ERRORS
        # Every kernel of the matrix in turn (one boot per sandbox kernel); each result's
        # environment names its kernel.
        results = []
        for kernel, _name, say in each_of(kernels, progress):  # lazily: announced before its boot
            results += bench_objects(
                compiled.policies,
                workloads,
                kernel,
                runs=args.runs,
                warmup=args.warmup,
                params=_params(args, kernel),
                progress=say or progress,
                where=_where(kernel),
            )
    finally:
        shutil.rmtree(build, ignore_errors=True)
    if args.format == "json":
        print_json(envelope(results))
    else:
        sys.stdout.write(render_human(results))
    if args.plot is not None:
        from schedc.bench.plot import plot_results

        progress(f"wrote {plot_results(results, args.plot)}")
    if args.record:  # the CLI hands results to the repository; bench knows nothing of it
        from schedc.repo.perf import record_bench_result  # noqa: PLC0415

        for r in results:
            where = record_bench_result(r.policy.source, r.to_json(), profile)
            progress(f"recorded {where}")
    return Exit.OK if all(r.ok for r in results) else Exit.ERRORS


def envelope(results: Sequence[BenchResult]) -> dict[str, object]:
    """What `--format json` prints: every (policy, workload, kernel) result in `results`, a
    list also for one policy and one workload (docs/json.md)."""
    return json_envelope("bench", ok=all(r.ok for r in results), results=results_json(results))


def _where(kernel: Settings) -> Where:
    return "host" if kernel.on_host else "sandbox"


def _params(args: argparse.Namespace, kernel: Settings) -> WorkloadParams:
    """The workloads' size: the guest's vCPUs, or on a host its CPUs (or --cpus)."""
    cpus = (args.cpus or os.cpu_count() or 1) if kernel.on_host else kernel.vm_cpus
    return WorkloadParams(duration=args.duration, scale=args.scale, cpus=cpus)
