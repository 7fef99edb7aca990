"""A warm sandbox: one long-lived guest per kernel that runs the jobs a fresh boot would.

A boot under TCG costs about 14 s, more than most jobs (a verify of a draft, a short run). A
`WarmGuest` boots a kernel once with a shared folder (its *root*) and runs `agent_script` in it:
a loop that waits for jobs, runs each one in a session of its own and then puts the guest back
into a clean state. A job is exactly what a fresh boot would run (the script `load_in_sandbox`,
the behaviour tests and bench write), in a folder under the root, so the results are read the
same way.

    root/kernel         what the guest booted (kernel, CPUs, memory): jobs for others boot cold
    root/vng.pid        the process group of vng and its QEMU
    root/ready          written by the agent when it waits for jobs
    root/queue/N        a job: the path of its script (renamed into place whole)
    root/jobs/N-NAME/   a job's folder; `.job-status` in it is the agent's last word on it:
                        "clean", or "dirty: WHY" (the guest is then replaced)
    root/lock           one job at a time, across processes (flock)

Between jobs the agent kills every process the job left (everything not running before the
first job), removes the pins under /sys/fs/bpf, waits for sched_ext to read `disabled`, stops
tracing, and removes the cgroups and /tmp entries the job made. A job that leaves a scheduler
attached or that the kernel oopsed in makes the guest dirty; a job past its deadline, a guest
that died or a dirty one is replaced by a fresh boot, by the owner.

Who may use it: the process that owns a `WarmGuest` (the MCP server, a batch command) and its
children. The roots are in SCHEDC_WARM_SANDBOX (os.pathsep-separated), which the owner sets;
`client_for(settings)` finds the one for a kernel. Without one, callers boot as before.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from schedc.lifecycle import child_group, kill_group
from schedc.settings import EnvironmentProblem, Settings, cache_root
from schedc.verifier import warm_agent

ENV = "SCHEDC_WARM_SANDBOX"
STATUS = warm_agent.STATUS
BOOT_TIMEOUT_S = 240.0
# A guest is replaced after this many jobs: whatever a job leaves that cleaning misses (memory,
# kernel state) does not pile up without end.
MAX_JOBS = 40


def _identity(settings: Settings) -> str:
    return f"{os.path.abspath(str(settings.kernel))} cpus={settings.vm_cpus} memory={settings.vm_memory}"


def agent_script(root: Path) -> str:
    """The guest's side: mount what jobs use, then the agent (warm_agent.py) until `stop`."""
    r = shlex.quote(str(root))
    agent = shlex.quote(str(Path(__file__).with_name("warm_agent.py")))
    return f"""#!/bin/sh
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
{shlex.quote(sys.executable)} -I -S {agent} {r} > {r}/agent.log 2>&1
poweroff -f
"""


