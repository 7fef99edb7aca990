"""The expectation kinds, computed on the timelines of one scenario's runs.

Each kind is a metric of one run (a fraction, a ratio, a rank, a time) and a test of that
metric. With several runs the metric's median counts. The baseline (the same scenario under
the kernel's default scheduler, in the same boot) is measured the same way and shown beside
the policy's figure; `vs_baseline` tests compare against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schedc.behaviour.scenario import (
    Completion,
    Order,
    Placement,
    Scenario,
    Share,
    Slice,
    Starvation,
    Wait,
    _Expect,
)
from schedc.behaviour.trace import TaskTimeline, Trace


@dataclass(frozen=True)
class TaskRecord:
    """One workload process, as the runner saw it."""

    group: str
    index: int
    pid: int
    comm: str
    comm_seen: str | None
    exit_code: int | None
    signal: str | None
    process_seen: str | None = None  # its process's name (for a thread of a named process)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.signal is None

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "index": self.index,
            "pid": self.pid,
            "comm": self.comm,
            "process_seen": self.process_seen,
            "comm_seen": self.comm_seen,
            "exit_code": self.exit_code,
            "signal": self.signal,
        }


@dataclass
class Observation:
    """One run of a scenario: the trace and the runner's record of its processes."""

    trace: Trace
    tasks: list[TaskRecord]
    released: dict[str, float] = field(default_factory=dict)

    def timelines(self, group: str | None) -> list[TaskTimeline]:
        pids = [t.pid for t in self.tasks if group is None or t.group == group]
        return [self.trace.tasks[p] for p in pids if p in self.trace.tasks]

    def release(self, group: str | None) -> float:
        rel = self.trace.releases() or self.released
        if group is not None and group in rel:
            return rel[group]
        return min(rel.values()) if rel else self.trace.start


@dataclass
class ExpectationResult:
    kind: str
    groups: list[str]
    expected: str
    measured: float | None
    baseline: float | None
    ok: bool
    line: int | None
    unit: str = ""
    detail: str = ""
    runs: list[float | None] = field(default_factory=list)
    baseline_runs: list[float | None] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "groups": self.groups,
            "expected": self.expected,
            "measured": _round(self.measured),
            "baseline": _round(self.baseline),
            "unit": self.unit,
            "ok": self.ok,
            "line": self.line,
            "detail": self.detail,
            "per_run": [_round(v) for v in self.runs],
            "baseline_per_run": [_round(v) for v in self.baseline_runs],
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


# --- statistics --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 < q <= 100), linear between the closest ranks."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return percentile(known, 50) if known else None


# --- metrics of one run ------------------------------------------------------------------------


def run_time(obs: Observation, group: str | None, cpus: Sequence[int] | None = None) -> float:
    allowed = None if cpus is None else set(cpus)
    return sum(
        end - start
        for t in obs.timelines(group)
        for cpu, start, end in t.intervals
        if allowed is None or cpu in allowed
    )


def placement_fraction(obs: Observation, group: str, cpus: Sequence[int]) -> float | None:
    total = run_time(obs, group)
    return run_time(obs, group, cpus) / total if total > 0 else None


def first_starts(obs: Observation) -> dict[int, float]:
    """pid -> when the task first ran after its group's release."""
    out: dict[int, float] = {}
    for rec in obs.tasks:
        tl = obs.trace.tasks.get(rec.pid)
        if tl is None:
            continue
        rel = obs.release(rec.group)
        starts = [start for _cpu, start, _end in tl.intervals if start >= rel]
        if starts:
            out[rec.pid] = min(starts)
    return out


def first_start(obs: Observation, group: str) -> float | None:
    starts = first_starts(obs)
    mine = [starts[t.pid] for t in obs.tasks if t.group == group and t.pid in starts]
    return min(mine) if mine else None


def lead(obs: Observation, group: str, other: str) -> float | None:
    """How long before `other`'s first task `group`'s first task began to run (negative: after)."""
    a, b = first_start(obs, group), first_start(obs, other)
    return None if a is None or b is None else b - a


