"""What every command prints the same way: progress lines, usage and environment problems."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from schedc.cli.exit import Exit

if TYPE_CHECKING:  # schedc.settings is not needed to print `schedc --help`
    from schedc.settings import EnvironmentProblem


def progress(message: str) -> None:
    """A line on stderr while a command works (booting, compiling, each run)."""
    print(f"schedc: {message}", file=sys.stderr, flush=True)


def usage_error(message: str) -> Exit:
    """A usage problem found after parsing: one line on stderr, exit 2."""
    print(f"schedc: error: {message}", file=sys.stderr)
    return Exit.USAGE


def report_environment_problem(problem: EnvironmentProblem, fmt: str) -> Exit:
    """Print a missing-tool problem with its remedy, as JSON or text; the exit status (2)."""
    if fmt == "json":
        print(json.dumps({"ok": False, "error": problem.message, "hint": problem.remedy}))
    else:
        print(f"schedc: error: {problem.message}\n  hint: {problem.remedy}", file=sys.stderr)
    return Exit.USAGE
