"""The workload profile as data: what `schedc profile` writes (`-o PROFILE.json`) and what the
scenario writer, the draft writer, repository search and the agent read.

A profile describes task *groups* a person would name ("postgres", "cc1", "firefox" with its
"Renderer" threads), each with the shape that matters to a scheduler: how much CPU it uses,
how long it runs each time it gets a CPU, how often it wakes, and how long it waits on a run
queue (the latency scheduling causes). Every figure's unit is in its name: `_us` is
microseconds, `_per_s` is per second of wall time.

Models forbid unknown keys; `schema_version` lets a newer schedc refuse an older or newer file
with a message rather than half-read it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PROFILE_SCHEMA_VERSION = 1

Label = Literal["batch", "interactive", "latency-critical", "io-bound"]
LABELS: tuple[Label, ...] = ("batch", "interactive", "latency-critical", "io-bound")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Model):
    """A figure over the samples it was measured in (one sample is one thread over one
    sampling interval in which it ran at least once)."""

    samples: int = Field(ge=0)
    mean: float = Field(ge=0)
    p50: float = Field(ge=0)
    p90: float = Field(ge=0)
    p99: float = Field(ge=0)


class Classification(_Model):
    """One label a group earned, with the evidence a person can check against the figures."""

    label: Label
    evidence: list[str]  # e.g. "wakes 180/s per thread", "runs 0.3 ms per run (p50)"


class TaskGroup(_Model):
    """Threads that belong together: the same process leader's comm, thread comm and cgroup."""

    name: str  # what a person calls it: "postgres", "firefox/Renderer", "cc1"
    leader_comm: str  # comm of the thread-group leader (the process name)
    comm: str  # the threads' own comm (prctl name); equals leader_comm for single threads
    cgroup: str  # cgroup v2 path ("/" when unknown)
    threads: int = Field(ge=1)  # distinct threads seen during the window
    processes: int = Field(ge=1)  # distinct thread groups (processes)
    cpu_share: float = Field(ge=0)  # fraction of the machine's CPU capacity (0..1) used
    parallelism: float = Field(ge=0)  # mean CPUs busy with this group (CPU time / wall time)
    runtime_per_run_us: Distribution  # CPU time per time slice (schedstat run / pcount)
    run_delay_us: Distribution  # run-queue wait per time slice (schedstat delay / pcount)
    wakeups_per_s: float = Field(ge=0)  # voluntary switches per second, per thread (mean)
    involuntary_per_s: float = Field(ge=0)  # preemptions per second, per thread (mean)
    nice: list[int]  # distinct nice values, sorted
    policy: list[str]  # distinct scheduling policies: "SCHED_OTHER", "SCHED_BATCH", ...
    affinity: str | None = None  # CPU list ("0-3") when narrower than the machine, else None
    classification: list[Classification] = []


class Topology(_Model):
    sockets: int = Field(ge=1)
    cores: int = Field(ge=1)
    threads_per_core: int = Field(ge=1)
    llcs: int = Field(ge=1)  # last-level cache domains


class Machine(_Model):
    cpus: int = Field(ge=1)  # online CPUs
    online: str  # the online CPU list, "0-1"
    topology: Topology
    kernel: str  # uname release
    scheduler: str  # "EEVDF" or "sched_ext: NAME" (from /sys/kernel/sched_ext)


class Target(_Model):
    """What was profiled: a command schedc started (and its children), PIDs, a cgroup, or
    every task on the machine."""

    mode: Literal["command", "pids", "cgroup", "all"]
    command: list[str] = []
    pids: list[int] = []
    cgroup: str | None = None


class Overhead(_Model):
    """The profiler's own cost over the window."""

    cpu_seconds: float = Field(ge=0)
    fraction_of_one_cpu: float = Field(ge=0)


class Profile(_Model):
    schema_version: Literal[1] = PROFILE_SCHEMA_VERSION
    created: datetime
    target: Target
    seconds: float = Field(gt=0)  # the sampling window's wall time
    interval_ms: int = Field(ge=1)
    samples: int = Field(ge=0)  # sampling rounds taken
    machine: Machine
    groups: list[TaskGroup]  # by cpu_share, largest first
    overhead: Overhead

    def group(self, name: str) -> TaskGroup | None:
        return next((g for g in self.groups if g.name == name), None)
