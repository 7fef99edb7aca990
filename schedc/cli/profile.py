"""`schedc profile`: sample a real workload on this machine into a workload profile.

    schedc profile [--pid PID... | --cgroup PATH | --all] [--seconds N] [--interval MS]
                   [-o PROFILE.json] [--format human|json] [-- COMMAND...]

Exactly one target: a COMMAND after `--` (started here, followed with its children, stopped
when the window ends), running processes (--pid, with their threads and descendants), a cgroup
v2 folder (--cgroup) or every task (--all, root only). Progress goes to stderr about once a
second. Ctrl-C or SIGTERM ends the window early: the profile so far is still written and
printed, the command is stopped, and the exit status is 130 / 143.

Exit status: 0 profiled; 2 a usage problem (no or two targets, bad numbers, unknown pid, no
such cgroup, --all without root, a command that cannot be started). docs/profile.md has
details.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from schedc.cli.exit import Exit
from schedc.cli.options import add_format, count, seconds_upto
from schedc.cli.output import (
    json_envelope,
    print_json,
    progress,
    usage_error,
    write_atomically,
)
from schedc.profile.model import Profile, Target
from schedc.profile.sample import (
    MAX_INTERVAL_MS,
    MIN_INTERVAL_MS,
    ProfileError,
    SamplingInterrupted,
    collect,
    profile_command,
)

DEFAULT_SECONDS = 10.0
DEFAULT_INTERVAL_MS = 100
MAX_SECONDS = 24 * 3600.0


_seconds = seconds_upto(MAX_SECONDS)
_interval = count(MIN_INTERVAL_MS, MAX_INTERVAL_MS, "whole number of ms")
_pid = count(1, what="process id")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Profile a real workload on this machine: per thread, from /proc, every --interval "
        "for --seconds; group the threads (process name, thread name, cgroup), measure each "
        "group's CPU share, runtime per run, wake-ups and run-queue delay, and classify it "
        "(batch, interactive, latency-critical, io-bound). Give exactly one target: a "
        "COMMAND after --, --pid, --cgroup or --all. docs/profile.md has the details."
    )
    parser.usage = (
        "schedc profile [--pid PID... | --cgroup PATH | --all] [--seconds N] [--interval MS] "
        "[-o PROFILE.json] [--scenario OUT.scenario.toml] [--draft OUT.sched] "
        "[--format human|json] [-- COMMAND...]"
    )
    parser.add_argument(
        "--pid",
        dest="pids",
        type=_pid,
        nargs="+",
        action="extend",
        metavar="PID",
        help="running processes to profile, with their threads and descendants",
    )
    parser.add_argument(
        "--cgroup",
        metavar="PATH",
        help="a cgroup v2 folder (/sys/fs/cgroup/app.slice) or path as /proc/PID/cgroup shows "
        "it (/app.slice): its tasks and its descendants'",
    )
    parser.add_argument(
        "--all", action="store_true", help="every task on the machine (needs root)"
    )
    parser.add_argument(
        "--seconds",
        type=_seconds,
        default=DEFAULT_SECONDS,
        metavar="N",
        help=f"length of the window (default {DEFAULT_SECONDS:g}; a COMMAND that exits "
        "sooner ends it)",
    )
    parser.add_argument(
        "--interval",
        type=_interval,
        default=DEFAULT_INTERVAL_MS,
        metavar="MS",
        help=f"sampling interval in ms, {MIN_INTERVAL_MS}..{MAX_INTERVAL_MS} "
        f"(default {DEFAULT_INTERVAL_MS})",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="PROFILE.json", help="write the profile (JSON) here"
    )
    parser.add_argument(
        "--scenario",
        type=Path,
        metavar="OUT.scenario.toml",
        help="also write a sandbox scenario of the same shape (for schedc test): the groups' "
        "comms, counts scaled to the guest, run/sleep cycles, default expectations",
    )
    parser.add_argument(
        "--scenario-cpus",
        type=int,
        metavar="N",
        help="the scenario's guest CPUs, 1..8 (default: this machine's, at most 4)",
    )
    parser.add_argument(
        "--draft",
        type=Path,
        metavar="OUT.sched",
        help="also write a first DSL draft whose classes are the profile's groups: a starting "
        "point to edit, labelled DRAFT",
    )
    add_format(parser)
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help=argparse.SUPPRESS
    )
    parser.set_defaults(func=run)


def _target(args: argparse.Namespace) -> Target | Exit:
    command = list(args.command or [])
    if command and command[0] == "--":
        command = command[1:]
    chosen = [
        name
        for name, given in (
            ("-- COMMAND", bool(command)),
            ("--pid", bool(args.pids)),
            ("--cgroup", args.cgroup is not None),
            ("--all", args.all),
        )
        if given
    ]
    if not chosen:
        return usage_error(
            "give one target: -- COMMAND..., --pid PID..., --cgroup PATH or --all", args
        )
    if len(chosen) > 1:
        return usage_error(f"give one target, not {' and '.join(chosen)}", args)
    if command:
        return Target(mode="command", command=command)
    if args.pids:
        return Target(mode="pids", pids=sorted(set(args.pids)))
    if args.cgroup is not None:
        if not args.cgroup:
            return usage_error("--cgroup: give a cgroup folder or path", args)
        return Target(mode="cgroup", cgroup=args.cgroup)
    if os.geteuid() != 0:
        return usage_error(
            "--all needs root (other users' threads are not readable); run it as root, or "
            "profile your own processes with --pid, --cgroup or -- COMMAND",
            args,
        )
    return Target(mode="all")


def write_profile(path: Path, profile: Profile) -> None:
    """The profile's JSON at `path`, atomically."""
    write_atomically(path, profile.model_dump_json(indent=2) + "\n")


