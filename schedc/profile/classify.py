"""Labels for a task group (batch, interactive, latency-critical, io-bound), each with the
evidence a person can check against the group's figures. A group may earn several labels or
none; a group with fewer than MIN_SAMPLES samples earns none (too little seen to say).

The thresholds and why they are what they are: docs/profile.md, "Classification". Every
figure used is in the TaskGroup itself (CPU per thread is parallelism / threads), so each
evidence line can be checked against the profile.
"""

from __future__ import annotations

from schedc.profile.model import Classification, TaskGroup

MIN_SAMPLES = 3

# batch: it keeps a CPU busy, runs long when it gets one, and rarely waits for anything
BATCH_MIN_CPU_PER_THREAD = 0.25  # of one CPU
BATCH_MIN_RUN_US = 1000.0  # runtime per run, p50 ...
BATCH_MAX_VOLUNTARY_SHARE = 0.2  # ... or it nearly always runs until it is preempted
BATCH_MAX_WAKEUPS_PER_S = 50.0  # per thread
# ... or, on a crowded machine where it gets far less CPU than it would use: preempted at
# least this often, and more often than it sleeps (always runnable, waiting for nothing)
BATCH_MIN_PREEMPTIONS_PER_S = 10.0

# interactive: wakes often, does a little and sleeps again, uses little CPU
INTERACTIVE_MIN_WAKEUPS_PER_S = 10.0
INTERACTIVE_MAX_RUN_US = 2000.0
INTERACTIVE_MAX_CPU_PER_THREAD = 0.25
INTERACTIVE_MIN_VOLUNTARY_SHARE = 0.5  # it sleeps more often than it is preempted

# latency-critical: wakes very often for very short runs, and either asks for priority (nice
# below 0, a real-time policy) or loses much more time waiting for a CPU than it runs
LATENCY_MIN_WAKEUPS_PER_S = 50.0
LATENCY_MAX_RUN_US = 500.0
LATENCY_MIN_DELAY_P99_US = 1000.0
LATENCY_DELAY_TO_RUN = 5.0  # run delay p99 / runtime per run p50
REALTIME = frozenset({"SCHED_FIFO", "SCHED_RR", "SCHED_DEADLINE"})

# io-bound: mostly asleep, gives the CPU up itself (it is seldom preempted), little CPU
IO_MAX_CPU_PER_THREAD = 0.10
IO_MIN_WAKEUPS_PER_S = 1.0
IO_MIN_VOLUNTARY_SHARE = 0.8  # voluntary / all switches


def ms(us: float) -> str:
    """Microseconds as a readable "0.21 ms" / "12.5 ms"."""
    value = us / 1000.0
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def _ms_threshold(us: float) -> str:
    return f"{us / 1000:g} ms"


def cpu_per_thread(group: TaskGroup) -> float:
    return group.parallelism / group.threads


def voluntary_share(group: TaskGroup) -> float | None:
    total = group.wakeups_per_s + group.involuntary_per_s
    return group.wakeups_per_s / total if total > 0 else None


