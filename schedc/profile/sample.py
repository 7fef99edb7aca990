"""Sampling a workload from /proc: per thread, at a fixed interval, into a `Profile`.

Each round reads, for every thread of the target:

- `/proc/PID/task/TID/schedstat` (always; kept open and re-read with pread, which costs a
  fifth of an open-read-close): time on a CPU, time waiting on a run queue (run delay) and
  the number of timeslices (arrivals on a CPU);
- `stat`, `status` and `cgroup` on first sight, then about once a second (DETAIL_REFRESH_S)
  and at the end of the window, only for threads whose schedstat changed since they were last
  read (a thread that did not run cannot have renamed itself or switched): comm, nice,
  policy, voluntary and involuntary switches, the allowed CPUs, the cgroup;
- the thread list `/proc/PID/task` only for processes that are new or ran since it was last
  listed (a process that did not run cannot have started a thread), and the process list
  (`/proc`, or the cgroup's files) at most every DISCOVER_S (0.1 s): directory listings are
  the dearest reads, and at a 10 ms interval listing every round would cost most of the time.

Target modes: `command` and `pids` follow the given processes and every descendant (new
processes are found each round by their parent pid in `/proc/PID/stat`); `cgroup` takes the
threads listed in `cgroup.threads` of a cgroup v2 folder and its descendants; `all` takes every
task. A thread or process that vanishes between (or during) reads is simply no longer sampled.

`collect()` samples and builds the Profile (schedc.profile.analyse groups and measures,
schedc.profile.classify labels); `profile_command()` starts a command, profiles it until it
exits or the window ends, then stops and reaps it. docs/profile.md has the details.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from schedc.lifecycle import Stopped, child_group
from schedc.profile.model import Overhead, Profile, Target
from schedc.profile.procfs import (
    ProcessTrack,
    Stat,
    ThreadTrack,
    Window,
    parse_cgroup,
    parse_schedstat,
    parse_stat,
    parse_status,
)

PROC = "/proc"
DETAIL_REFRESH_S = 1.0  # how often stat, status and cgroup of a thread that runs are re-read
DISCOVER_S = 0.1  # new processes and threads are looked for this often at most
MAX_OPEN = 1024  # schedstat files kept open at most (more threads: opened at each read)
PROGRESS_EVERY_S = 1.0
TERM_GRACE_S = 2.0  # SIGTERM, then this long, then SIGKILL
MIN_INTERVAL_MS = 1
MAX_INTERVAL_MS = 10_000


class ProfileError(Exception):
    """A target that cannot be profiled (unknown pid, no such cgroup, no schedstat)."""


class SamplingInterrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt
    """Sampling stopped by Ctrl-C or SIGTERM: carries the profile of the window so far and
    what stopped it (`cause`, a KeyboardInterrupt or schedc.lifecycle.Stopped)."""

    def __init__(self, profile: Profile, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.profile = profile
        self.cause = cause

    @property
    def exit_status(self) -> int:
        return self.cause.exit_status if isinstance(self.cause, Stopped) else 130


# -- reading /proc ------------------------------------------------------------------------------
def pread_bytes(fd: int) -> bytes | None:
    """An open /proc file's bytes from the start, or None when its task is gone."""
    try:
        return os.pread(fd, 4096, 0)
    except OSError:
        return None


def read_bytes(path: str) -> bytes | None:
    """A small /proc file's bytes, or None when it (or its task) is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 65536)
    except OSError:  # ESRCH: the task exited between open and read
        return None
    finally:
        os.close(fd)


def cgroup_mount(proc: str = PROC) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (from /proc/self/mountinfo)."""
    data = read_bytes(f"{proc}/self/mountinfo") or b""
    for line in data.decode("utf-8", "replace").splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split()[4])
    return None


def resolve_cgroup(path: str) -> tuple[Path, str]:
    """A --cgroup argument, as a folder of the v2 hierarchy ("/sys/fs/cgroup/app") or a cgroup
    path ("/app", as /proc/PID/cgroup shows it): (its folder, its cgroup path)."""
    mount = cgroup_mount()
    candidate = Path(path)
    if (candidate / "cgroup.procs").is_file():
        folder = candidate.resolve()
    elif mount is not None and (mount / path.lstrip("/") / "cgroup.procs").is_file():
        folder = (mount / path.lstrip("/")).resolve()
    else:
        where = f" (the cgroup v2 hierarchy is mounted at {mount})" if mount else ""
        raise ProfileError(
            f"--cgroup {path}: no such cgroup v2 folder{where}; give a folder that holds "
            "cgroup.procs, or a path as /proc/PID/cgroup shows it"
        )
    if mount is not None and folder.is_relative_to(mount.resolve()):
        relative = "/" + str(folder.relative_to(mount.resolve())).strip(".")
        return folder, relative.rstrip("/") or "/"
    return folder, str(folder)


