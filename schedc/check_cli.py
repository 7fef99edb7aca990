"""`schedc check FILE...`: the static checks as a command (and a pre-commit hook).

    schedc check FILE... [-I DIR]... [--btf FILE] [--target-kernel 6.12|6.13|...]
                 [--format human|json|sarif]

Exit status: 0 no errors (warnings allowed), 1 a policy has errors, 2 usage or environment
problem (no clang, no BTF), with the remedy. `python -m schedc.check_cli FILE...` runs the same
command without the `schedc` front (the pre-commit hook uses it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from schedc.compiler.pipeline import check_file
from schedc.compiler.source import is_c, is_dsl
from schedc.compiler.toolchain import Toolchain, load_toolchain
from schedc.diagnostics import (
    Diagnostic,
    has_errors,
    render_human,
    report_environment_problem,
    summary_line,
)
from schedc.lifecycle import run_main
from schedc.sarif import SarifRule, sarif_log
from schedc.settings import EnvironmentProblem, load_settings
from schedc.verifier.rules.catalog import DOCS_URL, RULES
from schedc.verifier.rules.kernel import (
    DEFAULT_TARGET,
    KernelVersion,
    parse_kernel_version,
    version_text,
)

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def add_check_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `check` on the `schedc` command line."""
    parser = subparsers.add_parser(
        "check",
        help="static checks of .sched and .bpf.c policies (libclang)",
        description="Find what the kernel would reject or eject a sched_ext policy for, "
        "before clang and the verifier do. Rules: docs/checks.md.",
    )
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", type=Path, nargs="+", metavar="FILE", help=".sched or .bpf.c policies, mixed"
    )
    parser.add_argument(
        "-I",
        dest="include",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="extra include directory (for .bpf.c policies)",
    )
    parser.add_argument("--btf", metavar="FILE", help="vmlinux BTF of the kernel (SCHEDC_BTF)")
    parser.add_argument(
        "--target-kernel",
        type=_kernel_arg,
        default=DEFAULT_TARGET,
        metavar="VERSION",
        help="the oldest kernel the policy must load on: decides which kfunc names and ops "
        f"flags exist (default {version_text(DEFAULT_TARGET)})",
    )
    parser.add_argument("--format", choices=("human", "json", "sarif"), default="human")
    parser.set_defaults(func=run_check)


def _kernel_arg(text: str) -> KernelVersion:
    try:
        return parse_kernel_version(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run_check(args: argparse.Namespace) -> int:
    unknown = [f for f in args.files if not (is_dsl(f) or is_c(f))]
    if unknown:
        print(
            f"schedc check: error: {unknown[0]} is neither a .sched nor a .bpf.c policy",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        diags = check_all(args)
    except EnvironmentProblem as problem:
        return report_environment_problem(problem, args.format)
    _print(diags, args.format, len(args.files))
    return EXIT_ERRORS if has_errors(diags) else EXIT_OK


def check_all(args: argparse.Namespace) -> list[Diagnostic]:
    settings = load_settings(btf=args.btf)

    @cache
    def toolchain() -> Toolchain:
        return load_toolchain(settings)

    diags: list[Diagnostic] = []
    for path in args.files:
        result = check_file(
            path,
            settings,
            toolchain=toolchain,
            include_dirs=args.include,
            target_kernel=args.target_kernel,
        )
        diags += result.diagnostics
    return diags


def _print(diags: list[Diagnostic], fmt: str, count: int) -> None:
    if fmt == "json":
        payload = {"ok": not has_errors(diags), "diagnostics": [d.to_json() for d in diags]}
        print(json.dumps(payload, indent=2))
    elif fmt == "sarif":
        print(json.dumps(sarif_log(diags, sarif_rules()), indent=2))
    else:
        sys.stderr.write(render_human(diags))
        summary = summary_line(diags)
        files = f"{count} file{'s' if count != 1 else ''}"
        print(summary or f"checked {files}: no problems found.", file=sys.stderr)


def sarif_rules() -> list[SarifRule]:
    return [
        SarifRule(r.code, r.name, r.summary, str(r.severity), f"{DOCS_URL}#{r.code.lower()}")
        for r in RULES.values()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="schedc check", description=__doc__.splitlines()[0])
    configure(parser)

    def body() -> int:
        args = parser.parse_args(argv)
        return int(args.func(args))

    return run_main(body, "schedc check")


if __name__ == "__main__":
    raise SystemExit(main())
