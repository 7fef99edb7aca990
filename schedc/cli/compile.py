"""`schedc compile POLICY`: a .sched or .bpf.c policy to a sched_ext BPF object."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from schedc.cli.exit import Exit
from schedc.cli.options import add_btf, add_format, add_include, add_link
from schedc.cli.output import json_envelope, print_json, write_diagnostics
from schedc.compiler.pipeline import Source, compile_policy
from schedc.diagnostics import summary_line
from schedc.settings import load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Compile a policy (.sched DSL or .bpf.c) to a sched_ext BPF object."
    parser.add_argument("policy", type=Path, metavar="POLICY")
    parser.add_argument(
        "-o",
        dest="out",
        type=Path,
        metavar="OUT.bpf.o",
        help="object to write (default: next to the policy)",
    )
    parser.add_argument(
        "--emit-c", type=Path, metavar="FILE", help="also write the generated C here"
    )
    add_include(parser)
    add_link(parser)
    add_btf(parser)
    add_format(parser)
    parser.add_argument(
        "--no-pch", action="store_true", help="do not use the precompiled runtime header"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> Exit:
    settings = load_settings(btf=args.btf)
    result = compile_policy(
        Source(args.policy, link=tuple(args.link)),
        settings,
        out=args.out,
        emit_c=args.emit_c,
        include_dirs=args.include,
        use_pch=not args.no_pch,
    )
    if args.format == "json":
        compiled = {  # object and c: null when not written
            "policy": str(args.policy),
            "object": str(result.object_path) if result.object_path else None,
            "c": str(result.c_path) if result.c_path else None,
        }
        print_json(
            json_envelope(
                "compile", ok=result.ok, diagnostics=result.diagnostics, results=[compiled]
            )
        )
    else:
        write_diagnostics(result.diagnostics, sys.stderr)
        summary = summary_line(result.diagnostics)
        if summary:
            print(summary, file=sys.stderr)
        if result.ok and result.object_path:
            print(f"wrote {result.object_path}", file=sys.stderr)
    return Exit.OK if result.ok else Exit.ERRORS
