"""A warm sandbox: long-lived guests that run the jobs a fresh boot would, kept by one
process (`schedc mcp`) for itself and the processes it starts.

A boot under TCG costs about 14 s, more than most jobs (a verify of a draft, a short run). A
`WarmPool` names a pool folder (schedc.verifier.warm_client describes it) and boots a
`WarmGuest` for a kernel of its matrix the first time a job asks for one. The guest runs
`agent_script`, then the agent (warm_agent.py): a loop that takes jobs, runs each in a session
of its own and puts the guest back into a clean state. A job is exactly what a fresh boot
would run (the script `load_in_sandbox`, the behaviour tests and bench write), in a folder the
guest shares, so its results are read the same way.

Between jobs the agent kills every process the job left (everything not running before the
first job), removes the pins under /sys/fs/bpf, waits for sched_ext to read `disabled`, stops
tracing, and removes the cgroups and /tmp entries the job made. A job that leaves a scheduler
attached, a cgroup it cannot remove or a kernel oops makes the guest dirty; a dirty guest, one
whose job ran past its deadline, one that died and one that ran warm_client.MAX_JOBS jobs is killed by the
job's client and booted again here.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from schedc.lifecycle import child_group, kill_group
from schedc.settings import (
    EnvironmentProblem,
    Settings,
    cache_root,
    set_warm_pool_dir,
    warm_pool_dir,
)
from schedc.verifier import warm_agent, warm_client

STATUS = warm_agent.STATUS
BOOT_TIMEOUT_S = 240.0


def agent_script(root: Path) -> str:
    """The guest's side: mount what jobs use, then the agent (warm_agent.py) until `stop`."""
    r = shlex.quote(str(root))
    agent = shlex.quote(str(Path(__file__).with_name("warm_agent.py")))
    package = shlex.quote(str(Path(__file__).resolve().parent.parent.parent))
    return f"""#!/bin/sh
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
grep -q ' /sys/kernel/tracing ' /proc/mounts || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
{shlex.quote(sys.executable)} -I -S {agent} {r} {package} > {r}/agent.log 2>&1
poweroff -f
"""


class WarmGuest:
    """The owner of one warm guest: boots it, keeps it booted (a dead or dirty guest is booted
    again), and shuts it down. Jobs go through `Client`."""

    def __init__(
        self,
        settings: Settings,
        root: Path,
        progress: Callable[[str], None] | None = None,
        boot_timeout_s: float = BOOT_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.say = progress or (lambda _m: None)
        self.boot_timeout_s = boot_timeout_s
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "lock").touch()
        self.boots = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._group: object | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None
        # Last: from here on, jobs for this kernel wait for this guest.
        (self.root / "kernel").write_text(warm_client.identity(settings) + "\n")

    # -- life --------------------------------------------------------------------------------

    def start(self) -> WarmGuest:
        """Boots the guest and waits until its agent takes jobs; then keeps it so, in a thread.
        Raises EnvironmentProblem when it does not come up."""
        self._boot()
        self._watch = threading.Thread(target=self._keep, name="schedc-warm", daemon=True)
        self._watch.start()
        return self

    def start_quietly(self) -> None:
        """start(), for a background thread: a guest that does not come up is reported and
        left out (jobs then boot their own)."""
        try:
            self.start()
        except EnvironmentProblem as exc:
            self.say(f"no warm sandbox for {self.settings.kernel}: {exc}")
            (self.root / "failed").write_text(f"{exc}\n")  # jobs waiting for it stop waiting
            (self.root / "kernel").unlink(missing_ok=True)

    def _boot(self) -> None:
        from schedc.verifier.sandbox import output_tail, start_vng, vng_command  # noqa: PLC0415

        with self._lock:
            self._reap()
            for name in ("ready", "stop", "vng.pid"):
                (self.root / name).unlink(missing_ok=True)
            shutil.rmtree(self.root / "queue", ignore_errors=True)
            (self.root / "queue").mkdir()
            (self.root / "jobs").mkdir(exist_ok=True)
            script = self.root / "agent.sh"
            script.write_text(agent_script(self.root))
            cmd = vng_command(self.settings, self.root, script)
            self.say(f"booting the warm sandbox ({Path(str(self.settings.kernel)).parent.name})")
            proc = start_vng(cmd, self.root)
            self._group = child_group(proc)
            self._group.__enter__()  # type: ignore[attr-defined]
            self._proc = proc
            self.boots += 1
            (self.root / "vng.pid").write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + self.boot_timeout_s
        while not (self.root / "ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = output_tail(self.root / "vng.out", 15)
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
                (self.root / "failed").write_text(f"{exc}\n")  # waiting jobs stop waiting
                (self.root / "kernel").unlink(missing_ok=True)  # later jobs boot their own
                break

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        """Shuts the guest down (the agent powers off; killed if it does not) and removes the
        root. Clients see no guest afterwards."""
        self._closing.set()
        (self.root / "kernel").unlink(missing_ok=True)  # no job waits for it any more
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


class WarmPool:
    """The warm guests of a long-lived process: a pool folder, named for this process and its
    children (settings.set_warm_pool_dir), and one guest per sandbox kernel of the matrix,
    booted in the background when a job first asks for it, kept until `close`."""

    def __init__(self, settings: Settings, progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.say = progress or (lambda _m: None)
        self.guests: dict[str, WarmGuest] = {}
        self.pool: Path | None = None
        self._kernels: dict[str, Settings] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WarmPool:
        from schedc.settings import kernel_matrix  # noqa: PLC0415

        try:
            kernels = kernel_matrix(self.settings, attach=True)
        except EnvironmentProblem:
            kernels = []  # a broken matrix: each call says what is wrong, as without a pool
        for kernel in kernels:
            if not kernel.on_host and kernel.kernel:
                self._kernels[warm_client.key(warm_client.identity(kernel))] = kernel
        base = cache_root(self.settings) / "warm"
        base.mkdir(parents=True, exist_ok=True)
        self.pool = Path(tempfile.mkdtemp(prefix="pool-", dir=base))
        set_warm_pool_dir(self.pool)
        self._thread = threading.Thread(target=self._answer, name="schedc-warm-pool", daemon=True)
        self._thread.start()
        return self

    def _answer(self) -> None:
        """Boots a guest for each kernel a job asks for (pool/KEY.want) that the matrix has."""
        assert self.pool is not None
        while not self._stop.wait(0.05):
            for want in self.pool.glob("*.want"):
                name = want.name.removesuffix(".want")
                want.unlink(missing_ok=True)
                kernel = self._kernels.get(name)
                if kernel is None or name in self.guests:
                    continue
                guest = WarmGuest(kernel, self.pool / name, self.say)
                self.guests[name] = guest
                threading.Thread(target=guest.start_quietly, daemon=True).start()

    @property
    def kernels(self) -> list[str]:
        """The kernels this pool keeps guests of, by their bzImage's folder (a kit's name)."""
        return [Path(str(k.kernel)).parent.name for k in self._kernels.values()]

    def guest_for(self, settings: Settings) -> WarmGuest | None:
        return self.guests.get(warm_client.key(warm_client.identity(settings)))

    def close(self) -> None:
        """Shuts every guest down and removes the pool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.pool is not None and warm_pool_dir() == self.pool:
            set_warm_pool_dir(None)
        for guest in list(self.guests.values()):
            guest.close()
        self.guests = {}
        if self.pool is not None:
            shutil.rmtree(self.pool, ignore_errors=True)

    def __enter__(self) -> WarmPool:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()