def rank(obs: Observation, group: str) -> float | None:
    """1-based place of the group's first task among all tasks' first starts."""
    starts = first_starts(obs)
    mine = first_start(obs, group)
    if mine is None:
        return None
    return float(1 + sum(1 for ts in starts.values() if ts < mine))


def share_ratio(obs: Observation, first: str, second: str) -> float | None:
    a, b = run_time(obs, first), run_time(obs, second)
    return a / b if b > 0 else None


def wait_percentile(obs: Observation, group: str, q: float) -> float | None:
    return percentile([d for t in obs.timelines(group) for d in t.wake_delays], q)


def longest_wait(obs: Observation, group: str) -> float | None:
    waits = [w for t in obs.timelines(group) for w in t.waits]
    return max(waits) if waits else None


def median_interval(obs: Observation, group: str) -> float | None:
    return percentile([e - s for t in obs.timelines(group) for _c, s, e in t.intervals], 50)


def makespan(obs: Observation, group: str | None) -> float | None:
    """From the group's release (the first release for all) to its last task's exit."""
    timelines = obs.timelines(group)
    if not timelines or any(t.exited is None for t in timelines):
        return None
    return max(t.exited for t in timelines if t.exited is not None) - obs.release(group)


# --- evaluation --------------------------------------------------------------------------------


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.3g} ms"


def _cpus(cpus: Sequence[int]) -> str:
    parts: list[str] = []
    run: list[int] = []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


# Times in the trace have microsecond resolution; differences of them carry float noise.
EPS = 1e-9

Metric = Callable[[Observation], float | None]


def _result(
    e: _Expect,
    groups: list[str],
    metric: Metric,
    policy: Sequence[Observation],
    baseline: Sequence[Observation],
    test: Callable[[float, float | None], bool],
    expected: str,
    unit: str,
    detail: Callable[[float, float | None], str] | None = None,
) -> ExpectationResult:
    runs = [metric(o) for o in policy]
    base_runs = [metric(o) for o in baseline]
    m, b = median(runs), median(base_runs)
    ok = m is not None and test(m, b)
    why = ""
    if m is None:
        why = "no data: the group's tasks did not run (or never woke) in the traced window"
    elif detail is not None:
        why = detail(m, b)
    return ExpectationResult(
        e.kind, groups, expected, m, b, ok, e.line or None, unit, why, runs, base_runs
    )


