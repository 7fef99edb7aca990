"""The command line: turns the pipeline's data into text, JSON and exit codes.

Exit status: 0 success, 1 the policy has errors, 2 usage or environment problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from schedc import __version__
from schedc.compiler.pipeline import compile_policy
from schedc.diagnostics import render_human, summary_line
from schedc.settings import EnvironmentProblem, load_settings

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except EnvironmentProblem as problem:
        fmt = getattr(args, "format", "human")
        if fmt == "json":
            print(json.dumps({"ok": False, "error": problem.message, "hint": problem.remedy}))
        else:
            print(f"schedc: error: {problem.message}\n  hint: {problem.remedy}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
