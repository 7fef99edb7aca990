"""What a measurement ran on: CPU model and core count (a fingerprint groups comparable
machines), and kernel releases for the host and for a sandbox bzImage."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

from schedc.repo.models import Machine


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
            return " ".join(value.split())
    return platform.processor() or platform.machine() or "unknown"


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> Machine:
    model = cpu_model(cpuinfo)
    cores = os.cpu_count() or 1
    digest = hashlib.sha256(f"{model}|{cores}".encode()).hexdigest()[:12]
    return Machine(cpu_model=model, cores=cores, fingerprint=digest)


def host_kernel() -> str:
    return platform.release()
