"""The command line: turns the pipeline's data into text, JSON and exit codes.

Exit status: 0 success, 1 the policy has errors, 2 usage or environment problem; 128 + N when
stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), 141 when stdout's reader went away
(`schedc ... | head`). See schedc.lifecycle.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from schedc import __version__
from schedc.agent.cli import add_agent_commands
from schedc.behaviour.cli import add_test_command
from schedc.bench_cli import add_bench_command
from schedc.check_cli import add_check_command
from schedc.compiler.pipeline import compile_policy, verify_policies
from schedc.diagnostics import render_human, report_environment_problem, summary_line
from schedc.lifecycle import run_main
from schedc.repo.cli import add_repo_command
from schedc.settings import EnvironmentProblem, load_settings
from schedc.verifier.sandbox import DEFAULT_WORKLOAD, WORKLOADS

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"schedc: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="schedc", description="Compile, check and store sched_ext policies.")
    parser.add_argument("--version", action="version", version=f"schedc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    comp = sub.add_parser(
        "compile",
        help="compile a .sched or .bpf.c policy to a BPF object",
        description="Compile a policy (.sched DSL or .bpf.c) to a sched_ext BPF object.",
    )
    comp.add_argument("policy", type=Path, metavar="POLICY")
    comp.add_argument(
        "-o",
        dest="out",
        type=Path,
        metavar="OUT.bpf.o",
        help="object to write (default: next to the policy)",
    )
    comp.add_argument("--emit-c", type=Path, metavar="FILE", help="also write the generated C here")
    comp.add_argument(
        "-I",
        dest="include",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="extra include directory (for .bpf.c policies)",
    )
    comp.add_argument("--btf", metavar="FILE", help="vmlinux BTF of the target kernel (SCHEDC_BTF)")
    comp.add_argument("--format", choices=("human", "json"), default="human")
    comp.add_argument(
        "--no-pch", action="store_true", help="do not use the precompiled runtime header"
    )
    comp.set_defaults(func=_cmd_compile)

    add_check_command(sub)
    add_repo_command(sub)

    ver = sub.add_parser(
        "verify",
        help="load policies into the kernel verifier (host or sandbox VM), optionally run them",
        description="Compile and check each policy, then load all of them into a kernel with "
        "sched_ext in one go: the host's when it has sched_ext and we are root, else a "
        "throwaway QEMU guest booting SCHEDC_KERNEL. --run attaches each one in the guest "
        "under a workload and checks that it stays enabled.",
    )
    ver.add_argument(
        "policies", type=Path, nargs="+", metavar="POLICY", help=".sched, .bpf.c or .bpf.o"
    )
    where = ver.add_mutually_exclusive_group()
    where.add_argument(
        "--sandbox",
        dest="mode",
        action="store_const",
        const="sandbox",
        help="verify in the sandbox VM even if the host has sched_ext",
    )
    where.add_argument(
        "--host",
        dest="mode",
        action="store_const",
        const="host",
        help="verify on this host (load only; never attaches)",
    )
    ver.add_argument(
        "--run",
        type=float,
        metavar="SECONDS",
        help="attach each policy in the sandbox and run the workload this long",
    )
    ver.add_argument(
        "--workload",
        default=DEFAULT_WORKLOAD,
        choices=sorted(WORKLOADS),
        help=f"load for --run (default {DEFAULT_WORKLOAD})",
    )
    ver.add_argument("-I", dest="include", type=Path, action="append", default=[], metavar="DIR")
    ver.add_argument("--btf", metavar="FILE", help="vmlinux BTF of the target kernel")
    ver.add_argument("--format", choices=("human", "json"), default="human")
    ver.set_defaults(func=_cmd_verify, mode="auto")

    add_bench_command(sub)
    add_test_command(sub)
    add_agent_commands(sub)
    return parser


def _cmd_compile(args: argparse.Namespace) -> int:
    settings = load_settings(btf=args.btf)
    result = compile_policy(
        args.policy,
        settings,
        out=args.out,
        emit_c=args.emit_c,
        include_dirs=args.include,
        use_pch=not args.no_pch,
    )
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        sys.stderr.write(render_human(result.diagnostics))
        summary = summary_line(result.diagnostics)
        if summary:
            print(summary, file=sys.stderr)
        if result.ok and result.object_path:
            print(f"wrote {result.object_path}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_ERRORS


def _cmd_verify(args: argparse.Namespace) -> int:
    settings = load_settings(btf=args.btf)
    if args.run is not None and args.run <= 0:
        print("schedc: error: --run needs a positive number of seconds", file=sys.stderr)
        return EXIT_USAGE

    def progress(message: str) -> None:
        print(f"schedc: {message}", file=sys.stderr, flush=True)

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
        print(json.dumps({"results": [r.to_json() for r in results]}, indent=2))
    else:
        for r in results:
            sys.stdout.write(render_human(r.diagnostics))
            insns = sum(p.insns_processed or 0 for p in r.programs)
            if r.ok:
                line = f"ok   {r.policy}: {len(r.programs)} programs, {insns} instructions verified"
                if r.run is not None:
                    line += f"; ran {r.run.seconds:g}s under '{r.run.workload}', stayed enabled"
            else:
                line = f"FAIL {r.policy}: stopped at the {r.stage} stage"
            print(line)
    return EXIT_OK if all(r.ok for r in results) else EXIT_ERRORS


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except EnvironmentProblem as problem:
        return report_environment_problem(problem, getattr(args, "format", "human"))


if __name__ == "__main__":
    raise SystemExit(main())
