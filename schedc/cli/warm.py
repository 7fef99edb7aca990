"""`schedc warm -- COMMAND [ARG...]`: run a script or a batch of schedc commands with warm
sandbox guests, as `schedc mcp` keeps them for agents.

The commands COMMAND starts (`schedc verify`, `schedc verify --run`, `schedc test`, `schedc
bench`, directly or from a shell script) find the pool in SCHEDC_WARM_SANDBOX and send their
guest jobs to a guest booted once per kernel, instead of booting a guest each
(schedc.verifier.warm). A guest is booted when the first job asks for its kernel, and
replaced when a job leaves it dirty or crashed. When COMMAND ends, or schedc warm is
stopped, the guests are shut down and the pool removed. The exit status is COMMAND's.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess

from schedc.cli.output import progress, usage_error

# How long COMMAND has to end after it was asked to (schedc warm itself was stopped).
STOP_WAIT_S = 10.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run COMMAND (a script, or schedc itself) with warm sandbox guests: every sandbox "
        "job of the schedc commands it starts goes to a guest booted once per kernel, not to "
        "a fresh boot each. The guests are shut down when COMMAND ends. See docs/agent.md."
    )
    parser.epilog = (
        "example: schedc warm -- sh -c 'for p in policies/*.sched; do schedc verify --run 10 "
        "\"$p\"; done'"
    )
    parser.add_argument(
        "--kernel",
        dest="kernels",
        action="append",
        metavar="KIT",
        help="keep guests of this kernel (a kit folder or a bzImage; repeatable; default the "
        "settings' kernels)",
    )
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]",
                        help="the command to run, after --")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        return usage_error("give the command to run after --: schedc warm -- COMMAND [ARG...]")
    if shutil.which(command[0]) is None:
        return usage_error(f"no such command: {command[0]}")
    from schedc.settings import load_settings  # noqa: PLC0415
    from schedc.verifier.warm import WarmPool  # noqa: PLC0415

    # A broken setting is reported with its remedy (exit 2) by the command line's entry point.
    pool = WarmPool(load_settings(kernels=args.kernels), progress).start()
    child: subprocess.Popen[bytes] | None = None
    try:
        if not pool.kernels:
            progress("warning: no sandbox kernel to keep warm (set `kernels` or `kernel`, or "
                     "pass --kernel KIT): the commands boot their own guests")
        else:
            names = ", ".join(sorted(pool.kernels))
            progress(f"warm sandbox for {len(pool.kernels)} kernel(s) ({names}), booted when "
                     "a command first needs one")
        # The child shares this terminal and process group: Ctrl-C reaches both.
        child = subprocess.Popen(command)
        code = child.wait()
        return code if code >= 0 else 128 - code
    finally:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        boots = sum(g.boots for g in pool.guests.values())
        pool.close()
        progress(f"warm sandbox: {boots} boot(s); guests shut down")
