"""From a sampled window to task groups: threads grouped by (leader comm, thread comm, cgroup),
each group's figures as schedc.profile.model.TaskGroup defines them, then classified.

- cpu_share: the group's CPU time / (window × online CPUs); parallelism: CPU time / window.
- runtime_per_run_us, run_delay_us: over the group's samples (one thread over one interval in
  which it started at least one timeslice): run time / timeslices, run-queue wait / timeslices.
- wakeups_per_s, involuntary_per_s: voluntary and involuntary switches per second of each
  thread's observed life, the mean over the group (total switches / total thread-seconds).
"""

from __future__ import annotations

from collections import defaultdict

from schedc.dsl.language import format_cpu_list
from schedc.profile.classify import classify
from schedc.profile.model import Distribution, Machine, TaskGroup
from schedc.profile.procfs import ThreadTrack, Window, parse_cpu_list

POLICIES = {
    0: "SCHED_OTHER",
    1: "SCHED_FIFO",
    2: "SCHED_RR",
    3: "SCHED_BATCH",
    5: "SCHED_IDLE",
    6: "SCHED_DEADLINE",
    7: "SCHED_EXT",
}


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, linearly interpolated."""
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def distribution(values: list[float]) -> Distribution:
    ordered = sorted(max(v, 0.0) for v in values)
    if not ordered:
        return Distribution(samples=0, mean=0.0, p50=0.0, p90=0.0, p99=0.0)
    return Distribution(
        samples=len(ordered),
        mean=sum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
    )


def group_key(thread: ThreadTrack, leaders: dict[int, str]) -> tuple[str, str, str]:
    return (leaders.get(thread.pid, thread.comm), thread.comm, thread.cgroup)


def group_name(leader_comm: str, comm: str) -> str:
    """ "firefox" for the process's own threads, "firefox/Renderer" for threads named apart."""
    return leader_comm if comm == leader_comm else f"{leader_comm}/{comm}"


def _affinity(threads: list[ThreadTrack], online: set[int]) -> str | None:
    allowed: set[int] = set()
    for t in threads:
        if not t.cpus_allowed:
            return None
        try:
            allowed |= parse_cpu_list(t.cpus_allowed)
        except ValueError:
            return None
    allowed &= online
    return format_cpu_list(allowed) if allowed and allowed != online else None


def build_groups(window: Window, machine: Machine) -> list[TaskGroup]:
    """The window's threads as task groups, largest CPU share first (ties by name)."""
    by_key: dict[tuple[str, str, str], list[ThreadTrack]] = defaultdict(list)
    for thread in window.threads:
        by_key[group_key(thread, window.leaders)].append(thread)
    online = parse_cpu_list(machine.online)
    wall = window.wall_s
    groups: list[TaskGroup] = []
    for (leader_comm, comm, cgroup), threads in by_key.items():
        cpu_s = sum(t.cpu_ns for t in threads) / 1e9
        thread_s = sum(t.status_span_s for t in threads)
        runs: list[float] = []
        delays: list[float] = []
        for t in threads:
            for run_ns, delay_ns, slices in t.samples:
                runs.append(run_ns / slices / 1000.0)
                delays.append(delay_ns / slices / 1000.0)
        group = TaskGroup(
            name=group_name(leader_comm, comm),
            leader_comm=leader_comm,
            comm=comm,
            cgroup=cgroup,
            threads=len(threads),
            processes=len({(t.pid) for t in threads}),
            cpu_share=cpu_s / (wall * machine.cpus),
            parallelism=cpu_s / wall,
            runtime_per_run_us=distribution(runs),
            run_delay_us=distribution(delays),
            wakeups_per_s=sum(t.voluntary_delta for t in threads) / thread_s if thread_s else 0.0,
            involuntary_per_s=(
                sum(t.involuntary_delta for t in threads) / thread_s if thread_s else 0.0
            ),
            nice=sorted({t.nice for t in threads}),
            policy=sorted({POLICIES.get(t.policy, f"policy {t.policy}") for t in threads}),
            affinity=_affinity(threads, online),
        )
        groups.append(group.model_copy(update={"classification": classify(group)}))
    _unique_names(groups)
    groups.sort(key=lambda g: (-g.cpu_share, g.name))
    return groups


def _unique_names(groups: list[TaskGroup]) -> None:
    """Groups of one name in several cgroups get the cgroup after "@" ("postgres@/db")."""
    count: dict[str, int] = defaultdict(int)
    for g in groups:
        count[g.name] += 1
    for i, g in enumerate(groups):
        if count[g.name] > 1:
            groups[i] = g.model_copy(update={"name": f"{g.name}@{g.cgroup}"})
