"""Machine facts for a profile, from /proc and /sys under a root folder (tests point it at a
made-up tree): online CPUs, topology (packages, cores, SMT, last-level caches), the kernel
release and the scheduler in use (the kernel's fair class, or the sched_ext scheduler that is
attached). Only reads; never writes anywhere."""

from __future__ import annotations

import os
from pathlib import Path

from schedc.dsl.language import format_cpu_list
from schedc.profile.model import Machine, Topology
from schedc.profile.procfs import parse_cpu_list


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def online_cpus(root: Path = Path("/")) -> set[int]:
    """The online CPUs (/sys/devices/system/cpu/online), else os.cpu_count()'s 0..N-1."""
    text = _read(root / "sys/devices/system/cpu/online")
    if text:
        try:
            cpus = parse_cpu_list(text)
        except ValueError:
            cpus = set()
        if cpus:
            return cpus
    return set(range(os.cpu_count() or 1))


def topology(cpus: set[int], root: Path = Path("/")) -> Topology:
    """Packages, cores and last-level cache domains of the online CPUs. A cache domain is a
    distinct shared_cpu_list of the highest cache level (level 3 where there is one)."""
    base = root / "sys/devices/system/cpu"
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    llc_by_level: dict[int, set[str]] = {}
    for cpu in sorted(cpus):
        top = base / f"cpu{cpu}" / "topology"
        package = _read(top / "physical_package_id") or "0"
        core = _read(top / "core_id") or str(cpu)
        packages.add(package)
        cores.add((package, core))
        cache = base / f"cpu{cpu}" / "cache"
        try:
            indexes = [p for p in cache.iterdir() if p.name.startswith("index")]
        except OSError:
            indexes = []
        for index in indexes:
            level = _read(index / "level")
            shared = _read(index / "shared_cpu_list")
            kind = _read(index / "type") or "Unified"
            if level and level.isdigit() and shared and kind != "Instruction":
                llc_by_level.setdefault(int(level), set()).add(shared)
    if 3 in llc_by_level:
        llcs = len(llc_by_level[3])
    elif llc_by_level:
        llcs = len(llc_by_level[max(llc_by_level)])
    else:
        llcs = len(packages)
    n_cores = max(len(cores), 1)
    return Topology(
        sockets=max(len(packages), 1),
        cores=n_cores,
        threads_per_core=max(len(cpus) // n_cores, 1),
        llcs=max(llcs, 1),
    )


def kernel_release(root: Path = Path("/")) -> str:
    return _read(root / "proc/sys/kernel/osrelease") or os.uname().release


def scheduler_in_use(root: Path = Path("/"), release: str | None = None) -> str:
    """ "sched_ext: NAME" when a sched_ext scheduler is attached (/sys/kernel/sched_ext/state
    is "enabled", NAME from root/ops), else the fair class: "EEVDF" from Linux 6.6 on, "CFS"
    before it."""
    scx = root / "sys/kernel/sched_ext"
    state = _read(scx / "state")
    if state in ("enabled", "enabling"):
        name = _read(scx / "root" / "ops") or "unknown"
        return f"sched_ext: {name}"
    release = release or kernel_release(root)
    try:
        major, minor = (int(x) for x in release.split("-", 1)[0].split(".")[:2])
    except ValueError:
        return "EEVDF"
    return "EEVDF" if (major, minor) >= (6, 6) else "CFS"


def machine_facts(root: Path = Path("/")) -> Machine:
    cpus = online_cpus(root)
    release = kernel_release(root)
    return Machine(
        cpus=len(cpus),
        online=format_cpu_list(cpus),
        topology=topology(cpus, root),
        kernel=release,
        scheduler=scheduler_in_use(root, release),
    )