def _cgroup_tasks(folder: Path) -> tuple[set[int], set[int]]:
    """(PIDs, TIDs) of a cgroup folder and its descendants; folders that vanish are skipped."""
    pids: set[int] = set()
    tids: set[int] = set()
    for dirpath, _dirs, _files in os.walk(folder):
        for name, into in (("cgroup.procs", pids), ("cgroup.threads", tids)):
            data = read_bytes(os.path.join(dirpath, name))
            if data:
                into.update(int(x) for x in data.split())
    return pids, tids


def _tgid(pid: int, proc: str = PROC) -> int:
    """The process (thread group) of a pid or thread id; the id itself when unreadable."""
    data = read_bytes(f"{proc}/{pid}/status") or b""
    at = data.find(b"\nTgid:")
    if at < 0:
        return pid
    try:
        return int(data[at + 6 : data.find(b"\n", at + 1)])
    except ValueError:
        return pid


def _list_pids(proc: str) -> list[int]:
    return [int(name) for name in os.listdir(proc) if name.isdigit()]


class _Sampler:
    def __init__(self, target: Target, interval_s: float, proc: str) -> None:
        self.target = target
        self.interval_s = interval_s
        self.proc = proc
        self.own_pid = os.getpid()
        self.threads: dict[tuple[int, int], ThreadTrack] = {}
        self.retired: list[ThreadTrack] = []  # threads whose pid or tid was reused
        self.live: set[tuple[int, int]] = set()
        self.processes: dict[int, ProcessTrack] = {}
        self.leaders: dict[int, str] = {}
        self.parent: dict[int, int] = {}  # pid -> ppid of every process seen (command, pids)
        # the target's processes (command, pids); a thread id given stands for its process
        self.tracked: set[int] = {_tgid(pid, proc) for pid in target.pids}
        self.cgroup_folder: Path | None = None
        if target.mode == "cgroup":
            self.cgroup_folder, _ = resolve_cgroup(target.cgroup or "/")
        self.rounds = 0
        self.open_fds = 0
        self.pids: set[int] = set()
        self.only_tids: set[int] | None = None
        self.discovered = 0.0

    # which processes (and, for a cgroup, which threads) belong to the target now
    def _discover(self) -> tuple[set[int], set[int] | None]:
        mode = self.target.mode
        if mode == "cgroup":
            assert self.cgroup_folder is not None
            pids, tids = _cgroup_tasks(self.cgroup_folder)
            return pids, tids
        listed = _list_pids(self.proc)
        if mode == "all":
            return set(listed), None
        present = set(listed)
        new = [pid for pid in listed if pid not in self.parent]
        for pid in new:
            data = read_bytes(f"{self.proc}/{pid}/stat")
            st = parse_stat(data) if data else None
            self.parent[pid] = st.ppid if st else 0
        for pid in [pid for pid in self.parent if pid not in present]:
            del self.parent[pid]
        # a new process is a descendant when its chain of parents reaches a tracked one (a
        # process seen before and not tracked then cannot become a descendant later)
        for pid in new:
            chain: list[int] = []
            at = pid
            while at in self.parent and at not in self.tracked and at not in chain:
                chain.append(at)
                at = self.parent[at]
            if at in self.tracked:
                self.tracked.update(chain)
        self.tracked &= present
        return self.tracked & present, None

    def round(self, now: float, full: bool = False) -> None:
        """One sampling round at time `now`; `full` re-reads every detail of threads that ran
        since they were last read (the window's last round)."""
        if full or self.rounds == 0 or now - self.discovered >= 0.9 * DISCOVER_S:
            self.pids, self.only_tids = self._discover()
            self.pids.discard(self.own_pid)
            self.discovered = now
        pids, only_tids = self.pids, self.only_tids
        for pid in list(self.processes):
            if pid not in pids:
                self._process_gone(pid)
        live: set[tuple[int, int]] = set()
        for pid in pids:
            proc = self.processes.get(pid)
            if proc is not None and proc.ran and (
                full or now - proc.listed >= 0.9 * DISCOVER_S
            ):
                tids = self._list_tids(pid)
                if tids is None:
                    self._process_gone(pid)
                    continue
                proc.tids = tids
                proc.listed = now
                proc.ran = False
            elif proc is None:
                leader = read_bytes(f"{self.proc}/{pid}/stat")
                st = parse_stat(leader) if leader else None
                tids = self._list_tids(pid) if st else None
                if st is None or tids is None:
                    continue
                proc = ProcessTrack(pid, st.comm, st.starttime, tids, listed=now, ran=False)
                self.processes[pid] = proc
                self.leaders[pid] = st.comm
            for tid in proc.tids:
                if only_tids is not None and tid not in only_tids:
                    continue
                if self._sample_thread(pid, tid, now, proc, full):
                    live.add((pid, tid))
        for key in self.live - live:  # gone between rounds, or left the cgroup
            track = self.threads.get(key)
            if track is not None:
                self._close(track)
        self.live = live
        self.rounds += 1

    def _list_tids(self, pid: int) -> list[int] | None:
        try:
            return [int(t) for t in os.listdir(f"{self.proc}/{pid}/task")]
        except OSError:
            return None

    def _process_gone(self, pid: int) -> None:
        self.processes.pop(pid, None)

    def _close(self, track: ThreadTrack) -> None:
        if track.fd >= 0:
            os.close(track.fd)
            track.fd = -1
            self.open_fds -= 1

    def close(self) -> None:
        for track in self.threads.values():
            self._close(track)

    def _retire(self, track: ThreadTrack) -> None:
        self._close(track)
        self.retired.append(track)
        del self.threads[(track.pid, track.tid)]

    def _sample_thread(
        self, pid: int, tid: int, now: float, proc: ProcessTrack, full: bool
    ) -> bool:
        base = f"{self.proc}/{pid}/task/{tid}/"
        key = (pid, tid)
        track = self.threads.get(key)
        if track is None:
            return self._first_sight(pid, tid, now, proc, base)
        data = pread_bytes(track.fd) if track.fd >= 0 else read_bytes(base + "schedstat")
        ss = parse_schedstat(data) if data else None
        if ss is None:  # gone; a thread of the same tid later is another thread
            self._retire(track)
            return False
        run, delay, slices = ss
        if (run, delay, slices) == (track.run, track.delay, track.slices):
            track.last_seen = now
            if track.status_current:
                track.status_t = now
            if not track.status_current and (
                full or now - track.detail_read >= DETAIL_REFRESH_S
            ):  # it ran, then stopped: its switches since the last reading
                self._details(track, base, now)
            return True
        d_run, d_delay, d_slices = run - track.run, delay - track.delay, slices - track.slices
        if d_slices > 0:
            track.samples.append([d_run, d_delay, d_slices])
        elif track.samples:  # a run that goes on: it belongs to the last slice started
            track.samples[-1][0] += d_run
            track.samples[-1][1] += d_delay
        elif d_run > 0:  # running when first seen and since
            track.samples.append([d_run, d_delay, 1])
        track.run, track.delay, track.slices = run, delay, slices
        track.last_seen = now
        track.status_current = False
        proc.ran = True
        if full or now - track.detail_read >= DETAIL_REFRESH_S:
            self._details(track, base, now)  # False: exited just now; its readings stand
        return True

    def _first_sight(
        self, pid: int, tid: int, now: float, proc: ProcessTrack, base: str
    ) -> bool:
        fd = -1
        if self.open_fds < MAX_OPEN:
            try:
                fd = os.open(base + "schedstat", os.O_RDONLY)
            except OSError:
                return False
            self.open_fds += 1
        data = pread_bytes(fd) if fd >= 0 else read_bytes(base + "schedstat")
        ss = parse_schedstat(data) if data else None
        st_data = read_bytes(base + "stat")
        st = parse_stat(st_data) if st_data else None
        if ss is None or st is None:
            if fd >= 0:
                os.close(fd)
                self.open_fds -= 1
            return False
        track = ThreadTrack(pid, tid, st.comm, st.nice, st.policy, st.starttime, fd=fd)
        track.first_seen = track.last_seen = now
        track.run0, track.delay0, track.slices0 = ss
        track.run, track.delay, track.slices = ss
        self.threads[(pid, tid)] = track
        self._details(track, base, now, st)
        proc.ran = True
        return True

    def _details(self, track: ThreadTrack, base: str, now: float, st: Stat | None = None) -> bool:
        """Re-read stat, status and cgroup; False when the thread has gone."""
        if st is None:
            data = read_bytes(base + "stat")
            st = parse_stat(data) if data else None
            if st is None:
                return False
            if st.starttime != track.starttime:  # the tid was reused (no open fd to tell)
                self._retire(track)
                return False
            track.comm, track.nice, track.policy = st.comm, st.nice, st.policy
        data = read_bytes(base + "status")
        status = parse_status(data) if data else None
        if status is not None:
            if track.voluntary0 is None:
                track.voluntary0, track.involuntary0 = status.voluntary, status.involuntary
                track.status_t0 = now
            track.voluntary, track.involuntary = status.voluntary, status.involuntary
            track.cpus_allowed = status.cpus_allowed
            track.status_t = now
            track.status_current = True
        data = read_bytes(base + "cgroup")
        if data is not None:
            track.cgroup = parse_cgroup(data)
        track.detail_read = now
        if track.tid == track.pid:  # the leader: its comm is the process's
            self.leaders[track.pid] = track.comm
            if (proc := self.processes.get(track.pid)) is not None:
                proc.comm = track.comm
        return True

    def summary(self) -> tuple[int, int]:
        """(live threads, groups they make) for the progress line."""
        keys = {
            (self.leaders.get(t.pid, t.comm), t.comm, t.cgroup)
            for k, t in self.threads.items()
            if k in self.live
        }
        return len(self.live), len(keys)


