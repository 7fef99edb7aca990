"""`schedc mcp`: the Model Context Protocol server for agents (stdio or loopback HTTP)."""

from __future__ import annotations

import argparse

from schedc.cli.exit import Exit
from schedc.cli.options import add_runner_options, count, runner_from
from schedc.cli.output import progress, usage_error
from schedc.settings import DEFAULT_MCP_QUEUE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "A Model Context Protocol server on stdio (or streamable HTTP on a "
        "loopback port): tools search_policies, get_policy, compile_policy, check_policy, "
        "verify_policy, test_policy, submit_policy, explain_classification, profile_workload, "
        "bench_policy, "
        "record_result, dsl_reference; resources for the DSL "
        "reference and the example policies. See docs/agent.md."
    )
    add_runner_options(parser)
    parser.add_argument(
        "--http",
        type=int,
        metavar="PORT",
        help="serve streamable HTTP on 127.0.0.1:PORT instead of stdio",
    )
    parser.add_argument(
        "--workers",
        type=count(1),
        metavar="N",
        help="most worker processes at once (SCHEDC_MCP_WORKERS; default the CPU count)",
    )
    parser.add_argument(
        "--queue",
        type=count(0),
        metavar="N",
        help="most calls waiting for a worker; more are refused as busy "
        f"(SCHEDC_MCP_QUEUE; default {DEFAULT_MCP_QUEUE})",
    )
    parser.add_argument(
        "--no-warm-sandbox",
        action="store_true",
        help="boot a fresh sandbox guest for every call that needs one, instead of keeping "
        "one guest per kernel booted from the first such call on (docs/agent.md)",
    )
    parser.add_argument(
        "--no-warm-workers",
        action="store_true",
        help="start a fresh worker process (about 0.4 s of imports) for every compile, check "
        "or verify call, instead of forking it from a warm zygote (docs/agent.md)",
    )
    allow = parser.add_argument_group(
        "profiling (profile_workload profiles nothing unless one of these is given)"
    )
    allow.add_argument(
        "--allow-profile-pid",
        type=int,
        action="append",
        default=[],
        metavar="PID",
        help="clients may profile this process (its threads and descendants); repeatable",
    )
    allow.add_argument(
        "--allow-profile-cgroup",
        action="append",
        default=[],
        metavar="PATH",
        help="clients may profile this cgroup v2 folder and those below it; repeatable",
    )
    allow.add_argument(
        "--allow-profile-command",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="clients may ask the server to start COMMAND (as written here) by NAME and "
        "profile it; repeatable",
    )
    allow.add_argument(
        "--allow-profile-all",
        action="store_true",
        help="clients may profile every task on the machine (root only)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> Exit:
    from schedc.agent.mcp_server import serve  # the SDK is imported on use
    from schedc.agent.profiling import parse_allow

    if args.http is not None and not 0 < args.http < 65536:
        return usage_error("--http takes a port number 1-65535")
    try:
        allow = parse_allow(
            args.allow_profile_pid,
            args.allow_profile_cgroup,
            args.allow_profile_command,
            args.allow_profile_all,
        )
    except ValueError as exc:
        return usage_error(str(exc))
    runner = runner_from(args)
    runner.profile_allow = allow
    runner.warm_workers = not args.no_warm_workers
    pool = None
    if not args.no_warm_sandbox:
        from schedc.settings import EnvironmentProblem, load_settings
        from schedc.verifier.warm import WarmPool

        try:
            # Boots nothing yet: a guest per kernel when the first call needs one.
            pool = WarmPool(load_settings(**runner.overrides), progress).start()
        except EnvironmentProblem:
            pool = None  # broken settings: every call reports them, as without a pool
    try:
        serve(runner, http_port=args.http)
    finally:
        runner.close()
        if pool is not None:
            pool.close()
    return Exit.OK
