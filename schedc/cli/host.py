"""`schedc run`, `schedc status`, `schedc stop`: a policy on this machine's own sched_ext
kernel (docs/run.md; the work is schedc.verifier.hostctl's).

    schedc run NAME[@REV]|FILE [--set NAME=VALUE]... [--replace] [--repo DIR] [--format ...]
    schedc status [--format human|json]
    schedc stop [--force] [--format human|json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from schedc.cli.exit import Exit
from schedc.cli.options import add_format, add_include, add_set
from schedc.cli.output import json_envelope, print_json, progress, write_diagnostics
from schedc.diagnostics import summary_line
from schedc.verifier.hostctl import (
    Attachment,
    HostControlError,
    HostStatus,
    attach,
    detach,
    host_status,
    now,
)

SOURCE_SUFFIXES = (".sched", ".bpf.c")


# -- run ---------------------------------------------------------------------------------------
def _configure_run(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compile a stored policy (or a policy file) against this machine's kernel and attach "
        "it; it stays attached after the command ends, until `schedc stop`, a reboot or the "
        "kernel's watchdog. Root only, on a kernel with sched_ext. To try a policy without "
        "such a kernel, use `schedc verify --run` (the sandbox guest)."
    )
    parser.add_argument(
        "policy",
        metavar="NAME[@REV]|FILE",
        help="a policy of the repository (REV: a git revision or vN), or a .sched / .bpf.c file",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="detach the scheduler attached now first, even one another tool attached (as "
        "`schedc stop --force` does)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long the kernel must keep it attached before it counts as running (default 1)",
    )
    parser.add_argument(
        "--repo", help="repository folder (SCHEDC_REPO; default ~/.local/share/schedc/policies)"
    )
    add_include(parser)
    add_set(parser)
    add_format(parser)
    parser.set_defaults(func=_run)


def _source(args: argparse.Namespace) -> tuple[object, Attachment] | Exit:
    """The Source to compile and the record to keep, from a file or the repository."""
    from schedc.compiler.pipeline import Source

    path = Path(args.policy)
    if args.policy.endswith(SOURCE_SUFFIXES) and "@" not in args.policy:
        if not path.is_file():
            return _fail(args, f"no such policy file: {args.policy}", None, Exit.USAGE)
        return Source(path), Attachment(policy=str(path), attached_at=now())
    from schedc.repo.gitstore import GitStore, RepoError, resolve_location
    from schedc.repo.history import show_policy, split_spec, verification_of

    try:
        store = GitStore(resolve_location(args.repo))
        entry, sha = show_policy(store, args.policy)
    except RepoError as problem:
        return _fail(args, problem.message, problem.hint, Exit.USAGE)
    meta = entry.meta
    raw = entry.files.get(meta.source) if meta is not None and meta.source else None
    if meta is None or raw is None:
        return _fail(args, f"'{entry.name}' has no source to build", None, Exit.ERRORS)
    report, _problem = verification_of(entry)
    name, rev = split_spec(args.policy)
    record = Attachment(
        policy=f"{name}@{rev}" if rev else name,
        attached_at=now(),
        commit=sha,
        version=meta.version,
        verification=report.summary.status if report else None,
    )
    given = Path("policies") / entry.name / meta.source  # names it in diagnostics
    return Source(given, text=raw.decode("utf-8", "replace")), record


def _run(args: argparse.Namespace) -> Exit:
    from schedc.settings import load_settings
    from schedc.verifier.hostctl import Host, preflight, refuse_attached

    host = Host()
    if args.settle < 0:
        return _fail(args, "--settle needs a number of seconds >= 0", None, Exit.USAGE)
    settings = load_settings(
        btf=str(host.sysfs / "kernel" / "btf" / "vmlinux"), params=args.params
    )  # this kernel's own types, whatever the matrix is
    try:
        preflight(settings, host)
        if not args.replace:  # before the compile: it is the slow part
            refuse_attached(host_status(host))
    except HostControlError as problem:
        return _fail(args, problem.message, problem.hint, Exit.USAGE)
    from schedc.compiler.pipeline import compile_policy  # after the checks: it is slow to import

    found = _source(args)
    if isinstance(found, Exit):
        return found
    source, record = found
    if record.verification not in (None, "verified") and args.format == "human":
        progress(f"{record.policy} is {record.verification} in the repository")
    with tempfile.TemporaryDirectory(prefix="schedc-run-") as build:
        compiled = compile_policy(
            source,  # type: ignore[arg-type]
            settings,
            out=Path(build) / "policy.bpf.o",
            include_dirs=args.include,
        )
        if not compiled.ok or compiled.object_path is None:
            if args.format == "json":
                print_json(
                    json_envelope(
                        "run",
                        ok=False,
                        diagnostics=compiled.diagnostics,
                        error=f"{record.policy} did not compile",
                    )
                )
            else:
                write_diagnostics(compiled.diagnostics, sys.stderr)
                print(summary_line(compiled.diagnostics), file=sys.stderr)
            return Exit.ERRORS
        if args.params:
            record = _with_params(record, args.params)
        try:
            status = attach(
                compiled.object_path,
                record,
                settings,
                replace=args.replace,
                settle_s=args.settle,
                host=host,
                progress=progress if args.format == "human" else lambda _m: None,
            )
        except HostControlError as problem:
            code = Exit.USAGE if problem.environment else Exit.ERRORS
            return _fail(args, problem.message, problem.hint, code, compiled.diagnostics)
    if args.format == "json":
        print_json(
            json_envelope(
                "run", ok=True, diagnostics=compiled.diagnostics, results=[status.to_json()]
            )
        )
    else:
        write_diagnostics(compiled.diagnostics, sys.stderr)
        print(describe(status))
        print("`schedc stop` detaches it")
    return Exit.OK


def _with_params(record: Attachment, params: list[str]) -> Attachment:
    import dataclasses

    pairs = dict(p.split("=", 1) for p in params if "=" in p)
    return dataclasses.replace(record, params=pairs)


# -- status ------------------------------------------------------------------------------------
def _configure_status(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "What sched_ext scheduler this machine runs now, from /sys/kernel/sched_ext, and "
        "whether schedc attached it (read only)."
    )
    add_format(parser)
    parser.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> Exit:
    status = host_status()
    if args.format == "json":
        print_json(json_envelope("status", ok=True, results=[status.to_json()]))
    else:
        print(describe(status))
    return Exit.OK


# -- stop --------------------------------------------------------------------------------------
def _configure_stop(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Detach the scheduler schedc attached (this machine goes back to the kernel's default "
        "scheduler). Root only. Nothing attached is not an error."
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="also a scheduler another tool attached: scx_loader is asked to stop the one it "
        "runs, anything else is disabled with SysRq-S",
    )
    add_format(parser)
    parser.set_defaults(func=_stop)


def _stop(args: argparse.Namespace) -> Exit:
    import os

    if os.geteuid() != 0:
        return _fail(args, "stopping a scheduler needs root", "run it with sudo", Exit.USAGE)
    say = progress if args.format == "human" else lambda _m: None
    try:
        before, after = detach(force=args.force, progress=say)
    except HostControlError as problem:
        return _fail(args, problem.message, problem.hint, Exit.USAGE)
    if args.format == "json":
        result = {"stopped": before.ops if before.attached else None, **after.to_json()}
        print_json(json_envelope("stop", ok=True, results=[result]))
    elif before.attached:
        print(f"stopped '{before.ops}'; {describe(after)}")
    else:
        print(describe(after))
    return Exit.OK


# -- shared ------------------------------------------------------------------------------------
def describe(status: HostStatus) -> str:
    """status in a few lines for people."""
    if not status.sched_ext:
        return "this kernel has no sched_ext: the kernel's default scheduler runs every task"
    if not status.attached:
        lines = ["sched_ext: disabled: the kernel's default scheduler runs every task"]
    else:
        lines = [f"sched_ext: {status.state}: scheduler '{status.ops}'"]
        a = status.by_schedc
        if a is not None:
            built = f" (commit {a.commit[:12]})" if a.commit else ""
            with_params = (
                " with " + ", ".join(f"{k}={v}" for k, v in a.params.items()) if a.params else ""
            )
            lines.append(f"  attached by schedc: {a.policy}{built}{with_params}")
            lines.append(f"  since {a.attached_at}; pinned at {a.pin}")
        elif status.scx_loader:
            lines.append(f"  run by scx_loader: {status.scx_loader}")
        else:
            lines.append("  attached by another tool, not by schedc")
    if status.stale is not None:
        why = f": {status.exit_reason}" if status.exit_reason else ""
        lines.append(
            f"  note: schedc attached {status.stale.policy} at {status.stale.attached_at}; the "
            f"kernel no longer runs it{why}"
        )
    return "\n".join(lines)


def _fail(
    args: argparse.Namespace,
    message: str,
    hint: str | None,
    code: Exit,
    diagnostics: object = (),
) -> Exit:
    if args.format == "json":
        print_json(
            json_envelope(args.command, ok=False, error=message, hint=hint, diagnostics=diagnostics)  # type: ignore[arg-type]
        )
    else:
        print(f"schedc {args.command}: error: {message}", file=sys.stderr)
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
    return code


RUN = SimpleNamespace(configure=_configure_run)
STATUS = SimpleNamespace(configure=_configure_status)
STOP = SimpleNamespace(configure=_configure_stop)
