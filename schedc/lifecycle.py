"""How a schedc process ends: signals become exceptions, children die with us.

`schedc` runs long children (clang, vng and the QEMU it starts, MCP workers), each in a process
group of its own so that it can be stopped with everything it started. Python's default for
SIGTERM and SIGHUP is to die on the spot, which runs no `finally` and so left those groups
running. `install_signal_handlers()` (called by the command line's entry point) makes SIGTERM
and SIGHUP raise `Stopped`, and SIGINT `KeyboardInterrupt`, in the main thread; every cleanup
then runs. A second signal while that cleanup runs is ignored: a cleanup is short, and a
half-done one is what leaves processes behind.

Python runs a signal handler only between bytecodes of the main thread, so a main thread
stuck in C (libclang parsing a pathological source in `schedc check`) would never see the
signal. A watchdog thread learns of it through `signal.set_wakeup_fd` (written by the C-level
handler at once) and, when the process is still alive STOP_GRACE_SECONDS later, kills the
children, says so and ends the process with os._exit.

Child process groups are registered with `child_group()`; `kill_children()` (run by the entry
point on the way out, and at exit) kills whatever is still registered, so that a child started
from a thread (the MCP server's workers) dies too.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_groups: set[int] = set()
_groups_lock = threading.RLock()  # RLock: the signal handler may run while it is held
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`
EXIT_INTERRUPTED = 130  # 128 + SIGINT
STOP_GRACE_SECONDS = 5.0  # for the cleanups after a signal, before the watchdog ends it all
_stopping = False


class Stopped(BaseException):
    """The process was told to stop (SIGTERM, SIGHUP). A BaseException, like
    KeyboardInterrupt, so that `except Exception` blocks do not swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """A handler that does nothing (unlike SIG_IGN, it is not inherited by children)."""


def _handler(signum: int, _frame: FrameType | None) -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    for sig in (*_STOP_SIGNALS, signal.SIGINT):
        signal.signal(sig, _ignore)
    # At once, not only in the `finally` blocks: a thread may be waiting for a child (an MCP
    # worker), and the main thread's unwinding may wait for that thread.
    kill_children()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Stopped(signum)


def install_signal_handlers(prog: str = "schedc") -> None:
    """SIGTERM and SIGHUP raise Stopped, SIGINT KeyboardInterrupt (main thread only), with
    the watchdog for a main thread that cannot take them."""
    global _stopping
    if threading.current_thread() is not threading.main_thread():
        return
    _stopping = False
    handled = []
    for sig in (*_STOP_SIGNALS, signal.SIGINT):
        if signal.getsignal(sig) is signal.SIG_IGN:  # nohup, or a parent that means it
            continue
        signal.signal(sig, _handler)
        handled.append(sig)
    _start_watchdog(prog, handled)


def _start_watchdog(prog: str, handled: list[int]) -> None:
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread after all
        os.close(read)
        os.close(write)
        return
    if previous != -1:  # someone else's (an event loop's): leave it to them
        signal.set_wakeup_fd(previous)
        os.close(read)
        os.close(write)
        return
    wanted = {int(sig) for sig in handled}

    def watch() -> None:
        while True:
            try:
                data = os.read(read, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in wanted:
                    time.sleep(STOP_GRACE_SECONDS)  # the main thread's own cleanup first
                    kill_children()
                    name = signal.Signals(signum).name
                    _say(prog, f"stopped by {name} (forced: busy in native code)")
                    os._exit(128 + signum)

    threading.Thread(target=watch, name="schedc-signal-watchdog", daemon=True).start()


def kill_group(pgid: int) -> None:
    """SIGKILL to a whole process group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def wait_group_gone(pgid: int, timeout: float = 2.0) -> bool:
    """Waits until no live process (zombies aside) is left in group `pgid`: after
    kill_group, a killed child of the group leader may still be exiting when the leader has
    been reaped. False when some are still there after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
                alive = True
                break
        if not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


@contextmanager
def child_group(proc: subprocess.Popen[Any]) -> Iterator[subprocess.Popen[Any]]:
    """A child started with start_new_session=True: its group is killed when the block ends
    (normally or not) and, until then, by kill_children()."""
    with _groups_lock:
        _groups.add(proc.pid)
    try:
        yield proc
    finally:
        kill_group(proc.pid)
        with _groups_lock:
            _groups.discard(proc.pid)


def kill_children() -> None:
    """Kills every registered child process group (on the way out of the process)."""
    with _groups_lock:
        groups = list(_groups)
    for pgid in groups:
        kill_group(pgid)


atexit.register(kill_children)


def _say(prog: str, message: str) -> None:
    try:
        print(f"{prog}: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr is gone too
        pass


def _quiet_stdout() -> None:
    """After EPIPE: stdout points at /dev/null, so that the interpreter's last flush of what is
    still buffered cannot fail again (that printed "Exception ignored ... BrokenPipeError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def run_main(body: Callable[[], int], prog: str = "schedc") -> int:
    """An entry point's body with schedc's way of ending: signals as exceptions (see above),
    children killed on every way out, and one line instead of a traceback when stopped.

    Exit status: body's; 128 + N when stopped by signal N (143 for SIGTERM, 129 for SIGHUP,
    130 for SIGINT); 141 when the reader of stdout went away (`schedc ... | head`).
    """
    try:
        install_signal_handlers(prog)
        status = body()
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except SystemExit:  # argparse's --help, --version and usage errors
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()
        raise
    except Stopped as stop:
        kill_children()
        _say(prog, f"stopped by {stop.name}")
        return stop.exit_status
    except KeyboardInterrupt:
        kill_children()
        _say(prog, "interrupted")
        return EXIT_INTERRUPTED
    finally:
        kill_children()