def check_target(target: Target, proc: str = PROC) -> None:
    """A clear ProfileError for a target that cannot be profiled, before sampling starts."""
    if read_bytes(f"{proc}/self/schedstat") is None:
        raise ProfileError(
            f"{proc}/self/schedstat is missing: this kernel was built without "
            "CONFIG_SCHED_INFO (or schedstats), which the profiler reads"
        )
    if target.mode in ("pids", "command"):
        if not target.pids:
            raise ProfileError("no process to profile")
        missing = [pid for pid in target.pids if not os.path.isdir(f"{proc}/{pid}/task")]
        if missing:
            raise ProfileError(
                f"--pid {', '.join(str(p) for p in missing)}: no such process "
                "(check the number with `ps -p PID`)"
            )
    elif target.mode == "cgroup":
        resolve_cgroup(target.cgroup or "/")


def check_window(seconds: float, interval_ms: int) -> None:
    if not seconds > 0:
        raise ProfileError(f"seconds must be positive, got {seconds}")
    if not MIN_INTERVAL_MS <= interval_ms <= MAX_INTERVAL_MS:
        raise ProfileError(
            f"interval must be {MIN_INTERVAL_MS}..{MAX_INTERVAL_MS} ms, got {interval_ms}"
        )


def sample(
    target: Target,
    *,
    seconds: float,
    interval_ms: int,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    until: Callable[[], bool] | None = None,
    proc: str = PROC,
) -> Window:
    """Sample `target` for `seconds` (or until `stop` is set or `until()` is true) every
    `interval_ms`; the raw per-thread window. On Ctrl-C or SIGTERM, raises
    SamplingInterrupted's cause wrapped with the window so far (see collect)."""
    check_window(seconds, interval_ms)
    check_target(target, proc)
    interval_s = interval_ms / 1000.0
    sampler = _Sampler(target, interval_s, proc)
    cpu0 = time.process_time()
    started = ended = time.monotonic()
    next_progress = started + PROGRESS_EVERY_S
    tick = 1
    try:
        sampler.round(started)
        while True:
            now = time.monotonic()
            if now - started >= seconds or (stop is not None and stop.is_set()):
                break
            deadline = min(started + tick * interval_s, started + seconds)
            delay = deadline - now
            if delay > 0:
                if stop is not None:
                    if stop.wait(delay):
                        break
                else:
                    time.sleep(delay)
            now = time.monotonic()
            if now - started >= seconds or (until is not None and until()):
                break  # the last, full round follows
            # a round that overran skips the ticks it missed
            tick = max(tick + 1, int((now - started) / interval_s) + 1)
            sampler.round(now)
            ended = now
            if progress is not None and now >= next_progress:
                threads, groups = sampler.summary()
                progress(
                    f"profiling {now - started:.1f}/{seconds:g} s, "
                    f"{threads} threads in {groups} groups"
                )
                next_progress = max(next_progress + PROGRESS_EVERY_S, now)
        ended = time.monotonic()
        sampler.round(ended, full=True)  # every thread's last figures, read afresh
    except (KeyboardInterrupt, Stopped) as exc:
        window = _window(sampler, started, ended, cpu0)
        raise _Interrupted(window, exc) from exc
    finally:
        sampler.close()
    return _window(sampler, started, ended, cpu0)