def evaluate(
    e: _Expect, policy: Sequence[Observation], baseline: Sequence[Observation]
) -> ExpectationResult:
    """One expectation on the policy's runs, with the baseline's figure beside it."""
    if isinstance(e, Placement):
        cpus = e.cpus
        return _result(
            e,
            [e.group],
            lambda o: placement_fraction(o, e.group, cpus),
            policy,
            baseline,
            lambda m, _b: m >= e.min_fraction - EPS,
            f">= {e.min_fraction:g} of its run time on CPUs {_cpus(cpus)}",
            "fraction",
        )
    if isinstance(e, Order):
        if e.before is not None:
            other = e.before
            return _result(
                e,
                [e.group, other],
                lambda o: lead(o, e.group, other),
                policy,
                baseline,
                lambda m, _b: m > 0,
                f"'{e.group}' first runs before '{other}' (lead > 0)",
                "s",
                lambda m, _b: (
                    f"'{e.group}' started {_ms(abs(m))} "
                    + ("before" if m > 0 else "after")
                    + f" '{other}'"
                ),
            )
        k = e.max_rank or 1
        return _result(
            e,
            [e.group],
            lambda o: rank(o, e.group),
            policy,
            baseline,
            lambda m, _b: m <= k,
            f"'{e.group}' among the first {k} tasks to start",
            "rank",
        )
    if isinstance(e, Share):
        g1, g2 = e.groups_
        lo, hi = e.ratio * (1 - e.tolerance), e.ratio * (1 + e.tolerance)
        return _result(
            e,
            [g1, g2],
            lambda o: share_ratio(o, g1, g2),
            policy,
            baseline,
            lambda m, _b: lo - EPS <= m <= hi + EPS,
            f"CPU time {g1}:{g2} = {e.ratio:g} ± {e.tolerance * 100:g}% ({lo:.3g}..{hi:.3g})",
            "ratio",
        )
    if isinstance(e, Wait):
        q = e.percentile
        name = f"p{q:g}"
        if e.max is not None:
            limit = e.max
            return _result(
                e,
                [e.group],
                lambda o: wait_percentile(o, e.group, q),
                policy,
                baseline,
                lambda m, _b: m <= limit + EPS,
                f"wake-to-run {name} <= {_ms(limit)}",
                "s",
            )
        if e.vs_baseline is not None:
            factor = e.vs_baseline
            return _result(
                e,
                [e.group],
                lambda o: wait_percentile(o, e.group, q),
                policy,
                baseline,
                lambda m, b: b is not None and m <= factor * b + EPS,
                f"wake-to-run {name} <= {factor:g} x the baseline's",
                "s",
            )
        other = e.below or ""
        refs = [wait_percentile(o, other, q) for o in policy]
        ref = median(refs)
        res = _result(
            e,
            [e.group, other],
            lambda o: wait_percentile(o, e.group, q),
            policy,
            baseline,
            lambda m, _b: ref is not None and m < ref,
            f"wake-to-run {name} below '{other}''s {name}",
            "s",
            lambda m, _b: f"{e.group} {name} {_ms(m)}, {other} {name} {_ms(ref)}",
        )
        res.expected += f" ({_ms(ref)})"
        return res
    if isinstance(e, Completion):
        who = e.group
        what = f"'{who}'" if who else "all tasks"
        if e.max is not None:
            limit = e.max
            return _result(
                e,
                [who] if who else [],
                lambda o: makespan(o, who),
                policy,
                baseline,
                lambda m, _b: m <= limit + EPS,
                f"makespan of {what} <= {_ms(limit)}",
                "s",
            )
        factor = e.vs_baseline or 1.0
        return _result(
            e,
            [who] if who else [],
            lambda o: makespan(o, who),
            policy,
            baseline,
            lambda m, b: b is not None and m <= factor * b + EPS,
            f"makespan of {what} <= {factor:g} x the baseline's",
            "s",
        )
    if isinstance(e, Starvation):
        limit = e.max_wait
        return _result(
            e,
            [e.group],
            lambda o: longest_wait(o, e.group),
            policy,
            baseline,
            lambda m, _b: m <= limit + EPS,
            f"no task waits longer than {_ms(limit)} to run",
            "s",
        )
    if isinstance(e, Slice):
        lo, hi = e.median * (1 - e.tolerance), e.median * (1 + e.tolerance)
        return _result(
            e,
            [e.group],
            lambda o: median_interval(o, e.group),
            policy,
            baseline,
            lambda m, _b: lo - EPS <= m <= hi + EPS,
            f"median run interval {_ms(e.median)} ± {e.tolerance * 100:g}%",
            "s",
        )
    raise TypeError(f"unknown expectation {type(e).__name__}")


def evaluate_all(
    scenario: Scenario, policy: Sequence[Observation], baseline: Sequence[Observation]
) -> list[ExpectationResult]:
    return [evaluate(e, policy, baseline) for e in scenario.expect]


def process_summary(observations: Sequence[Observation]) -> dict[str, Any]:
    """Every process of every run, and the ones that did not exit 0."""
    failed = [
        {"run": n + 1, **t.to_json()}
        for n, o in enumerate(observations)
        for t in o.tasks
        if not t.ok
    ]
    return {
        "count": sum(len(o.tasks) for o in observations),
        "failed": failed,
        "runs": [[t.to_json() for t in o.tasks] for o in observations],
    }