def _derived(args: argparse.Namespace, profile: Profile) -> list[tuple[Path, str]]:
    """The --scenario and --draft files' texts; ValueError (naming the option) when the
    profile cannot give one."""
    out: list[tuple[Path, str]] = []
    if args.scenario is not None:
        from schedc.profile.scenario import ProfileScenarioError, scenario_from_profile

        try:
            out.append((args.scenario, scenario_from_profile(profile, cpus=args.scenario_cpus)))
        except ProfileScenarioError as exc:
            raise ValueError(f"--scenario: {exc}") from None
    if args.draft is not None:
        from schedc.profile.draft import DraftError, draft_policy

        try:
            out.append((args.draft, draft_policy(profile)))
        except DraftError as exc:
            raise ValueError(f"--draft: {exc}") from None
    return out


def run(args: argparse.Namespace) -> Exit:
    target = _target(args)
    if isinstance(target, Exit):
        return target
    for option, path in (("-o", args.output), ("--scenario", args.scenario), ("--draft", args.draft)):
        if path is not None and path.is_dir():
            return usage_error(f"{option} {path}: is a folder; give a file name", args)
    if args.scenario_cpus is not None and args.scenario is None:
        return usage_error("--scenario-cpus goes with --scenario", args)
    if args.cgroup is not None:
        try:
            from schedc.profile.sample import resolve_cgroup

            _folder, path = resolve_cgroup(args.cgroup)
        except ProfileError as exc:
            return usage_error(str(exc), args)
        target = Target(mode="cgroup", cgroup=path)
    status: int | None = None
    interrupted: SamplingInterrupted | None = None
    try:
        if target.mode == "command":
            profile, status = profile_command(
                target.command,
                seconds=args.seconds,
                interval_ms=args.interval,
                progress=progress,
            )
        else:
            profile = collect(
                target, seconds=args.seconds, interval_ms=args.interval, progress=progress
            )
    except ProfileError as exc:
        return usage_error(str(exc), args)
    except (FileNotFoundError, PermissionError) as exc:
        return usage_error(f"cannot start {target.command[0]!r}: {exc.strerror}", args)
    except SamplingInterrupted as stop:
        interrupted = stop
        profile = stop.profile
    if args.output is not None:
        write_profile(args.output, profile)
    try:
        derived = _derived(args, profile)
    except ValueError as exc:  # the profile itself is written and shown
        derived = []
        problem: str | None = str(exc)
    else:
        problem = None
    for path, text in derived:
        write_atomically(path, text)
    stopped = f"stopped after {profile.seconds:.1f} s: the profile covers the window so far"
    if args.format == "json":  # the profile stands; a --scenario or --draft problem, or a stop
        print_json(
            json_envelope(
                "profile",
                ok=problem is None and interrupted is None,
                results=[profile.model_dump(mode="json")],
                error=problem or (stopped if interrupted is not None else None),
            )
        )
    else:
        from schedc.profile.render import render_human

        sys.stdout.write(render_human(profile))
    if status is not None and status != 0:
        how = f"signal {-status}" if status < 0 else f"status {status}"
        progress(f"the command ended with {how}")
    if args.output is not None:
        progress(f"wrote {args.output}")
    for path, _text in derived:
        progress(f"wrote {path}")
    if problem is not None:
        # with --format json the envelope above has it as its error
        return Exit.USAGE if args.format == "json" else usage_error(problem)
    if interrupted is not None:
        progress(stopped)
        raise interrupted.cause  # schedc.lifecycle.run_main: "interrupted", exit 130 / 143
    return Exit.OK
