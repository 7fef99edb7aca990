"""The warm sandbox, as the code that runs guest jobs sees it (schedc.verifier.warm keeps the
guests; this module finds one and gives it a job).

A process that keeps warm guests (`schedc mcp`) names a *pool* folder in SCHEDC_WARM_SANDBOX
(settings.warm_pool_dir) for itself and the processes it starts. In the pool, each kernel
(its bzImage, CPUs and memory) has a guest folder named by a hash of that identity:

    pool/KEY.want       a job asks for a guest of this kernel (the identity inside); the owner
                        boots one if the kernel is one of its matrix
    pool/KEY/kernel     the guest's identity: from here on, jobs for the kernel wait for it
    pool/KEY/vng.pid    the process group of vng and its QEMU
    pool/KEY/ready      written by the guest's agent when it waits for jobs
    pool/KEY/queue/N    a job: the path of its script (renamed into place whole)
    pool/KEY/jobs/X/    a job's folder, shared with the guest; `.job-status` in it is the
                        agent's last word: "clean", or "dirty: WHY" (the guest is replaced)
    pool/KEY/lock       one job at a time per guest, across processes (flock)

Without a pool, or for a kernel the owner does not keep, `client_for` is None and callers boot
a guest of their own, as before.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from schedc.lifecycle import kill_group
from schedc.settings import Settings, warm_pool_dir
from schedc.verifier.warm_agent import STATUS

# How long a job waits for the owner to take up its request for a guest of its kernel.
ANSWER_S = 3.0
# A guest is replaced after this many jobs: whatever a job leaves that cleaning misses (memory,
# kernel state) does not pile up without end.
MAX_JOBS = 40

Announce = Callable[[Path, list[str], int, Callable[[str], None]], int]


def identity(settings: Settings) -> str:
    kernel = os.path.abspath(str(settings.kernel))
    return f"{kernel} cpus={settings.vm_cpus} memory={settings.vm_memory}"


def key(identity_text: str) -> str:
    return hashlib.sha256(identity_text.encode()).hexdigest()[:12]


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not yet reaped by its owner, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


class Client:
    """Gives jobs to the warm guest in `root`, which another object (maybe in another
    process) keeps."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _pid(self) -> int | None:
        try:
            return int((self.root / "vng.pid").read_text())
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        pid = self._pid()
        return pid is not None and alive(pid) and (self.root / "ready").exists()

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
        say: Callable[[str], None],
        names: Sequence[str],
        announce: Announce,
    ) -> int | None:
        """Runs `script` (a file in `outdir`, from new_outdir) in the guest, as a fresh boot
        would: 0 when it finished, None when it did not (past `timeout_s`, or the guest died;
        the guest is then replaced). `announce` reports the objects done so far."""
        with open(self.root / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._run(outdir, script, timeout_s, say, list(names), announce)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _run(
        self,
        outdir: Path,
        script: Path,
        timeout_s: float,
        say: Callable[[str], None],
        names: list[str],
        announce: Announce,
    ) -> int | None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():  # being booted (again)
            if time.monotonic() > deadline or (self.root / "failed").exists():
                return None
            time.sleep(0.1)
        pid = self._pid()
        assert pid is not None
        counter = self.root / "jobs.count"
        count = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(f"{count + 1}\n")
        queued = self.root / "queue" / f"{time.time_ns()}"
        tmp = queued.with_name(queued.name + ".tmp")
        tmp.write_text(str(os.path.abspath(script)))
        os.replace(tmp, queued)
        status_file, shown = outdir / STATUS, 0
        while not status_file.exists():
            shown = announce(outdir, names, shown, say)
            if not alive(pid) or self._pid() != pid:
                say("the warm sandbox guest died during the job; it is booted again")
                return None
            if time.monotonic() > deadline:
                say("the job did not finish in time; the warm sandbox guest is booted again")
                self.replace(pid)
                return None
            time.sleep(0.05)
        announce(outdir, names, shown, say)
        status = status_file.read_text().strip()
        if status != "clean":
            say(f"the warm sandbox guest is booted again: {status.removeprefix('dirty: ')}")
        if status != "clean" or count + 1 >= MAX_JOBS:
            counter.write_text("0\n")
            self.replace(pid)
        return 0

    def replace(self, pid: int) -> None:
        """Kills the guest; its owner boots a new one. `ready` goes first, so that no job is
        queued for the guest that is going away."""
        (self.root / "ready").unlink(missing_ok=True)
        kill_group(pid)


_answers: dict[tuple[str, str], Path | None] = {}


def client_for(settings: Settings) -> Client | None:
    """The warm guest for `settings`' kernel, when this process or its parent keeps a pool
    (asked for on first use: the owner boots it in the background); None otherwise."""
    pool = warm_pool_dir()
    if pool is None or not settings.kernel or settings.on_host:
        return None
    who = identity(settings)
    cached = (str(pool), who)
    if cached in _answers:
        root = _answers[cached]
        return Client(root) if root is not None and (root / "kernel").exists() else None
    root = pool / key(who)
    if not (root / "kernel").exists():
        want = pool / f"{key(who)}.want"
        try:
            tmp = want.with_name(want.name + ".tmp")
            tmp.write_text(who + "\n")
            os.replace(tmp, want)
        except OSError:
            _answers[cached] = None
            return None
        deadline = time.monotonic() + ANSWER_S
        while not (root / "kernel").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    found = root if (root / "kernel").exists() else None
    _answers[cached] = found
    return Client(found) if found is not None else None
