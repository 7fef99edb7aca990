"""`schedc mcp` and `schedc synthesize` on the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from schedc.agent.runner import (
    DEFAULT_COMPILE_TIMEOUT,
    DEFAULT_QUEUE,
    DEFAULT_VERIFY_TIMEOUT,
    Limits,
    Runner,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("give a positive number of seconds")
    return value


def _runner_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repo",
        type=Path,
        metavar="PATH",
        help="policy repository (SCHEDC_REPO; default ~/.local/share/schedc/policies)",
    )
    p.add_argument("--btf", metavar="FILE", help="vmlinux BTF of the target kernel (SCHEDC_BTF)")
    p.add_argument(
        "--compile-timeout",
        type=_positive,
        default=DEFAULT_COMPILE_TIMEOUT,
        metavar="SECONDS",
        help=f"limit for one compile or check (default {DEFAULT_COMPILE_TIMEOUT:g})",
    )
    p.add_argument(
        "--verify-timeout",
        type=_positive,
        default=DEFAULT_VERIFY_TIMEOUT,
        metavar="SECONDS",
        help=f"limit for one verify or submit, VM boot included "
        f"(default {DEFAULT_VERIFY_TIMEOUT:g})",
    )


def _count(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"give {least} or more")
        return value

    return parse


def runner_from(args: argparse.Namespace) -> Runner:
    limits = Limits(compile_timeout=args.compile_timeout, verify_timeout=args.verify_timeout)
    if getattr(args, "workers", None) is not None:
        limits.workers = args.workers
    if getattr(args, "queue", None) is not None:
        limits.queue = args.queue
    return Runner(repo=args.repo, overrides={"btf": args.btf} if args.btf else {}, limits=limits)


def add_agent_commands(subparsers: argparse._SubParsersAction) -> None:
    mcp = subparsers.add_parser(
        "mcp",
        help="serve the repository and compiler to agents (Model Context Protocol)",
        description="A Model Context Protocol server on stdio (or streamable HTTP on a "
        "loopback port): tools search_policies, get_policy, compile_policy, check_policy, "
        "verify_policy, submit_policy, record_result, dsl_reference; resources for the DSL "
        "reference and the example policies. See docs/agent.md.",
    )
    _runner_options(mcp)
    mcp.add_argument(
        "--http",
        type=int,
        metavar="PORT",
        help="serve streamable HTTP on 127.0.0.1:PORT instead of stdio",
    )
    mcp.add_argument(
        "--workers",
        type=_count(1),
        metavar="N",
        help="most worker processes at once (SCHEDC_MCP_WORKERS; default the CPU count)",
    )
    mcp.add_argument(
        "--queue",
        type=_count(0),
        metavar="N",
        help="most calls waiting for a worker; more are refused as busy "
        f"(SCHEDC_MCP_QUEUE; default {DEFAULT_QUEUE})",
    )
    mcp.set_defaults(func=_cmd_mcp)

    syn = subparsers.add_parser(
        "synthesize",
        help="have an LLM write, fix, verify and submit a policy for a goal",
        description="An Anthropic model with the schedc tools: it searches the repository, "
        "drafts a policy, fixes it from the diagnostics, verifies it and submits it with its "
        "lineage. Needs ANTHROPIC_API_KEY. See docs/agent.md.",
    )
    syn.add_argument("goal", metavar="GOAL", help="what the scheduler should achieve")
    syn.add_argument(
        "--workload",
        type=Path,
        metavar="FILE",
        help="a description of the workload (text: what runs, what matters)",
    )
    syn.add_argument("--model", help="model name (default: SCHEDC_MODEL or claude-sonnet-4-6)")
    syn.add_argument(
        "--max-iterations",
        type=int,
        default=12,
        metavar="N",
        help="most model calls before giving up (default 12)",
    )
    syn.add_argument("--format", choices=("human", "json"), default="human")
    syn.add_argument(
        "--transcript",
        type=Path,
        metavar="FILE",
        help="write the model's responses and the report here (JSON), for --replay",
    )
    syn.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="replay the model responses of a --transcript file instead of calling the API",
    )
    _runner_options(syn)
    syn.set_defaults(func=_cmd_synthesize)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from schedc.agent.mcp_server import serve  # noqa: PLC0415 (the SDK is imported on use)

    if args.http is not None and not 0 < args.http < 65536:
        print("schedc: error: --http takes a port number 1-65535", file=sys.stderr)
        return EXIT_USAGE
    serve(runner_from(args), http_port=args.http)
    return EXIT_OK


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from schedc.agent.synthesize import run_synthesize_command  # noqa: PLC0415

    return run_synthesize_command(args, runner_from(args))
