"""What every command prints the same way: progress lines, usage and environment problems."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from schedc.cli.exit import Exit
from schedc.diagnostics import Diagnostic, render_human

if TYPE_CHECKING:  # schedc.settings is not needed to print `schedc --help`
    from schedc.settings import EnvironmentProblem

COLOR_CHOICES = ("auto", "always", "never")
_color_choice = "auto"  # set once per command by main() from --color


def set_color(choice: str) -> None:
    global _color_choice
    _color_choice = choice if choice in COLOR_CHOICES else "auto"


def use_color(stream: TextIO) -> bool:
    """Colour for `stream`: --color always / never decide; auto means a terminal, unless
    NO_COLOR is set to anything (https://no-color.org) or TERM is dumb."""
    if _color_choice != "auto":
        return _color_choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def write_diagnostics(diagnostics: Iterable[Diagnostic], stream: TextIO) -> None:
    """The human format of `diagnostics` on `stream`, in colour when use_color says so."""
    stream.write(render_human(diagnostics, color=use_color(stream)))


def progress(message: str) -> None:
    """A line on stderr while a command works (booting, compiling, each run)."""
    print(f"schedc: {message}", file=sys.stderr, flush=True)


def usage_error(
    message: str, args: argparse.Namespace | None = None, hint: str | None = None
) -> Exit:
    """A usage problem found after parsing, exit 2: one line on stderr (and the hint), or with
    `args` of a `--format json` command the envelope on stdout, ok false and error set."""
    if args is not None and output_format(args) == "json":
        from schedc.cli import command_name

        print_json(json_envelope(command_name(args), ok=False, error=message, hint=hint))
    else:
        print(f"schedc: error: {message}", file=sys.stderr)
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
    return Exit.USAGE


def output_format(args: argparse.Namespace) -> str:
    """The command's --format (a repo subcommand's, else the one before it), else human."""
    return getattr(args, "format", None) or getattr(args, "format_top", None) or "human"


def report_environment_problem(problem: EnvironmentProblem, fmt: str, command: str) -> Exit:
    """Print a missing-tool problem with its remedy, as JSON or text; the exit status (2)."""
    if fmt == "json":
        print_json(json_envelope(command, ok=False, error=problem.message, hint=problem.remedy))
    else:
        print(f"schedc: error: {problem.message}\n  hint: {problem.remedy}", file=sys.stderr)
    return Exit.USAGE


def json_envelope(
    command: str,
    *,
    ok: bool,
    diagnostics: Iterable[Diagnostic | dict[str, object]] = (),
    results: Iterable[object] = (),
    error: str | None = None,
    hint: str | None = None,
    **extra: object,
) -> dict[str, object]:
    """The one JSON shape of every command's `--format json` (docs/json.md): `schedc` (the
    version), `command`, `ok`, `error` (null, or {"message", "hint"}), `diagnostics` (a list)
    and `results` (a list, also for one result), always in these places; what a command adds
    (`host`, `compare`, `targets`, ...) comes after them under its own names."""
    from schedc import __version__

    envelope: dict[str, object] = {
        "schedc": __version__,
        "command": command,
        "ok": ok,
        "error": None if error is None else {"message": error, "hint": hint},
        "diagnostics": [d.to_json() if isinstance(d, Diagnostic) else d for d in diagnostics],
        "results": list(results),
    }
    for key, value in extra.items():
        if key in envelope:
            raise ValueError(f"{key!r} is one of the envelope's own keys")
        envelope[key] = value
    return envelope


def print_json(envelope: dict[str, object]) -> None:
    """An envelope (json_envelope) on stdout, as the one JSON document a command prints."""
    print(json.dumps(envelope, indent=2, default=str))


def write_atomically(path: Path, text: str) -> None:
    """`text` at `path`, atomically (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