class _Interrupted(BaseException):  # noqa: N818
    def __init__(self, window: Window, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.window = window
        self.cause = cause


def _window(sampler: _Sampler, started: float, ended: float, cpu0: float) -> Window:
    return Window(
        threads=[*sampler.retired, *sampler.threads.values()],
        leaders=sampler.leaders,
        started=started,
        ended=ended,
        rounds=sampler.rounds,
        cpu_seconds=time.process_time() - cpu0,
    )


def build_profile(target: Target, window: Window, interval_ms: int, created: datetime) -> Profile:
    """The Profile of a sampled window: groups measured and classified, machine facts."""
    from schedc.profile.analyse import build_groups
    from schedc.profile.machine import machine_facts

    machine = machine_facts()
    groups = build_groups(window, machine)
    return Profile(
        created=created,
        target=target,
        seconds=window.wall_s,
        interval_ms=interval_ms,
        samples=window.rounds,
        machine=machine,
        groups=groups,
        overhead=Overhead(
            cpu_seconds=max(window.cpu_seconds, 0.0),
            fraction_of_one_cpu=max(window.cpu_seconds, 0.0) / window.wall_s,
        ),
    )


def collect(
    target: Target,
    *,
    seconds: float,
    interval_ms: int,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    until: Callable[[], bool] | None = None,
) -> Profile:
    """Profile `target` for `seconds`, a round every `interval_ms`, reporting progress about
    once a second; `stop` (set from another thread) or `until()` becoming true ends the window
    early. Raises ProfileError for a target that cannot be profiled (unknown pid, no such
    cgroup), and SamplingInterrupted (with the profile so far) on Ctrl-C or SIGTERM."""
    created = datetime.now(UTC)
    try:
        window = sample(
            target,
            seconds=seconds,
            interval_ms=interval_ms,
            progress=progress,
            stop=stop,
            until=until,
        )
    except _Interrupted as stopped:
        profile = build_profile(target, stopped.window, interval_ms, created)
        raise SamplingInterrupted(profile, stopped.cause) from stopped.cause
    return build_profile(target, window, interval_ms, created)


# -- profiling a command ---------------------------------------------------------------------------
def _exited(pid: int) -> bool:
    """Whether child `pid` has ended, without reaping it (its /proc entry stays readable)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def stop_process(proc: subprocess.Popen[bytes], grace: float = TERM_GRACE_S) -> int:
    """SIGTERM to the command's process group, SIGKILL after `grace` seconds; reaped. Its
    exit status (negative: the signal that ended it)."""
    deadline = time.monotonic() + grace
    _signal_group(proc.pid, signal.SIGTERM)  # what it started too, even when it has exited
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    while time.monotonic() < deadline and _signal_group(proc.pid, 0):
        time.sleep(0.02)  # the rest of its group, ending on SIGTERM
    _signal_group(proc.pid, signal.SIGKILL)
    return proc.wait()


def _signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def profile_command(
    argv: Sequence[str],
    *,
    seconds: float,
    interval_ms: int,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    grace: float = TERM_GRACE_S,
) -> tuple[Profile, int]:
    """Start `argv` (in a process group of its own) and profile it and its descendants until it
    exits or `seconds` pass; then stop it (SIGTERM to its group, SIGKILL after `grace`) and
    reap it. (profile, its exit status: negative N when signal N ended it). The command never
    outlives this call: on Ctrl-C or SIGTERM it is killed and SamplingInterrupted carries the
    profile so far. Raises ProfileError (before starting anything) when argv is empty and
    FileNotFoundError / PermissionError when it cannot be started."""
    if not argv:
        raise ProfileError("no command to profile: give it after --")
    check_window(seconds, interval_ms)
    proc = subprocess.Popen(list(argv), start_new_session=True)
    with child_group(proc):
        try:
            target = Target(mode="command", command=list(argv), pids=[proc.pid])
            profile = collect(
                target,
                seconds=seconds,
                interval_ms=interval_ms,
                progress=progress,
                stop=stop,
                until=lambda: _exited(proc.pid),
            )
        finally:
            status = stop_process(proc, grace)
    return profile, status