def classify(group: TaskGroup) -> list[Classification]:
    """The labels `group` earns, in LABELS order, each with its evidence."""
    if group.runtime_per_run_us.samples < MIN_SAMPLES:
        return []
    cpu = cpu_per_thread(group)
    run = group.runtime_per_run_us.p50
    wakes = group.wakeups_per_s
    delay99 = group.run_delay_us.p99
    cpu_text = f"uses {cpu:.2f} of a CPU per thread"
    run_text = f"runs {ms(run)} per run (p50)"
    wake_text = f"wakes {wakes:.1f}/s per thread"
    out: list[Classification] = []

    preempted = group.involuntary_per_s > wakes
    if cpu >= BATCH_MIN_CPU_PER_THREAD:
        busy = f"{cpu_text} (batch: >= {BATCH_MIN_CPU_PER_THREAD:g})"
    elif preempted and group.involuntary_per_s >= BATCH_MIN_PREEMPTIONS_PER_S:
        busy = (
            f"{cpu_text}, but is preempted {group.involuntary_per_s:.1f}/s, more often than "
            f"it sleeps (batch: >= {BATCH_MIN_CPU_PER_THREAD:g}, or preempted >= "
            f"{BATCH_MIN_PREEMPTIONS_PER_S:g}/s and more often than it sleeps)"
        )
    else:
        busy = ""
    share = voluntary_share(group)
    share_text = f"{share:.0%} of its switches are voluntary" if share is not None else ""
    if run >= BATCH_MIN_RUN_US:
        long_runs = f"{run_text} (batch: >= {_ms_threshold(BATCH_MIN_RUN_US)})"
    elif share is not None and share <= BATCH_MAX_VOLUNTARY_SHARE:
        long_runs = (
            f"{run_text}, but only {share:.0%} of its switches are voluntary: it runs until "
            f"preempted (batch: >= {_ms_threshold(BATCH_MIN_RUN_US)}, or <= "
            f"{BATCH_MAX_VOLUNTARY_SHARE:.0%} voluntary)"
        )
    else:
        long_runs = ""
    if busy and long_runs and wakes <= BATCH_MAX_WAKEUPS_PER_S:
        out.append(
            Classification(
                label="batch",
                evidence=[
                    busy,
                    long_runs,
                    f"{wake_text} (batch: <= {BATCH_MAX_WAKEUPS_PER_S:g}/s)",
                ],
            )
        )

    if (
        wakes >= INTERACTIVE_MIN_WAKEUPS_PER_S
        and run < INTERACTIVE_MAX_RUN_US
        and cpu < INTERACTIVE_MAX_CPU_PER_THREAD
        and share is not None
        and share >= INTERACTIVE_MIN_VOLUNTARY_SHARE
    ):
        out.append(
            Classification(
                label="interactive",
                evidence=[
                    f"{wake_text} (interactive: >= {INTERACTIVE_MIN_WAKEUPS_PER_S:g}/s)",
                    f"{run_text} (interactive: < {_ms_threshold(INTERACTIVE_MAX_RUN_US)})",
                    f"{cpu_text} (interactive: < {INTERACTIVE_MAX_CPU_PER_THREAD:g})",
                    f"{share_text} (interactive: >= {INTERACTIVE_MIN_VOLUNTARY_SHARE:.0%})",
                ],
            )
        )

    if wakes >= LATENCY_MIN_WAKEUPS_PER_S and run <= LATENCY_MAX_RUN_US:
        reasons: list[str] = []
        negative = [n for n in group.nice if n < 0]
        if negative:
            reasons.append(f"asks for priority: nice {min(negative)}")
        realtime = sorted(REALTIME.intersection(group.policy))
        if realtime:
            reasons.append(f"asks for priority: {', '.join(realtime)}")
        if delay99 >= LATENCY_MIN_DELAY_P99_US and delay99 >= LATENCY_DELAY_TO_RUN * run:
            reasons.append(
                f"waits {ms(delay99)} for a CPU (run delay p99), {delay99 / max(run, 1e-9):.0f}x "
                f"its run (latency-critical: >= {_ms_threshold(LATENCY_MIN_DELAY_P99_US)} and "
                f">= {LATENCY_DELAY_TO_RUN:g}x)"
            )
        if reasons:
            out.append(
                Classification(
                    label="latency-critical",
                    evidence=[
                        f"{wake_text} (latency-critical: >= {LATENCY_MIN_WAKEUPS_PER_S:g}/s)",
                        f"{run_text} (latency-critical: <= "
                        f"{_ms_threshold(LATENCY_MAX_RUN_US)})",
                        *reasons,
                    ],
                )
            )

    if (
        cpu < IO_MAX_CPU_PER_THREAD
        and wakes >= IO_MIN_WAKEUPS_PER_S
        and share is not None
        and share >= IO_MIN_VOLUNTARY_SHARE
    ):
        out.append(
            Classification(
                label="io-bound",
                evidence=[
                    f"{cpu_text} (io-bound: < {IO_MAX_CPU_PER_THREAD:g})",
                    f"{wake_text} (io-bound: >= {IO_MIN_WAKEUPS_PER_S:g}/s)",
                    f"{share_text}: it sleeps rather than being preempted "
                    f"(io-bound: >= {IO_MIN_VOLUNTARY_SHARE:.0%})",
                ],
            )
        )
    return out
