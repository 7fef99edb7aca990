"""`schedc check FILE...`: the static checks as a command (and the pre-commit hook).

    schedc check FILE... [-I DIR]... [--btf FILE] [--target-kernel 6.12|6.13|...]
                 [--format human|json|sarif] [--sarif-root DIR] [--sarif-base-uri URI]

Without --target-kernel the targets are the kernels in use (`kernels`, SCHEDC_KERNELS: each
kit's release and BTF); the C is parsed once, with the vmlinux.h `schedc compile` would use.
Exit status: 0 no errors (warnings allowed), 1 a policy has errors, 2 usage or environment
problem (no clang, no BTF, a broken kit), with the remedy. The pre-commit hook runs
`python -m schedc check`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from schedc.cli.exit import Exit
from schedc.cli.options import add_btf, add_format, add_include
from schedc.cli.output import (
    json_envelope,
    print_json,
    report_environment_problem,
    usage_error,
    write_diagnostics,
)
from schedc.compiler.pipeline import check_file
from schedc.compiler.source import is_c, is_dsl
from schedc.compiler.toolchain import Toolchain, load_toolchain
from schedc.diagnostics import Diagnostic, has_errors, summary_line
from schedc.sarif import SarifRule, base_uri_problem, sarif_log
from schedc.settings import EnvironmentProblem, kernel_matrix, load_settings
from schedc.verifier.checks import kernel_targets
from schedc.verifier.rules.catalog import RULES
from schedc.verifier.rules.kernel import KernelVersion, parse_kernel_version


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Find what the kernel would reject or eject a sched_ext policy for, "
        "before clang and the verifier do. Rules: docs/checks.md."
    )
    parser.add_argument(
        "files", type=Path, nargs="+", metavar="FILE", help=".sched or .bpf.c policies, mixed"
    )
    add_include(parser)
    add_btf(parser, "vmlinux BTF of the kernel (SCHEDC_BTF)")
    parser.add_argument(
        "--target-kernel",
        type=_kernel_arg,
        default=None,
        metavar="VERSION",
        help="the oldest kernel the policy must load on: decides which kfunc names and ops "
        "flags exist (default: every kernel in use, from each kit's release and BTF)",
    )
    add_format(parser, ("human", "json", "sarif"))
    parser.add_argument(
        "--sarif-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --format sarif: the repository's root; file URIs are relative to it "
        "(base id SRCROOT) (default: the current folder)",
    )
    parser.add_argument(
        "--sarif-base-uri",
        default=None,
        metavar="URI",
        help="with --format sarif: the absolute URI of the folder that holds docs/checks.md "
        "and docs/errors.md (e.g. https://github.com/OWNER/schedc/blob/COMMIT/docs/); each "
        "rule's helpUri is its section there (default: SCHEDC_SARIF_BASE_URI / "
        "`sarif_base_uri`, else no helpUri)",
    )
    parser.set_defaults(func=run)


def _kernel_arg(text: str) -> KernelVersion:
    try:
        return parse_kernel_version(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run(args: argparse.Namespace) -> Exit:
    unknown = [f for f in args.files if not (is_dsl(f) or is_c(f))]
    if unknown:
        return usage_error(f"{unknown[0]} is neither a .sched nor a .bpf.c policy", args)
    sarif = SarifOptions(Path.cwd(), None)
    try:
        if args.format == "sarif":
            sarif = sarif_options(args)
        checked = check_all(args)
    except EnvironmentProblem as problem:
        return report_environment_problem(problem, args.format, "check")
    diags = [d for _path, found in checked for d in found]
    _print(checked, args.format, sarif)
    return Exit.ERRORS if has_errors(diags) else Exit.OK


@dataclass(frozen=True)
class SarifOptions:
    root: Path  # file URIs are relative to it
    base_uri: str | None  # the docs folder's absolute URI, for helpUri; None: no helpUri


def sarif_options(args: argparse.Namespace) -> SarifOptions:
    """The root and help base of the SARIF output, checked before any policy is."""
    root = args.sarif_root if args.sarif_root is not None else Path.cwd()
    if not root.is_dir():
        raise EnvironmentProblem(
            f"--sarif-root {root}: no such folder",
            "give the root folder of the repository the policies are in (default: the "
            "current folder)",
        )
    settings = load_settings(sarif_base_uri=args.sarif_base_uri)
    base = settings.sarif_base_uri or None
    if base is not None:
        problem = base_uri_problem(base)
        if problem is not None:
            where = settings.sources.get("sarif_base_uri", "settings")
            option = "--sarif-base-uri" if where == "option" else f"sarif_base_uri (from {where})"
            raise EnvironmentProblem(
                f"{option}: {problem}",
                "give the absolute URI of the folder that holds checks.md and errors.md, such "
                "as https://github.com/OWNER/schedc/blob/COMMIT/docs/, or leave it out (the "
                "rules then have no helpUri)",
            )
    return SarifOptions(root, base)


def check_all(args: argparse.Namespace) -> list[tuple[Path, list[Diagnostic]]]:
    """Each file with what the checks found in it, in the order given."""
    settings = load_settings(btf=args.btf)
    # The C is parsed as `schedc compile` compiles it: with the vmlinux.h of the BTF setting
    # (--btf, SCHEDC_BTF, `btf`), else of the first kernel in use.
    compiled = settings if settings.btf else kernel_matrix(settings, attach=False)[0]
    targets = () if args.target_kernel is not None else kernel_targets(settings)

    @cache
    def toolchain() -> Toolchain:
        return load_toolchain(compiled)

    checked: list[tuple[Path, list[Diagnostic]]] = []
    for path in args.files:
        result = check_file(
            path,
            compiled,
            toolchain=toolchain,
            include_dirs=args.include,
            target_kernel=args.target_kernel or targets[0].version,
            targets=targets,
        )
        checked.append((path, list(result.diagnostics)))
    return checked


def _print(checked: list[tuple[Path, list[Diagnostic]]], fmt: str, sarif: SarifOptions) -> None:
    diags = [d for _path, found in checked for d in found]
    if fmt == "json":
        files = [{"path": str(path), "ok": not has_errors(found)} for path, found in checked]
        print_json(
            json_envelope("check", ok=not has_errors(diags), diagnostics=diags, results=files)
        )
    elif fmt == "sarif":
        log = sarif_log(diags, sarif_rules(), root=sarif.root, base_uri=sarif.base_uri)
        print(json.dumps(log, indent=2))
    else:
        write_diagnostics(diags, sys.stderr)
        summary = summary_line(diags)
        count = len(checked)
        files = f"{count} file{'s' if count != 1 else ''}"
        print(summary or f"checked {files}: no problems found.", file=sys.stderr)


def sarif_rules() -> list[SarifRule]:
    """Every static rule, with the catalogue's name, summary and severity (the long texts and
    help URIs come from docs/checks.md when the SARIF is written)."""
    return [SarifRule(r.code, r.name, r.summary, str(r.severity)) for r in RULES.values()]
