"""The warm sandbox guest's agent (see schedc.verifier.warm): waits for jobs in ROOT/queue,
runs each in a session of its own, then puts the guest back as it was before the first job.

    python3 -I -S warm_agent.py ROOT PACKAGE_ROOT

It runs in the guest for the guest's whole life, so it imports nothing but the standard
library's smallest modules and forks nothing while it waits: under TCG every process start is
emulated and costs tens of milliseconds of host CPU.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

STATUS = ".job-status"
STATE = "/sys/kernel/sched_ext/state"
TRACING = "/sys/kernel/tracing"
CGROUPS = "/sys/fs/cgroup"
BPFFS = "/sys/fs/bpf"
OOPS = ("Oops", "BUG:", "Kernel panic", "general protection fault", "RIP:")
# While a job runs (a scenario or a bench measuring): a 9p stat per tick for a loader request.
JOB_POLL_S = 0.1
POLL_S = 0.2  # an idle guest: 0.1 of a host CPU at this rate, 0.3 at 20 listings a second


def pids() -> set[int]:
    return {int(n) for n in os.listdir("/proc") if n.isdigit()}


def cgroups() -> set[str]:
    found = set()
    for folder, subs, _files in os.walk(CGROUPS):
        found.update(os.path.join(folder, s) for s in subs)
    return found


def remove_tree(path: str) -> None:
    """rm -rf without shutil (a bpffs pin folder or a /tmp entry)."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            for name in os.listdir(path):
                remove_tree(os.path.join(path, name))
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError:
        pass


class Kmsg:
    """Counts the kernel's oops lines since the last call (from /dev/kmsg, without dmesg)."""

    def __init__(self) -> None:
        try:
            self.fd: int | None = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.fd = None

    def oopses(self) -> int:
        found = 0
        while self.fd is not None:
            try:
                record = os.read(self.fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == 32:  # EPIPE: records were overwritten; go on
                    continue
                break
            if not record:
                break
            found += any(word in record for word in OOPS)
        return found


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass


def clean(base_pids: set[int], base_cgroups: set[str], base_tmp: set[str], kmsg: Kmsg) -> str:
    """Undoes what a job left; "clean", or "dirty: WHY" when the guest cannot be trusted."""
    me = os.getpid()
    for _ in range(3):
        for pid in pids() - base_pids - {me}:
            try:
                os.kill(pid, signal.SIGKILL)  # kernel threads ignore it
            except OSError:
                pass
        time.sleep(0.05)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
    for name in os.listdir(BPFFS) if os.path.isdir(BPFFS) else []:
        if name.startswith("schedc-"):
            remove_tree(os.path.join(BPFFS, name))  # the links of any scheduler left attached
    state = read(STATE)
    for _ in range(30):
        if state != "enabled":
            break
        time.sleep(0.1)
        state = read(STATE)
    write(f"{TRACING}/tracing_on", "0")
    write(f"{TRACING}/set_event", "")
    write(f"{TRACING}/trace", "")
    for folder in sorted(cgroups() - base_cgroups, key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass
    for name in set(os.listdir("/tmp")) - base_tmp:
        remove_tree(os.path.join("/tmp", name))
    if state == "enabled":
        ops = read("/sys/kernel/sched_ext/root/ops")
        return f"dirty: a scheduler is still attached ({ops})"
    if kmsg.oopses():
        return "dirty: the kernel oopsed during the job"
    if cgroups() - base_cgroups:
        return "dirty: a cgroup of the job could not be removed"
    return "clean"


def _child(log_path: str, then: Callable[[], int]) -> int:
    """Forks; the child, in a session of its own with its output to `log_path`, runs `then`
    and exits with its status. The child's pid."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid == 0:
        status = 127
        try:
            os.setsid()
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.chdir("/tmp")
            status = then()
        finally:
            os._exit(status)
    os.close(log)
    return pid


def serve_loader(out: str, loader: Callable[[list[str]], int] | None) -> None:
    """A job's request to run the guest loader (schedc.verifier.sandbox's loader lines, which
    ask when SCHEDC_AGENT is set): run in a child of this process, which has the loader
    imported already, instead of a Python of its own that costs seconds to start under TCG."""
    request = os.path.join(out, "loader.request")
    if not os.path.exists(request):
        return
    try:
        with open(request) as f:
            args = [line.rstrip("\n") for line in f]
    finally:
        os.unlink(request)
    status = 127
    if loader is not None:
        pid = _child(os.path.join(out, "loader.log"), lambda: loader(args))
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    write(os.path.join(out, "loader.exit.tmp"), f"{status}\n")
    os.replace(os.path.join(out, "loader.exit.tmp"), os.path.join(out, "loader.exit"))


def run_job(script: str, loader: Callable[[list[str]], int] | None) -> None:
    out = os.path.dirname(script)

    def job() -> int:
        os.environ["SCHEDC_AGENT"] = "1"
        os.execv("/bin/sh", ["sh", script])
        return 127

    pid = _child(os.path.join(out, "agent.log"), job)
    while os.waitpid(pid, os.WNOHANG)[0] == 0:
        serve_loader(out, loader)
        time.sleep(JOB_POLL_S)


def guest_loader(package_root: str) -> Callable[[list[str]], int] | None:
    """schedc.verifier.guest_loader's main, imported once; None when it cannot be."""
    sys.path.insert(0, package_root)
    try:
        from schedc.verifier import guest_loader as module  # noqa: PLC0415
    except Exception:  # noqa: BLE001 (jobs then start the loader themselves)
        return None
    return module.main


def main(root: str, package_root: str) -> int:
    loader = guest_loader(package_root)
    queue = os.path.join(root, "queue")
    base_pids, base_cgroups = pids(), cgroups()
    base_tmp = set(os.listdir("/tmp"))
    kmsg = Kmsg()
    kmsg.oopses()
    write(os.path.join(root, "ready.tmp"), f"{os.getpid()}\n")
    os.replace(os.path.join(root, "ready.tmp"), os.path.join(root, "ready"))
    while not os.path.exists(os.path.join(root, "stop")):
        try:
            jobs = sorted(n for n in os.listdir(queue) if n.isdigit())
        except OSError:
            jobs = []
        if not jobs:
            time.sleep(POLL_S)
            continue
        entry = os.path.join(queue, jobs[0])
        script = read(entry)
        try:
            os.unlink(entry)
        except OSError:
            pass
        if not script:
            continue
        run_job(script, loader)
        status = clean(base_pids, base_cgroups, base_tmp, kmsg)
        out = os.path.dirname(script)
        write(os.path.join(out, STATUS + ".tmp"), status + "\n")
        os.replace(os.path.join(out, STATUS + ".tmp"), os.path.join(out, STATUS))
    try:
        os.unlink(os.path.join(root, "ready"))
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
