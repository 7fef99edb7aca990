"""How alike two workload profiles are, over the shapes of their task groups.

A performance record keeps the compact shape of the profile it was measured under
(`ProfileShape`, from `profile_shape(profile)`), and `schedc repo search --profile` ranks
policies by `similarity(shape_of_your_profile, shape_of_their_record)`.

The formula (docs/profile.md, "Similarity"), in short: each group is a point of six features
— log10 runtime per run (p50), log10(1 + wake-ups per second), CPU share, log2(1 +
parallelism), per-thread duty (parallelism / threads) and its labels — scaled so that one unit
is a difference that matters to a scheduler; two groups are alike by exp(-d²/2) of their
scaled distance, with a small bonus when their comms are equal. Groups are paired greedily,
most alike first; the profile score is the weighted mean of the pairs' similarities, each
group weighted half by its CPU share and half equally, unpaired groups counting 0. Names
never enter the shape distance: "postgres" measured on another machine still matches a
same-shaped group called anything.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schedc.profile.model import LABELS, Label, Profile

SHAPE_SCHEMA_VERSION = 1
MAX_SHAPE_GROUPS = 12  # the groups a shape keeps, largest CPU share first

# One unit of each scaled feature: the difference that matters to a scheduler.
RUNTIME_DECADE = 1.0  # log10(runtime per run, µs): 10x longer runs
WAKE_DECADE = 1.0  # log10(1 + wake-ups/s): 10x more wake-ups
SHARE_UNIT = 0.25  # CPU share of the machine: a quarter of it
PARALLEL_UNIT = 2.0  # log2(1 + parallelism): about 4x as many CPUs busy
DUTY_UNIT = 0.5  # per-thread duty (fraction of the time each thread runs)
LABEL_UNIT = 0.5  # Jaccard distance of the labels
COMM_BONUS = 0.2  # equal comms close this fraction of the gap to 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class GroupShape(_Model):
    """One task group as a record keeps it: the figures the similarity uses, and enough to
    say which group it was (name, comm) and what it waited (for people; not compared)."""

    name: str = Field(min_length=1, max_length=128)
    comm: str = Field(max_length=64)
    leader_comm: str = Field(max_length=64)
    threads: int = Field(ge=1, le=10**7)
    cpu_share: float = Field(ge=0, le=1)
    parallelism: float = Field(ge=0, le=10**6)
    runtime_per_run_us: float = Field(ge=0, le=1e12)  # p50
    wakeups_per_s: float = Field(ge=0, le=1e9)
    run_delay_p99_us: float = Field(ge=0, le=1e12)  # the scheduler's outcome, not compared
    labels: list[Label] = Field(default=[], max_length=len(LABELS))

    @field_validator("cpu_share", "parallelism", "runtime_per_run_us", "wakeups_per_s")
    @classmethod
    def _is_finite(cls, value: float) -> float:
        return _finite(value)

    @field_validator("labels")
    @classmethod
    def _unique(cls, value: list[Label]) -> list[Label]:
        if len(set(value)) != len(value):
            raise ValueError("labels are listed once each")
        return value


class ProfileShape(_Model):
    """The compact shape of a profile: its largest groups (at most MAX_SHAPE_GROUPS, by CPU
    share) and the machine's CPU count (for people; shares are already per machine)."""

    schema_version: Literal[1] = SHAPE_SCHEMA_VERSION
    cpus: int = Field(ge=1, le=1 << 20)
    groups: list[GroupShape] = Field(max_length=MAX_SHAPE_GROUPS)


def profile_shape(profile: Profile) -> ProfileShape:
    """The shape of `profile`: its MAX_SHAPE_GROUPS groups with the largest CPU share."""
    groups = sorted(profile.groups, key=lambda g: (-g.cpu_share, g.name))[:MAX_SHAPE_GROUPS]
    return ProfileShape(
        cpus=profile.machine.cpus,
        groups=[
            GroupShape(
                name=g.name[:128],
                comm=g.comm[:64],
                leader_comm=g.leader_comm[:64],
                threads=g.threads,
                cpu_share=min(1.0, g.cpu_share),
                parallelism=g.parallelism,
                runtime_per_run_us=g.runtime_per_run_us.p50,
                wakeups_per_s=g.wakeups_per_s,
                run_delay_p99_us=g.run_delay_us.p99,
                labels=list(dict.fromkeys(c.label for c in g.classification)),
            )
            for g in groups
        ],
    )


def _features(g: GroupShape) -> tuple[float, ...]:
    duty = min(1.0, g.parallelism / g.threads)
    return (
        math.log10(max(g.runtime_per_run_us, 1.0)) / RUNTIME_DECADE,
        math.log10(1.0 + g.wakeups_per_s) / WAKE_DECADE,
        g.cpu_share / SHARE_UNIT,
        math.log2(1.0 + g.parallelism) / PARALLEL_UNIT,
        duty / DUTY_UNIT,
    )


def _label_distance(a: GroupShape, b: GroupShape) -> float:
    la, lb = set(a.labels), set(b.labels)
    if not la and not lb:
        return 0.0
    return 1.0 - len(la & lb) / len(la | lb)


def group_similarity(a: GroupShape, b: GroupShape) -> float:
    """exp(-d²/2) of the scaled feature distance, in [0, 1]; equal comms (the threads' or
    the process leader's) close COMM_BONUS of the gap to 1."""
    d2 = sum((x - y) ** 2 for x, y in zip(_features(a), _features(b), strict=True))
    d2 += (_label_distance(a, b) / LABEL_UNIT) ** 2
    g = math.exp(-d2 / 2)
    if a.comm == b.comm or a.leader_comm == b.leader_comm:
        g += COMM_BONUS * (1.0 - g)
    return g


def _weights(shape: ProfileShape) -> list[float]:
    """Half by CPU share, half equal: a small latency-critical group still counts."""
    n = len(shape.groups)
    total = sum(g.cpu_share for g in shape.groups)
    return [0.5 * (g.cpu_share / total if total > 0 else 1.0 / n) + 0.5 / n for g in shape.groups]


def matched_groups(a: ProfileShape, b: ProfileShape) -> list[tuple[int, int, float]]:
    """Greedy pairing, most alike first: (index in a, index in b, group similarity). Ties go
    by the pair's combined weight, then by the two names in sorted order, so the pairing
    (and so the score) does not depend on which profile comes first."""
    wa, wb = _weights(a), _weights(b)
    pairs = []
    for i, ga in enumerate(a.groups):
        for j, gb in enumerate(b.groups):
            s = group_similarity(ga, gb)
            names = tuple(sorted((ga.name, gb.name)))
            pairs.append((-round(s, 12), -round(wa[i] + wb[j], 12), names, i, j, s))
    pairs.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for *_key, i, j, s in pairs:
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.append((i, j, s))
    return out


def similarity(a: ProfileShape, b: ProfileShape) -> float:
    """How alike two profiles' shapes are: 1 for identical shapes, 0 for nothing alike (or a
    profile without groups). Symmetric; the weighted mean of the paired groups' similarity,
    each pair weighted by the mean of its two groups' weights."""
    if not a.groups or not b.groups:
        return 1.0 if not a.groups and not b.groups else 0.0
    wa, wb = _weights(a), _weights(b)
    score = sum(s * (wa[i] + wb[j]) / 2 for i, j, s in matched_groups(a, b))
    return max(0.0, min(1.0, score))


