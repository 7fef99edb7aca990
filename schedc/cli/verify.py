"""`schedc verify POLICY...`: the kernel verifier (host or sandbox VM), optionally a run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from schedc.cli.exit import Exit
from schedc.cli.options import add_btf, add_format, add_include, add_kernels, add_set
from schedc.cli.output import progress, usage_error, write_diagnostics
from schedc.compiler.pipeline import verify_policies
from schedc.settings import load_settings
from schedc.verifier.verify import KernelVerdict, host_report
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
    add_include(parser, None)
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
        return usage_error("--run needs a positive number of seconds")
    host = host_report(settings, args.mode, args.run)
    if host["reason"] and settings.host == "auto" and "host" in settings.sources:
        progress(f"this host's kernel is not in the matrix: {host['reason']}")  # asked: say why
    results = verify_policies(
        args.policies,
        settings,
        mode=args.mode,
        run_seconds=args.run,
        workload=args.workload,
        include_dirs=args.include,
        progress=progress,
    )
    if args.format == "json":
        print(json.dumps({"results": [r.to_json() for r in results], "host": host}, indent=2))
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
    return Exit.OK if all(r.ok for r in results) else Exit.ERRORS


def _verdict_line(what: str, k: KernelVerdict) -> str:
    if not k.ok:
        return f"FAIL {what}: {k.error or 'see the diagnostics above'}"
    insns = sum(p.insns_processed or 0 for p in k.programs)
    line = f"ok   {what}: {len(k.programs)} programs, {insns} instructions verified"
    if k.run is not None:
        line += f"; ran {k.run.seconds:g}s under '{k.run.workload}', stayed enabled"
    return line
