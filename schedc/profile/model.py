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
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schedc.repo import bounded

PROFILE_SCHEMA_VERSION = 1
MAX_PROFILE_BYTES = 16 << 20  # a profile file: a long window on a busy machine fits

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


class ProfileFileError(ValueError):
    """A profile file that cannot be used: the message names the file and what is wrong."""


def read_profile(path: Path) -> Profile:
    """A `schedc profile -o` file, validated. Raises ProfileFileError naming the file (and
    the line and column of a JSON syntax error, or the field that does not fit): a FIFO, a
    device, a file over MAX_PROFILE_BYTES or anything but a valid profile is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ProfileFileError(f"{path}: cannot open the profile: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ProfileFileError(f"{path}: not a regular file (a profile is a JSON file)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileFileError(f"{path}: larger than {MAX_PROFILE_BYTES} bytes: not a profile")
    try:
        data = bounded.loads(raw, limit=MAX_PROFILE_BYTES)
    except bounded.JSONBoundsError as exc:
        try:  # the line and column of a syntax error (the depth is bounded by now)
            json.loads(raw.decode("utf-8"))
        except json.JSONDecodeError as syntax:
            raise ProfileFileError(
                f"{path}:{syntax.lineno}:{syntax.colno}: not JSON: {syntax.msg}"
            ) from exc
        except (ValueError, RecursionError):
            pass
        raise ProfileFileError(f"{path}: {exc}") from exc
    return profile_from_json(data, str(path))


def profile_from_json(data: object, where: str = "profile") -> Profile:
    """A profile from parsed JSON (a file's, or an MCP argument's), or ProfileFileError."""
    if not isinstance(data, dict) or "groups" not in data or "machine" not in data:
        raise ProfileFileError(
            f"{where}: not a workload profile (a JSON object with 'machine' and 'groups', "
            "as `schedc profile -o PROFILE.json` writes)"
        )
    version = data.get("schema_version", 1)
    if version != PROFILE_SCHEMA_VERSION:
        raise ProfileFileError(
            f"{where}: profile schema_version {version!r}; this schedc reads version 1 "
            "(profile again with this schedc, or upgrade it)"
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"]) or "(top)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ProfileFileError(f"{where}: invalid profile: {at}: {first['msg']}{more}") from exc
