"""A sandbox scenario (docs/behaviour.md) of the same shape as a profiled workload.

`scenario_from_profile` turns each task group of a `Profile` into a scenario `[[group]]`: its
thread count scaled to the guest's CPUs, a run/sleep cycle with the group's runtime per run and
CPU share per thread (or `spin = {}` for threads that never sleep), its comm, cgroup and nice.
Default expectations follow from the groups' labels: the latency-critical (else interactive)
groups wait no longer than under the kernel's default scheduler and less than the batch work,
and no group starves. The text starts with comments that say where every figure came from, so
a person can edit it; `parse_scenario` accepts every output (the function checks that itself).

Every string taken from a profile is treated as hostile: comms are reduced to characters the
runner, the trace parser and TOML handle plainly, cgroup paths to components the scenario
accepts (no `.` or `..`, so a path cannot leave the guest's cgroup root), comments to one
printable line each.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from schedc.behaviour.scenario import (
    MAX_CPUS,
    MAX_TASKS,
    TASK_COMM_LEN,
    ScenarioError,
    parse_cpus,
    parse_duration,
    parse_scenario,
)
from schedc.profile.model import Profile, TaskGroup

DEFAULT_GUEST_CPUS = 4  # the examples' scenarios use 4 vCPUs: one boot serves them all
MAX_GROUPS = 8  # groups past this are merged into one "others" group
MAX_TOTAL_TASKS = MAX_TASKS  # tasks of all groups together (the guest is emulated)
MIN_US = 100  # shortest run or sleep written (TCG cannot time finer)
MAX_RUN_US = 1_000_000
MAX_SLEEP_US = 10_000_000
SPIN_SHARE = 0.95  # a thread busy this much of the time spins
STARVATION_MAX_WAIT_S = 1.0  # a coarse bound: absolute times under TCG (docs/behaviour.md)
COMM_BYTES = TASK_COMM_LEN - 1
MAX_CGROUP_DEPTH = 8
MAX_CGROUP_PART = 63

_COMM_OK = re.compile(r"[A-Za-z0-9 _.:/+@,#%-]")
_CGROUP_PART_BAD = re.compile(r"[^A-Za-z0-9_.-]")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


class ProfileScenarioError(ValueError):
    """A profile (or an option) from which no scenario can be written; the message says why and
    what to do."""


# --- hostile strings ------------------------------------------------------------------------


def sanitize_comm(comm: str, fallback: str = "task") -> str:
    """A comm the runner sets as it is: printable ASCII without quotes, backslashes, `=` or
    brackets (each other character becomes `_`), stripped, at most 15 bytes."""
    out = "".join(ch if _COMM_OK.fullmatch(ch) else "_" for ch in comm).strip()
    out = out[:COMM_BYTES].strip()
    if not out or not out.strip("_"):
        out = sanitize_comm(fallback, "task") if fallback != comm else "task"
    return out


def sanitize_cgroup(path: str) -> str | None:
    """A cgroup path the scenario accepts, below the guest's cgroup root: every component
    reduced to `[A-Za-z0-9_.-]` without a leading dot (so `.` and `..` vanish), empty ones
    dropped, at most 8 components of 63 bytes. None for the root (`/`) or nothing left."""
    parts = []
    for raw in path.split("/"):
        part = _CGROUP_PART_BAD.sub("_", raw).lstrip(".")[:MAX_CGROUP_PART]
        if part and part.strip("_"):
            parts.append(part)
    if not parts:
        return None
    return "/" + "/".join(parts[:MAX_CGROUP_DEPTH])


def comment_text(text: str) -> str:
    """One printable line for a `#` comment (TOML forbids control characters there, and a line
    break would end the comment): anything else is written as `\\xNN` / `\\uNNNN`."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code & 0xFF:02x}")  # a byte a decoder kept as a lone surrogate
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def toml_string(text: str) -> str:
    """A TOML basic string of ASCII only: quotes, backslashes and every character outside
    printable ASCII escaped (a line separator would move the scanner's line numbers)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\uFFFD")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04X}")
        else:
            out.append(f"\\U{code:08X}")
    out.append('"')
    return "".join(out)


def duration_text(us: float) -> str:
    """A duration the scenario parser reads: whole microseconds, as `us` or `ms`."""
    whole = max(1, int(math.floor(us + 0.5)))
    if whole < 1000:
        return f"{whole}us"
    if whole % 1_000_000 == 0:
        return f"{whole // 1_000_000}s"
    if whole % 1000 == 0:
        return f"{whole // 1000}ms"
    return f"{whole / 1000:.3f}".rstrip("0").rstrip(".") + "ms"


def _group_name(name: str, taken: set[str]) -> str:
    base = _NAME_BAD.sub("_", name.encode("ascii", "replace").decode()).strip("_-")[:32]
    if not base or not (base[0].isalpha() or base[0] == "_"):
        base = f"g_{base}" if base else "group"
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}_{n}"
        n += 1
    taken.add(candidate)
    return candidate


# --- the shape of a group -------------------------------------------------------------------


@dataclass
class _Shape:
    """What the scenario needs of a group (a profile group, or several merged)."""

    name: str
    comm: str
    cgroup: str
    threads: int
    parallelism: float
    runtime_p50_us: float
    wakeups_per_s: float
    involuntary_per_s: float
    nice: int
    affinity: str | None
    labels: list[str]
    sources: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, g: TaskGroup) -> _Shape:
        nice = g.nice[len(g.nice) // 2] if g.nice else 0
        return cls(
            name=g.name,
            comm=g.comm or g.leader_comm,
            cgroup=g.cgroup,
            threads=g.threads,
            parallelism=g.parallelism,
            runtime_p50_us=g.runtime_per_run_us.p50,
            wakeups_per_s=g.wakeups_per_s,
            involuntary_per_s=g.involuntary_per_s,
            nice=max(-20, min(19, nice)),
            affinity=g.affinity,
            labels=[c.label for c in g.classification],
            sources=[g.name],
        )

    @classmethod
    def merged(cls, groups: list[TaskGroup]) -> _Shape:
        threads = sum(g.threads for g in groups)
        par = sum(g.parallelism for g in groups)

        def mean(values: list[float], weights: list[float]) -> float:
            total = sum(weights)
            return sum(v * w for v, w in zip(values, weights, strict=True)) / total if total else 0

        tw = [float(g.threads) for g in groups]
        pw = [g.parallelism for g in groups] if par > 0 else tw
        return cls(
            name="others",
            comm="others",
            cgroup="/",
            threads=threads,
            parallelism=par,
            runtime_p50_us=mean([g.runtime_per_run_us.p50 for g in groups], pw),
            wakeups_per_s=mean([g.wakeups_per_s for g in groups], tw),
            involuntary_per_s=mean([g.involuntary_per_s for g in groups], tw),
            nice=0,
            affinity=None,
            labels=[],
            sources=[g.name for g in groups],
        )

    @property
    def share_per_thread(self) -> float:
        """The fraction of one CPU each thread used (the group's parallelism per thread)."""
        return min(1.0, self.parallelism / self.threads) if self.threads else 0.0

    @property
    def idle(self) -> bool:
        return self.parallelism <= 0 and self.wakeups_per_s <= 0


@dataclass(frozen=True)
class Cycle:
    """A run/sleep cycle in whole microseconds and the rule that gave its run."""

    run_us: int
    sleep_us: int
    rule: str


def cycle_of(shape: _Shape, window_s: float) -> Cycle | None:
    """The group's cycle, or None when it spins (never sleeps, or is busy >= 95 % of the time).

    run: the runtime per run (p50); but when most runs ended by preemption (involuntary
    switches outnumber voluntary ones) the runs were cut short, so run is the CPU time between
    sleeps, share / wake-ups. sleep: run * (1 - share) / share, so a thread that gets the CPU
    at once uses the share it used on the host (a group that used no CPU: 1 / wake-ups - run).
    Both are clamped to 100us..1s (run) and 100us..10s (sleep)."""
    u = shape.share_per_thread
    w = shape.wakeups_per_s
    if w * window_s < 1 or u >= SPIN_SHARE:
        return None
    rule = "runtime per run p50"
    run = shape.runtime_p50_us
    if shape.involuntary_per_s > w and u > 0:
        run = u * 1e6 / w
        rule = "CPU time between sleeps (most runs ended by preemption)"
    run = min(max(run, MIN_US), MAX_RUN_US)
    run_us = int(math.floor(run + 0.5))
    sleep = run_us * (1 - u) / u if u > 0 else 1e6 / w - run_us
    sleep_us = int(math.floor(min(max(sleep, MIN_US), MAX_SLEEP_US) + 0.5))
    return Cycle(run_us, sleep_us, rule)


def scaled_count(threads: int, factor: float) -> int:
    """Threads scaled by guest / host CPUs, rounded half up, at least 1, at most 64."""
    return max(1, min(MAX_TASKS, int(math.floor(threads * factor + 0.5))))


def guest_cpus(profile: Profile, cpus: int | None) -> int:
    if cpus is None:
        return max(1, min(profile.machine.cpus, DEFAULT_GUEST_CPUS, MAX_CPUS))
    if isinstance(cpus, bool) or not isinstance(cpus, int) or not 1 <= cpus <= MAX_CPUS:
        raise ProfileScenarioError(
            f"cpus: {cpus!r} is not a guest CPU count; the sandbox guest has 1-{MAX_CPUS} CPUs"
        )
    return cpus


# --- the text -------------------------------------------------------------------------------


def _describe_target(profile: Profile) -> str:
    t = profile.target
    if t.mode == "command":
        return "command " + " ".join(t.command)
    if t.mode == "pids":
        return "pids " + " ".join(str(p) for p in t.pids)
    if t.mode == "cgroup":
        return f"cgroup {t.cgroup or '/'}"
    return "every task on the machine"


def _scaled_affinity(affinity: str | None, host: int, guest: int) -> tuple[str | None, str]:
    """The host CPU list mapped proportionally onto the guest's CPUs (host CPU c to guest CPU
    c * guest // host); None when that is every guest CPU or the list cannot be read."""
    if not affinity:
        return None, ""
    try:
        cpus = parse_cpus(affinity)
    except ValueError:
        return None, f"affinity {affinity!r} unreadable, left out"
    mapped = sorted({min(guest - 1, c * guest // host) for c in cpus})
    if len(mapped) == guest:
        return None, f"affinity {affinity} covers every guest CPU once scaled, left out"
    text = ",".join(str(c) for c in mapped)
    return text, f"affinity {affinity} of {host} CPUs -> {text} of {guest}"


def scenario_from_profile(
    profile: Profile, *, cpus: int | None = None, duration: str = "3s"
) -> str:
    """The text of a sandbox scenario TOML reproducing the profile's groups (module doc).

    Raises ProfileScenarioError for an option out of range or a profile with no group that used
    CPU or woke up (there is nothing to reproduce)."""
    guest = guest_cpus(profile, cpus)
    try:
        if not isinstance(duration, str):
            raise ValueError("give it as a string such as '3s'")
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise ProfileScenarioError(f"duration: {exc}") from None
    if not 0 < seconds <= 60:
        raise ProfileScenarioError(
            f"duration: {duration!r} is not a scenario duration; give 0-60 s as e.g. '3s'"
        )
    host = profile.machine.cpus
    factor = guest / host

    active = [g for g in sorted(profile.groups, key=lambda g: -g.cpu_share)]
    idle = [g for g in active if _Shape.of(g).idle]
    active = [g for g in active if not _Shape.of(g).idle]
    if not active:
        raise ProfileScenarioError(
            "the profile has no task group that used CPU or woke up, so there is no shape to "
            "reproduce; profile the workload while it runs (a longer --seconds, or the right "
            "--pid/--cgroup)"
        )
    notes: list[str] = []
    if len(active) > MAX_GROUPS:
        keep, rest = active[: MAX_GROUPS - 1], active[MAX_GROUPS - 1 :]
        shapes = [_Shape.of(g) for g in keep] + [_Shape.merged(rest)]
        names = ", ".join(comment_text(g.name) for g in rest[:10])
        more = f" and {len(rest) - 10} more" if len(rest) > 10 else ""
        notes.append(
            f"{len(active)} groups is more than {MAX_GROUPS}: the {len(rest)} smallest by CPU "
            f"share merged into 'others' ({names}{more})"
        )
    else:
        shapes = [_Shape.of(g) for g in active]
    if idle:
        notes.append(
            f"left out {len(idle)} group(s) that used no CPU and never woke: "
            + ", ".join(comment_text(g.name) for g in idle[:10])
            + (f" and {len(idle) - 10} more" if len(idle) > 10 else "")
        )

    counts = [scaled_count(s.threads, factor) for s in shapes]
    if sum(counts) > MAX_TOTAL_TASKS:
        before = sum(counts)
        counts = [max(1, int(c * MAX_TOTAL_TASKS / before)) for c in counts]
        notes.append(
            f"{before} tasks is more than {MAX_TOTAL_TASKS} in all: every count scaled by "
            f"{MAX_TOTAL_TASKS}/{before} (at least 1), so the guest carries less load"
        )

    taken: set[str] = set()
    lines: list[str] = []
    head = [
        "Scenario generated by `schedc profile --scenario` from a workload profile: it",
        "reproduces the profiled groups' shapes in the sandbox guest. Edit freely.",
        f"Profile: created {profile.created.isoformat()}, target: {_describe_target(profile)},",
        f"  window {profile.seconds:g} s sampled every {profile.interval_ms} ms "
        f"({profile.samples} rounds).",
        f"Machine: {host} CPUs (online {profile.machine.online}), kernel "
        f"{profile.machine.kernel}, scheduler {profile.machine.scheduler}.",
        f"Guest: {guest} CPUs. Thread counts scaled by guest/host CPUs = {guest}/{host}, rounded, "
        "at least 1 per group.",
        "Each group: comm, cgroup and nice as profiled (cleaned to what the runner accepts); the",
        "  cycle runs the runtime per run (p50) and sleeps so that each task uses the CPU share",
        "  per thread it used on the host (parallelism / threads); a group that never slept",
        "  spins. Tasks are processes: a thread's process name is not reproduced.",
    ]
    head += notes
    lines += ["# " + comment_text(h) for h in head]
    description = f"shape of the workload profiled {profile.created.date().isoformat()}"
    lines += [
        "",
        f"description = {toml_string(description)}",
        f"cpus = {guest}",
        f"duration = {toml_string(duration.strip())}",
    ]

    written: list[tuple[_Shape, str, Cycle | None]] = []
    for shape, count in zip(shapes, counts, strict=True):
        name = _group_name(shape.name, taken)
        comm = sanitize_comm(shape.comm, fallback=name)
        cgroup = sanitize_cgroup(shape.cgroup)
        cycle = cycle_of(shape, profile.seconds)
        affinity, affinity_note = _scaled_affinity(shape.affinity, host, guest)
        u = shape.share_per_thread
        why = [
            f"group {shape.name!r}"
            + (f" ({len(shape.sources)} profile groups)" if len(shape.sources) > 1 else "")
            + (f", labels: {', '.join(shape.labels)}" if shape.labels else ", no label"),
            f"{shape.threads} threads -> {count} tasks; CPU share per thread {u:.3f}, "
            f"runtime per run p50 {shape.runtime_p50_us:.0f}us, wakes {shape.wakeups_per_s:.1f}/s, "
            f"preempted {shape.involuntary_per_s:.1f}/s",
        ]
        if cycle is None:
            why.append(
                "never slept in the window: spins"
                if shape.wakeups_per_s * profile.seconds < 1
                else f"busy {u:.0%} of the time: spins"
            )
        else:
            share = cycle.run_us / (cycle.run_us + cycle.sleep_us)
            why.append(f"cycle: run from the {cycle.rule}; sleep for a CPU share of {share:.3f}")
        if comm != shape.comm:
            why.append(f"comm {shape.comm!r} cleaned to {comm!r}")
        if (cgroup or "/") != shape.cgroup:
            why.append(f"cgroup {shape.cgroup!r} cleaned to {cgroup or '(none)'!r}")
        if affinity_note:
            why.append(affinity_note)
        lines.append("")
        lines += ["# " + comment_text(w) for w in why]
        lines.append("[[group]]")
        lines.append(f"name = {toml_string(name)}")
        lines.append(f"comm = {toml_string(comm)}")
        lines.append(f"count = {count}")
        if cgroup:
            lines.append(f"cgroup = {toml_string(cgroup)}")
        if shape.nice:
            lines.append(f"nice = {shape.nice}")
        if affinity:
            lines.append(f"affinity = {toml_string(affinity)}")
        if cycle is None:
            lines.append("spin = {}")
        else:
            lines.append(
                f"cycle = {{ run = {toml_string(duration_text(cycle.run_us))}, "
                f"sleep = {toml_string(duration_text(cycle.sleep_us))} }}"
            )
        written.append((shape, name, cycle))

    lines += _expectations(written, seconds)
    text = "\n".join(lines) + "\n"
    try:
        parse_scenario(text, "<scenario from profile>")
    except ScenarioError as exc:  # a bug here, not in the profile: say what was written
        raise AssertionError(f"scenario_from_profile wrote an invalid scenario: {exc}") from exc
    return text


def _expectations(written: list[tuple[_Shape, str, Cycle | None]], seconds: float) -> list[str]:
    """Latency-critical groups (else interactive ones) that wake: p99 wake-to-run at most the
    baseline's, p50 below the largest batch group that wakes; every group: no starvation."""
    out: list[str] = []
    critical = [(s, n) for s, n, c in written if c is not None and "latency-critical" in s.labels]
    if not critical:
        critical = [(s, n) for s, n, c in written if c is not None and "interactive" in s.labels]
    batch = next((n for s, n, c in written if c is not None and "batch" in s.labels), None)
    for shape, name in critical:
        label = "latency-critical" if "latency-critical" in shape.labels else "interactive"
        out += [
            "",
            f"# {label}: its p99 wake-to-run delay no worse than under the default scheduler",
            "[[expect]]",
            'kind = "wait"',
            f"group = {toml_string(name)}",
            "percentile = 99",
            "vs_baseline = 1.0",
        ]
        if batch is not None and batch != name:
            out += [
                "",
                f"# {label}: waits less than the batch work (p50, the same run)",
                "[[expect]]",
                'kind = "wait"',
                f"group = {toml_string(name)}",
                "percentile = 50",
                f"below = {toml_string(batch)}",
            ]
    bound = min(STARVATION_MAX_WAIT_S, seconds / 2)
    for _shape, name, _cycle in written:
        out += [
            "",
            "# nobody starves (a coarse bound: absolute times under TCG)",
            "[[expect]]",
            'kind = "starvation"',
            f"group = {toml_string(name)}",
            f"max_wait = {toml_string(duration_text(bound * 1e6))}",
        ]
    return out
