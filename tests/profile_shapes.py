"""Profiles built directly from the data contract (schedc/profile/model.py) for the tests of
similarity, records measured under a profile and search by profile; no tests here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from schedc.profile.model import (
    Classification,
    Distribution,
    Label,
    Machine,
    Overhead,
    Profile,
    Target,
    TaskGroup,
    Topology,
)


def dist(x: float) -> Distribution:
    return Distribution(samples=20, mean=x, p50=x, p90=2 * x, p99=3 * x)


def group(
    name: str,
    share: float,
    runtime_us: float,
    wakeups: float,
    parallelism: float,
    threads: int,
    labels: tuple[Label, ...],
    comm: str | None = None,
) -> TaskGroup:
    return TaskGroup(
        name=name,
        leader_comm=comm or name,
        comm=comm or name,
        cgroup="/user.slice",
        threads=threads,
        processes=1,
        cpu_share=share,
        parallelism=parallelism,
        runtime_per_run_us=dist(runtime_us),
        run_delay_us=dist(40.0),
        wakeups_per_s=wakeups,
        involuntary_per_s=2.0,
        nice=[0],
        policy=["SCHED_OTHER"],
        classification=[Classification(label=lb, evidence=[f"{lb} by test"]) for lb in labels],
    )


def profile(*groups: TaskGroup, cpus: int = 4, day: int = 1) -> Profile:
    return Profile(
        created=datetime(2026, 11, day, 10, 0, tzinfo=UTC),
        target=Target(mode="command", command=["sh", "-c", "make -j4"]),
        seconds=5.0,
        interval_ms=100,
        samples=50,
        machine=Machine(
            cpus=cpus,
            online=f"0-{cpus - 1}",
            topology=Topology(sockets=1, cores=cpus, threads_per_core=1, llcs=1),
            kernel="6.12.0",
            scheduler="EEVDF",
        ),
        groups=sorted(groups, key=lambda g: -g.cpu_share),
        overhead=Overhead(cpu_seconds=0.01, fraction_of_one_cpu=0.002),
    )


def kernel_build(compiler: str = "cc1", driver: str = "make") -> Profile:
    """A batch profile: long CPU-bound runs on every CPU, a driver that mostly sleeps."""
    return profile(
        group(compiler, 0.90, 20_000, 2, 3.6, 8, ("batch",)),
        group(driver, 0.01, 300, 20, 0.04, 1, ("io-bound",)),
    )


def rust_build() -> Profile:
    """Another batch profile, of other names and a little different figures."""
    return profile(
        group("rustc", 0.80, 15_000, 3, 3.2, 6, ("batch",)),
        group("cargo", 0.02, 500, 30, 0.08, 2, ("io-bound",)),
        cpus=8,
    )


def desktop() -> Profile:
    """An interactive profile: short runs, many wake-ups, little CPU."""
    return profile(
        group("firefox", 0.10, 300, 200, 0.4, 20, ("interactive",)),
        group("Xorg", 0.03, 100, 300, 0.12, 1, ("interactive", "latency-critical")),
    )


def database_next_to_build() -> Profile:
    """postgres (latency-critical, short runs) next to a compile."""
    return profile(
        group("cc1", 0.70, 20_000, 2, 2.8, 4, ("batch",)),
        group("postgres", 0.05, 150, 400, 0.2, 8, ("latency-critical",)),
    )


def write(path: Path, p: Profile) -> Path:
    path.write_text(p.model_dump_json(indent=2), encoding="utf-8")
    return path
