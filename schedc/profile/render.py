"""The human view of a profile: the machine, what was profiled, a table of task groups and the
classification evidence under each group."""

from __future__ import annotations

import shlex

from schedc.profile.model import Distribution, Profile, TaskGroup

NAME_WIDTH = 32
MAX_IDLE_NAMES = 8


def _ms(value_us: float) -> str:
    value = value_us / 1000.0
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _pair(d: Distribution, high: str) -> str:
    return f"{_ms(d.p50)}/{_ms(getattr(d, high))} ms"


def _target(profile: Profile) -> str:
    t = profile.target
    if t.mode == "command":
        return f"command `{shlex.join(t.command)}` and its children"
    if t.mode == "pids":
        return f"pid {', '.join(str(p) for p in t.pids)} and descendants"
    if t.mode == "cgroup":
        return f"cgroup {t.cgroup}"
    return "every task"


def _row(g: TaskGroup) -> list[str]:
    name = g.name if len(g.name) <= NAME_WIDTH else g.name[: NAME_WIDTH - 1] + "~"
    nice = ",".join(str(n) for n in g.nice)
    labels = ",".join(c.label for c in g.classification) or "-"
    return [
        name,
        str(g.threads),
        f"{g.cpu_share:.1%}",
        _pair(g.runtime_per_run_us, "p90"),
        f"{g.wakeups_per_s:.1f}",
        _pair(g.run_delay_us, "p99"),
        nice,
        labels,
    ]


def render_human(profile: Profile) -> str:
    m = profile.machine
    top = m.topology
    lines = [
        f"machine: {m.cpus} CPUs ({m.online}), {top.sockets} socket(s), {top.cores} cores, "
        f"{top.threads_per_core} thread(s)/core, {top.llcs} LLC(s); Linux {m.kernel}; "
        f"scheduler {m.scheduler}",
        f"profiled: {_target(profile)} for {profile.seconds:.1f} s, every "
        f"{profile.interval_ms} ms ({profile.samples} rounds); the profiler used "
        f"{profile.overhead.fraction_of_one_cpu:.1%} of a CPU",
        "",
    ]
    active = [g for g in profile.groups if g.runtime_per_run_us.samples > 0]
    idle = [g for g in profile.groups if g.runtime_per_run_us.samples == 0]
    header = ["GROUP", "THREADS", "CPU", "RUN p50/p90", "WAKE/s", "DELAY p50/p99", "NICE"]
    header.append("LABELS")
    rows = [header, *(_row(g) for g in active)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            continue
        group = active[index - 1]
        if group.cgroup != "/":
            lines.append(f"    cgroup {group.cgroup}")
        if group.affinity:
            lines.append(f"    CPUs {group.affinity}")
        for c in group.classification:
            lines.append(f"    {c.label}: {'; '.join(c.evidence)}")
    if not active:
        lines.append("(no thread ran in the window)")
    if idle:
        names = ", ".join(g.name for g in idle[:MAX_IDLE_NAMES])
        more = f" and {len(idle) - MAX_IDLE_NAMES} more" if len(idle) > MAX_IDLE_NAMES else ""
        lines.append(f"{len(idle)} group(s) did not run in the window: {names}{more}")
    return "\n".join(lines) + "\n"
