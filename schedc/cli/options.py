"""Options that several commands take, defined once, and the parser class of every command.

Each helper keeps the help text its commands have always shown (`text=None` where a command
never documented the option), so that moving an option here changes no command's `--help`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from schedc.cli.exit import Exit
from schedc.settings import HOST_CHOICES

if TYPE_CHECKING:  # the agent stack is imported by `schedc mcp` and `synthesize` only
    from schedc.agent.runner import Runner

INCLUDE_HELP = "extra include directory (for .bpf.c policies)"
BTF_HELP = "vmlinux BTF of the target kernel (SCHEDC_BTF)"
REPO_HELP = "policy repository (SCHEDC_REPO; default ~/.local/share/schedc/policies)"


class UsageParser(argparse.ArgumentParser):
    """Usage errors print the usage and `schedc: error: …` and exit 2 (Exit.USAGE)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"schedc: error: {message}", file=sys.stderr)
        raise SystemExit(Exit.USAGE)


def add_include(parser: argparse.ArgumentParser, text: str | None = INCLUDE_HELP) -> None:
    """`-I DIR`, repeatable: extra include directories for .bpf.c policies."""
    parser.add_argument(
        "-I", dest="include", type=Path, action="append", default=[], metavar="DIR", help=text
    )


def add_link(parser: argparse.ArgumentParser) -> None:
    """`--link FILE`, repeatable: more C units of a .bpf.c policy, linked into its object."""
    parser.add_argument(
        "--link",
        type=Path,
        action="append",
        default=[],
        metavar="UNIT.bpf.c",
        help="another C file of the same .bpf.c policy (scx's lib/*.bpf.c, a shared helper): "
        "compiled on its own and linked into the policy's object with `bpftool gen object`; "
        "repeat for several",
    )


def add_btf(parser: argparse.ArgumentParser, text: str = BTF_HELP) -> None:
    """`--btf FILE`: the vmlinux BTF (else SCHEDC_BTF, the config file, the host's)."""
    parser.add_argument("--btf", metavar="FILE", help=text)


def add_kernels(parser: argparse.ArgumentParser) -> None:
    """`--kernel KIT` (repeatable): the kernel matrix, in place of SCHEDC_KERNELS / `kernels`;
    `--host-kernel auto|yes|no`: whether the host's kernel joins it (SCHEDC_HOST / `host`)."""
    parser.add_argument(
        "--kernel",
        dest="kernels",
        action="append",
        metavar="KIT",
        help="a sandbox kit folder (or a bzImage) to run on; give it once per kernel of the "
        "matrix (default: SCHEDC_KERNELS / `kernels`, else SCHEDC_KERNEL)",
    )
    parser.add_argument(
        "--host-kernel",
        choices=HOST_CHOICES,
        help="whether this machine's own kernel is one more kernel of the matrix: auto (when "
        "it has sched_ext and we are root; never for a run that attaches), yes, no "
        "(default: SCHEDC_HOST / `host`, else auto)",
    )


def add_set(parser: argparse.ArgumentParser) -> None:
    """`--set NAME=VALUE` (repeatable): a DSL param's value for this run (dsl/tunables.py)."""
    parser.add_argument(
        "--set",
        dest="params",
        action="append",
        metavar="NAME=VALUE",
        help="build the DSL policies with this param value instead of its default, e.g. "
        "--set slice=5ms (checked against the param's type and `in LOW..HIGH` range; "
        "repeat for several)",
    )


def add_format(
    parser: argparse.ArgumentParser,
    choices: tuple[str, ...] = ("human", "json"),
    default: str | None = "human",
    dest: str = "format",
) -> None:
    """`--format human|json[|sarif]`: text for people, one JSON object for tools."""
    parser.add_argument("--format", dest=dest, choices=choices, default=default)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


# -- the agent commands' worker limits (`schedc mcp`, `schedc synthesize`) ---------------------
def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    return seconds_upto(None)(text)


def seconds_upto(most: float | None) -> Callable[[str], float]:
    """An argparse type: a positive number of seconds, at most `most` (None: no bound)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
        if not value > 0:
            raise argparse.ArgumentTypeError("give a positive number of seconds")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"give at most {most:g} seconds, not {text}")
        return value

    return parse


def count(least: int, most: int | None = None, what: str = "whole number") -> Callable[[str], int]:
    """An argparse type: a whole number of at least `least` (and at most `most`); `what` names
    it in the message ("a process id", "a whole number of ms")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a {what}") from None
        if most is not None and not least <= value <= most:
            raise argparse.ArgumentTypeError(f"give {least}..{most}, not {text}")
        if value < least:
            raise argparse.ArgumentTypeError(f"give {least} or more")
        return value

    return parse


def add_runner_options(parser: argparse.ArgumentParser) -> None:
    """--repo, --btf and the worker time limits of the agent operations."""
    from schedc.agent.runner import DEFAULT_COMPILE_TIMEOUT, DEFAULT_VERIFY_TIMEOUT

    parser.add_argument("--repo", type=Path, metavar="PATH", help=REPO_HELP)
    add_btf(parser)
    parser.add_argument(
        "--compile-timeout",
        type=seconds,
        default=DEFAULT_COMPILE_TIMEOUT,
        metavar="SECONDS",
        help=f"limit for one compile or check (default {DEFAULT_COMPILE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--verify-timeout",
        type=seconds,
        default=DEFAULT_VERIFY_TIMEOUT,
        metavar="SECONDS",
        help=f"limit for one verify or submit, VM boot included "
        f"(default {DEFAULT_VERIFY_TIMEOUT:g})",
    )


def runner_from(args: argparse.Namespace) -> Runner:
    """The agent operations' runner for the options of add_runner_options (and --workers,
    --queue where the command has them)."""
    from schedc.agent.runner import Limits, Runner
    from schedc.cli.output import progress

    limits = Limits(compile_timeout=args.compile_timeout, verify_timeout=args.verify_timeout)
    if getattr(args, "workers", None) is not None:
        limits.workers = args.workers
    if getattr(args, "queue", None) is not None:
        limits.queue = args.queue
    return Runner(
        repo=args.repo,
        overrides={"btf": args.btf} if args.btf else {},
        limits=limits,
        notice=progress,
    )
