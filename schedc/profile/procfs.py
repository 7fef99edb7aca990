"""What /proc says about one thread, parsed (stat, status, schedstat, cgroup, CPU lists), and
the tracks a sampling window keeps per thread and process: the data schedc.profile.sample
collects and schedc.profile.analyse turns into task groups."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/…/stat that the profiler uses."""

    comm: str
    state: str
    ppid: int
    nice: int
    policy: int
    starttime: int


def parse_stat(data: bytes) -> Stat | None:
    """/proc/PID/stat: the comm is everything between the first "(" and the *last* ")" (a comm
    may hold spaces and parentheses: "a) b (c"); the fields after it are space-separated."""
    start = data.find(b"(")
    end = data.rfind(b")")
    if start < 0 or end < start:
        return None
    comm = data[start + 1 : end].decode("utf-8", "replace")
    rest = data[end + 1 :].split()
    # rest[0] is field 3 (state): field N is rest[N - 3]
    try:
        return Stat(
            comm=comm,
            state=rest[0].decode(),
            ppid=int(rest[1]),
            nice=int(rest[16]),
            policy=int(rest[38]) if len(rest) > 38 else 0,
            starttime=int(rest[19]),
        )
    except (IndexError, ValueError):
        return None


def parse_schedstat(data: bytes) -> tuple[int, int, int] | None:
    """/proc/…/schedstat: (ns on a CPU, ns waiting on a run queue, timeslices)."""
    parts = data.split()
    if len(parts) < 3:
        return None
    try:
        return int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        return None


@dataclass(frozen=True)
class Status:
    voluntary: int
    involuntary: int
    cpus_allowed: str


def parse_status(data: bytes) -> Status | None:
    """The switch counts and Cpus_allowed_list of /proc/…/status (found by their line keys;
    the Name line, where a comm could hold anything, is escaped by the kernel)."""

    def field(key: bytes) -> bytes | None:
        at = data.find(b"\n" + key)
        if at < 0:
            return None
        start = at + len(key) + 1
        end = data.find(b"\n", start)
        return data[start : end if end >= 0 else len(data)].strip()

    voluntary = field(b"voluntary_ctxt_switches:")
    involuntary = field(b"nonvoluntary_ctxt_switches:")
    cpus = field(b"Cpus_allowed_list:")
    try:
        if voluntary is None or involuntary is None:
            return None
        return Status(int(voluntary), int(involuntary), cpus.decode() if cpus else "")
    except ValueError:
        return None


def parse_cgroup(data: bytes) -> str:
    """The cgroup v2 path ("0::/PATH" line) of /proc/…/cgroup; "/" when there is none."""
    for line in data.split(b"\n"):
        if line.startswith(b"0::"):
            return line[3:].decode("utf-8", "replace").strip() or "/"
    return "/"


def parse_cpu_list(text: str) -> set[int]:
    """ "0-3,8,10-11" as a set of CPU numbers (empty text: the empty set)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.update(range(int(low), int(high) + 1))
        else:
            cpus.add(int(part))
    return cpus


# -- what is kept per thread ---------------------------------------------------------------------
@dataclass
class ThreadTrack:
    """One thread over the window: its first and last readings and its per-run samples."""

    pid: int
    tid: int
    comm: str
    nice: int
    policy: int
    starttime: int = 0  # clock ticks after boot (a reused tid has another)
    cgroup: str = "/"
    cpus_allowed: str = ""
    first_seen: float = 0.0
    last_seen: float = 0.0
    run0: int = 0  # schedstat at first sight
    delay0: int = 0
    slices0: int = 0
    run: int = 0  # schedstat at the last reading
    delay: int = 0
    slices: int = 0
    voluntary0: int | None = None  # status at first sight
    involuntary0: int = 0
    voluntary: int = 0
    involuntary: int = 0
    status_t0: float = 0.0  # when voluntary0 was read
    status_t: float = 0.0  # until when voluntary is known to hold
    status_current: bool = False  # no run since status was read
    detail_read: float = 0.0  # when stat, status and cgroup were last read
    fd: int = -1  # the open schedstat file, or -1
    # [ns run, ns waited, timeslices] per sample: an interval in which the thread started at
    # least one timeslice; run time in later intervals without a new slice (a run that goes on)
    # is added to the last sample.
    samples: list[list[int]] = field(default_factory=list)

    @property
    def cpu_ns(self) -> int:
        return self.run - self.run0

    @property
    def span_s(self) -> float:
        return self.last_seen - self.first_seen

    @property
    def status_span_s(self) -> float:
        """The time over which voluntary_delta and involuntary_delta were counted."""
        return self.status_t - self.status_t0

    @property
    def voluntary_delta(self) -> int:
        return 0 if self.voluntary0 is None else self.voluntary - self.voluntary0

    @property
    def involuntary_delta(self) -> int:
        return 0 if self.voluntary0 is None else self.involuntary - self.involuntary0


@dataclass
class ProcessTrack:
    pid: int
    comm: str
    starttime: int
    tids: list[int] = field(default_factory=list)
    listed: float = 0.0  # when its threads were listed
    ran: bool = False  # a thread ran since then: list them again (after DISCOVER_S)


@dataclass
class Window:
    """What sampling produced, before grouping: every thread seen, by (pid, tid)."""

    threads: list[ThreadTrack]
    leaders: dict[int, str]  # pid -> the process leader's comm
    started: float
    ended: float
    rounds: int
    cpu_seconds: float  # the profiler's own CPU time over the window

    @property
    def wall_s(self) -> float:
        return max(self.ended - self.started, 1e-6)


# -- finding the target's tasks -------------------------------------------------------------------
