"""`schedc test POLICY... --scenario FILE`: behaviour tests in the sandbox, beside the baseline.

    schedc test POLICY... --scenario FILE [--scenario FILE...] [--runs N] [--keep-trace DIR]
                [--kernel KIT]... [--format human|json]

With several kernels (--kernel given more than once, or SCHEDC_KERNELS) every policy runs every
scenario on each, one boot per kernel; each result names its kernel.

Exit status: 0 every expectation of every (policy, scenario) held, 1 an expectation failed or
a policy did not compile, 2 usage or environment problem (a bad scenario file, no sandbox),
with the remedy. Progress goes to stderr while the guest runs. docs/behaviour.md has details.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from schedc.behaviour.report import render_human, results_json, test_policies
from schedc.behaviour.run import Case, check_sandboxes
from schedc.behaviour.scenario import Scenario, ScenarioError, load_scenario
from schedc.bench.runner import compile_for_bench
from schedc.cli.exit import Exit
from schedc.cli.options import add_format, add_include, add_kernels, add_set, positive_int
from schedc.cli.output import json_envelope, print_json, progress, write_diagnostics
from schedc.diagnostics import Diagnostic
from schedc.settings import load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run each scenario (named tasks, cgroups, behaviours) in the sandbox guest "
        "under the kernel's default scheduler and under each policy, all in one boot; trace "
        "the scheduler events and check the scenario's expectations (placement, order, share, "
        "wait, completion, starvation, slice). docs/behaviour.md has the format."
    )
    parser.add_argument(
        "policies", type=Path, nargs="+", metavar="POLICY", help=".sched, .bpf.c or .bpf.o"
    )
    parser.add_argument(
        "--scenario",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="a scenario file (TOML); repeat for several",
    )
    parser.add_argument(
        "--runs", type=positive_int, default=1, metavar="N", help="runs per side (default 1)"
    )
    parser.add_argument(
        "--keep-trace", type=Path, metavar="DIR", help="copy every run's ftrace text here"
    )
    add_include(parser)
    add_kernels(parser)
    add_set(parser)
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> Exit:
    scenarios: list[Scenario] = []
    problems: list[Diagnostic] = []
    for path in args.scenario:
        try:
            scenarios.append(load_scenario(path))
        except ScenarioError as exc:
            problems += exc.diagnostics
    if problems:
        if args.format == "json":
            print_json(
                json_envelope(
                    "test",
                    ok=False,
                    diagnostics=problems,
                    error="not tested: a scenario file has errors",
                )
            )
        else:
            write_diagnostics(problems, sys.stderr)
        return Exit.USAGE
    settings = load_settings(kernels=args.kernels, host=args.host_kernel, params=args.params)
    check_sandboxes(settings)  # every kernel, before compiling: no sandbox, no point
    with tempfile.TemporaryDirectory(prefix="schedc-test-build-") as build:
        compiled = compile_for_bench(
            args.policies, settings, Path(build), include_dirs=args.include, progress=progress
        )
        if not compiled.ok:
            if args.format == "json":
                print_json(
                    json_envelope(
                        "test",
                        ok=False,
                        diagnostics=compiled.diagnostics,
                        error=f"not tested: {', '.join(compiled.failed)} did not compile",
                    )
                )
            else:
                write_diagnostics(compiled.diagnostics, sys.stderr)
                print(
                    f"schedc: error: did not compile: {', '.join(compiled.failed)}", file=sys.stderr
                )
            return Exit.ERRORS
        cases = [Case(s, list(compiled.policies)) for s in scenarios]
        results = test_policies(
            cases, settings, runs=args.runs, keep_trace=args.keep_trace, progress=progress
        )
    if args.format == "json":
        print_json(
            json_envelope(
                "test",
                ok=all(r.ok for r in results),
                diagnostics=[d for r in results for d in r.diagnostics],
                results=results_json(results),
            )
        )
    else:
        for r in results:
            write_diagnostics(r.diagnostics, sys.stderr)
        sys.stdout.write(render_human(results))
    return Exit.OK if all(r.ok for r in results) else Exit.ERRORS
