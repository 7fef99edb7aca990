"""The command line, the one part of schedc that prints for a user and decides exit statuses:
it turns the pipeline's data (diagnostics, results) into text, JSON or SARIF and into an
`Exit` (schedc.cli.exit).

One module per command (`compile.py`, `check.py`, `verify.py`, `bench.py`, `behaviour.py` for
`schedc test`, `repo.py`, `mcp.py`, `synthesize.py`, `profile.py`, `warm.py`, `completion.py`;
`host.py` for `run`, `status` and `stop`), each with `configure(parser)` (its options, its description,
`func=run`) and `run(args) -> Exit`; options several commands share
are in `options.py`, the printing they share in `output.py`. A command's module is imported
only when that command runs: `schedc compile` does not import the repository or the agent stack
(mcp, anthropic, gitpython), and `schedc --help` imports no command at all. To add a command,
write its module and name it in COMMANDS and `_command_module` below.

Exit status: 0 success, 1 the policy has errors, 2 usage or environment problem; 128 + N when
stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), 141 when stdout's reader went away
(`schedc ... | head`). See schedc.lifecycle.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from schedc import __version__
from schedc.cli.exit import Exit
from schedc.cli.options import UsageParser
from schedc.lifecycle import run_main

# Every command with the line `schedc --help` shows for it, in that order.
COMMANDS: dict[str, str] = {
    "compile": "compile a .sched or .bpf.c policy to a BPF object",
    "check": "static checks of .sched and .bpf.c policies (libclang)",
    "repo": "the git-backed policy repository: add, search, record results, share",
    "verify": "load policies into the kernel verifier (host or sandbox VM), optionally run them",
    "bench": "benchmark policies against EEVDF on a workload in the sandbox VM (or --host)",
    "test": "behaviour tests: run scenarios under each policy and the default scheduler",
    "mcp": "serve the repository and compiler to agents (Model Context Protocol)",
    "synthesize": "have an LLM write, fix, verify and submit a policy for a goal",
    "profile": "profile a real workload on this machine (/proc) into a workload profile",
    "run": "attach a stored policy to this machine's sched_ext kernel (root), until stopped",
    "status": "what sched_ext scheduler this machine runs now, and whether schedc attached it",
    "stop": "detach the scheduler schedc attached (root)",
    "warm": "run a script or batch of schedc commands with sandbox guests booted once",
    "completion": "print a shell completion script: source <(schedc completion bash)",
}


class CommandModule(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...


def _command_module(name: str) -> CommandModule:
    """The module of one command, imported now (and only now: see the module's docstring)."""
    if name == "compile":
        from schedc.cli import compile as module
    elif name == "check":
        from schedc.cli import check as module
    elif name == "repo":
        from schedc.cli import repo as module
    elif name == "verify":
        from schedc.cli import verify as module
    elif name == "bench":
        from schedc.cli import bench as module
    elif name == "test":
        from schedc.cli import behaviour as module
    elif name == "mcp":
        from schedc.cli import mcp as module
    elif name == "synthesize":
        from schedc.cli import synthesize as module
    elif name == "profile":
        from schedc.cli import profile as module
    elif name in ("run", "status", "stop"):
        from schedc.cli import host

        module = {"run": host.RUN, "status": host.STATUS, "stop": host.STOP}[name]
    elif name == "warm":
        from schedc.cli import warm as module
    elif name == "completion":
        from schedc.cli import completion as module
    else:
        raise KeyError(name)
    return module


def add_command(subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """Register command `name`, with all its options, on a `schedc` parser's subcommands."""
    parser = subparsers.add_parser(name, help=COMMANDS[name])
    _command_module(name).configure(parser)
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour in the human format: auto (on a terminal, unless NO_COLOR is set), "
        "always, never (default: auto)",
    )
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The command argv names: its first word that is not an option (`schedc` itself has only
    -h and --version, neither of which takes a value)."""
    for word in argv:
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The `schedc` parser for this argv: every command is listed (for `schedc --help`), and
    the one argv chooses gets its options, which imports its module."""
    parser = UsageParser(prog="schedc", description="Compile, check and store sched_ext policies.")
    parser.add_argument("--version", action="version", version=f"schedc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)
    chosen = _chosen(argv)
    for name, text in COMMANDS.items():
        if name == chosen:
            add_command(sub, name)
        else:
            sub.add_parser(name, help=text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`schedc ARGS…` (argv without the program name; default sys.argv[1:]): its exit status."""
    return run_main(lambda: _main(sys.argv[1:] if argv is None else list(argv)))


def _main(argv: list[str]) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return Exit.USAGE
    from schedc.cli.output import report_environment_problem, set_color
    from schedc.settings import EnvironmentProblem, config_warnings

    set_color(getattr(args, "color", "auto"))

    for warning in config_warnings():
        print(f"schedc: warning: {warning}", file=sys.stderr)
    try:
        return int(args.func(args))
    except EnvironmentProblem as problem:
        return report_environment_problem(problem, _format(args), command_name(args))


def command_name(args: argparse.Namespace) -> str:
    """The command as the JSON envelope names it: `compile`, or `repo search` for a repo
    subcommand."""
    sub = getattr(args, "repo_command", None)
    return f"{args.command} {sub}" if sub else str(args.command)


def _format(args: argparse.Namespace) -> str:
    return getattr(args, "format", None) or getattr(args, "format_top", None) or "human"