class WarmGuest:
    """The owner of one warm guest: boots it, keeps it booted (a dead or dirty guest is booted
    again), and shuts it down. Jobs go through `Client`."""

    def __init__(
        self,
        settings: Settings,
        progress: Callable[[str], None] | None = None,
        boot_timeout_s: float = BOOT_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.say = progress or (lambda _m: None)
        self.boot_timeout_s = boot_timeout_s
        base = cache_root(settings) / "warm"
        base.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="guest-", dir=base))
        self.boots = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._group: object | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------------

    def start(self) -> WarmGuest:
        """Boots the guest and waits until its agent takes jobs; then keeps it so, in a thread.
        Raises EnvironmentProblem when it does not come up."""
        self._boot()
        _publish(self.root)
        self._watch = threading.Thread(target=self._keep, name="schedc-warm", daemon=True)
        self._watch.start()
        return self

    def _boot(self) -> None:
        from schedc.verifier.sandbox import vng_command, vng_environment  # noqa: PLC0415

        with self._lock:
            self._reap()
            for name in ("ready", "stop", "vng.pid"):
                (self.root / name).unlink(missing_ok=True)
            shutil.rmtree(self.root / "queue", ignore_errors=True)
            (self.root / "queue").mkdir()
            (self.root / "jobs").mkdir(exist_ok=True)
            (self.root / "lock").touch()
            (self.root / "kernel").write_text(_identity(self.settings) + "\n")
            script = self.root / "agent.sh"
            script.write_text(agent_script(self.root))
            cmd = vng_command(self.settings, self.root, script)
            self.say(f"booting the warm sandbox ({Path(str(self.settings.kernel)).parent.name})")
            sink = open(self.root / "vng.out", "ab")  # noqa: SIM115 - lives as long as vng
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
                env=vng_environment(cmd[0]),
            )
            sink.close()
            self._group = child_group(proc)
            self._group.__enter__()  # type: ignore[attr-defined]
            self._proc = proc
            self.boots += 1
            (self.root / "vng.pid").write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + self.boot_timeout_s
        while not (self.root / "ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = _tail(self.root / "vng.out")
                self._reap()
                raise EnvironmentProblem(
                    f"the warm sandbox guest did not come up (boot {self.boots}); vng said:\n{tail}",
                    "check that the kernel boots with virtme-ng (scripts/setup.sh --kit KIT)",
                )
            time.sleep(0.1)

    def _reap(self) -> None:
        if self._proc is not None:
            kill_group(self._proc.pid)
            self._proc.wait()
            if self._group is not None:
                self._group.__exit__(None, None, None)  # type: ignore[attr-defined]
        self._proc, self._group = None, None

    def _keep(self) -> None:
        """Boots the guest again when it died, was killed by a client (a job past its deadline)
        or was left dirty, until close()."""
        while not self._closing.wait(0.2):
            proc = self._proc
            if proc is None or proc.poll() is None:
                continue
            if self._closing.is_set():
                break
            try:
                self._boot()
            except EnvironmentProblem as exc:
                self.say(f"the warm sandbox could not be booted again: {exc}")
                self._closing.wait(5)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        """Shuts the guest down (the agent powers off; killed if it does not) and removes the
        root. Clients see no guest afterwards."""
        self._closing.set()
        _unpublish(self.root)
        (self.root / "stop").touch()
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._reap()
        if self._watch is not None:
            self._watch.join(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> WarmGuest:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()


# -- clients -----------------------------------------------------------------------------------


def _publish(root: Path) -> None:
    roots = [r for r in os.environ.get(ENV, "").split(os.pathsep) if r]
    os.environ[ENV] = os.pathsep.join([*roots, str(root)])


def _unpublish(root: Path) -> None:
    roots = [r for r in os.environ.get(ENV, "").split(os.pathsep) if r and r != str(root)]
    if roots:
        os.environ[ENV] = os.pathsep.join(roots)
    else:
        os.environ.pop(ENV, None)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not yet reaped by its owner, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


class Client:
    """Runs jobs on a warm guest that another object (maybe another process) owns."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _pid(self) -> int | None:
        try:
            return int((self.root / "vng.pid").read_text())
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        pid = self._pid()
        return pid is not None and _alive(pid) and (self.root / "ready").exists()

    def new_outdir(self, prefix: str) -> Path:
        """A job's folder, which the guest shares."""
        jobs = self.root / "jobs"
        jobs.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=jobs))

    def owns(self, outdir: Path) -> bool:
        return Path(os.path.abspath(outdir)).parent == Path(os.path.abspath(self.root / "jobs"))

    def run(
        self,
        outdir: Path,
        script: Path,
        timeout_s: float,
        progress: Callable[[str], None],
        names: Sequence[str] = (),
    ) -> int | None:
        """Runs `script` (a file in `outdir`, from new_outdir) in the guest, as a fresh boot
        would: 0 when it finished, None when it did not (past `timeout_s`, or the guest died;
        the guest is then replaced)."""
        from schedc.verifier.sandbox import announce  # noqa: PLC0415

        with open(self.root / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._run(outdir, script, timeout_s, progress, list(names), announce)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _run(
        self,
        outdir: Path,
        script: Path,
        timeout_s: float,
        say: Callable[[str], None],
        names: list[str],
        announce: Callable[[Path, list[str], int, Callable[[str], None]], int],
    ) -> int | None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():  # being booted again after the last job
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
        pid = self._pid()
        assert pid is not None
        count = (
            int((self.root / "jobs.count").read_text())
            if (self.root / "jobs.count").exists()
            else 0
        )
        (self.root / "jobs.count").write_text(f"{count + 1}\n")
        say("running in the warm sandbox guest")
        queued = self.root / "queue" / f"{time.monotonic_ns()}"
        tmp = queued.with_name(queued.name + ".tmp")
        tmp.write_text(str(os.path.abspath(script)))
        os.replace(tmp, queued)
        status_file, shown = outdir / STATUS, 0
        while not status_file.exists():
            shown = announce(outdir, names, shown, say)
            if not _alive(pid) or self._pid() != pid:
                say("the warm sandbox guest died during the job; it is booted again")
                return None
            if time.monotonic() > deadline:
                say("the job did not finish in time; the warm sandbox guest is booted again")
                self._replace(pid)
                return None
            time.sleep(0.05)
        announce(outdir, names, shown, say)
        status = status_file.read_text().strip()
        if status != "clean" or count + 1 >= MAX_JOBS:
            if status != "clean":
                say(f"the warm sandbox guest is booted again: {status.removeprefix('dirty: ')}")
            (self.root / "jobs.count").write_text("0\n")
            self._replace(pid)
        return 0

    def _replace(self, pid: int) -> None:
        """Kills the guest; its owner boots a new one. `ready` goes first, so that no job is
        queued for the guest that is going away."""
        (self.root / "ready").unlink(missing_ok=True)
        kill_group(pid)


def client_for(settings: Settings) -> Client | None:
    """The warm guest that runs `settings`' kernel, if this process or its parent keeps one."""
    want = _identity(settings)
    for root in os.environ.get(ENV, "").split(os.pathsep):
        if not root:
            continue
        try:
            have = (Path(root) / "kernel").read_text().strip()
        except OSError:
            continue
        if have == want:
            return Client(Path(root))
    return None
