"""`schedc synthesize GOAL`: an Anthropic model writes, fixes, verifies and submits a policy."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from schedc.agent.reference import ReferenceMissing
from schedc.agent.synthesize import DEFAULT_MODEL, MAX_WORKLOAD_BYTES, render, synthesize
from schedc.cli.exit import Exit
from schedc.cli.options import add_format, add_runner_options, runner_from
from schedc.cli.output import json_envelope, print_json, progress, usage_error
from schedc.settings import synthesis_model


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "An Anthropic model with the schedc tools: it searches the repository, "
        "drafts a policy, fixes it from the diagnostics, verifies it and submits it with its "
        "lineage. Needs ANTHROPIC_API_KEY. See docs/agent.md."
    )
    parser.add_argument("goal", metavar="GOAL", help="what the scheduler should achieve")
    parser.add_argument(
        "--workload",
        type=Path,
        metavar="FILE",
        help="a description of the workload (text: what runs, what matters)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="PROFILE.json",
        help="a `schedc profile -o` file: the model sees the measured task groups, and every "
        "draft it submits is tested on a sandbox scenario of the same shape",
    )
    parser.add_argument("--model", help="model name (default: SCHEDC_MODEL or claude-sonnet-4-6)")
    parser.add_argument(
        "--max-iterations",
        type=int,
        default=12,
        metavar="N",
        help="most model calls before giving up (default 12)",
    )
    add_format(parser)
    parser.add_argument(
        "--transcript",
        type=Path,
        metavar="FILE",
        help="write the model's responses and the report here (JSON), for --replay",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="replay the model responses of a --transcript file instead of calling the API",
    )
    add_runner_options(parser)
    parser.set_defaults(func=run)


def _client(args: argparse.Namespace) -> Any:
    """The Anthropic client: the real API, or the --replay file's responses through the
    client library's own HTTP stack (schedc.agent.transport)."""
    import anthropic

    if args.replay:
        from schedc.agent.transport import ScriptedTransport, load_recording, scripted_client

        return scripted_client(ScriptedTransport(load_recording(args.replay)))
    return anthropic.Anthropic(api_key=os.environ["ANTHROPIC_API_KEY"])


def run(args: argparse.Namespace) -> Exit:
    runner = runner_from(args)
    if not args.replay and not os.environ.get("ANTHROPIC_API_KEY"):
        return usage_error(
            "synthesize needs an Anthropic API key",
            args,
            "export ANTHROPIC_API_KEY=... (https://console.anthropic.com), or replay a recorded "
            "run with --replay FILE",
        )
    if args.max_iterations < 1:
        return usage_error("--max-iterations must be at least 1", args)
    workload = None
    if args.workload:
        try:
            raw = args.workload.read_bytes()
        except OSError as exc:
            return usage_error(f"cannot read {args.workload}: {exc.strerror}", args)
        if len(raw) > MAX_WORKLOAD_BYTES:
            return usage_error(
                f"{args.workload} is larger than {MAX_WORKLOAD_BYTES // 1024} KiB;"
                " describe the workload in a few paragraphs",
                args,
            )
        workload = raw.decode("utf-8", "replace")
    profile = None
    if args.profile:
        from schedc.profile.model import ProfileFileError, read_profile

        try:
            profile = read_profile(args.profile)
        except ProfileFileError as exc:
            return usage_error(str(exc), args)
    model = args.model or synthesis_model() or DEFAULT_MODEL
    recording: list[dict[str, Any]] = []
    try:
        report = synthesize(
            _client(args),
            runner,
            args.goal,
            model=model,
            workload=workload,
            max_iterations=args.max_iterations,
            say=progress,
            recording=recording,
            profile=profile,
        )
    except ReferenceMissing as exc:
        return usage_error(str(exc), args)
    except ValueError as exc:  # an unreadable --replay file
        return usage_error(str(exc), args)
    if args.transcript:
        data = {"goal": args.goal, "model": model, "responses": recording, **report.to_json()}
        Path(args.transcript).write_text(json.dumps(data, indent=1), encoding="utf-8")
    if args.format == "json":
        print_json(
            json_envelope("synthesize", ok=report.submitted is not None, results=[report.to_json()])
        )
    else:
        print(render(report))
    return Exit.OK if report.submitted is not None else Exit.ERRORS
