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

import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROFILE_SCHEMA_VERSION = 1
MAX_PROFILE_BYTES = 4 * 1024 * 1024  # a profile of --all on a large machine is well below

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


class ProfileError(Exception):
    """A file that is not a profile this schedc can read: the message names the file, the
    field and what to do."""


def read_profile(path: Path) -> Profile:
    """The profile in `path` (written by `schedc profile -o`), or ProfileError."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path} is larger than {MAX_PROFILE_BYTES >> 20} MiB: not a profile")
    return parse_profile(raw, str(path))


def parse_profile(raw: bytes | str, name: str = "<profile>") -> Profile:
    hint = "write one with `schedc profile ... -o PROFILE.json`"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{name}: not JSON ({exc}); {hint}") from None
    if not isinstance(data, dict) or "groups" not in data or "machine" not in data:
        raise ProfileError(f"{name}: not a schedc profile (no groups and machine); {hint}")
    version = data.get("schema_version")
    if version != PROFILE_SCHEMA_VERSION:
        raise ProfileError(
            f"{name}: profile schema_version {version!r}; this schedc reads version "
            f"{PROFILE_SCHEMA_VERSION}: profile again with this schedc"
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ProfileError(f"{name}: {where}: {first['msg']}{more}; {hint}") from None
