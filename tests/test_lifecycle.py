"""The command line as a process: it finds its helpers without an activated virtualenv, it
stops its children (clang, vng, QEMU) when it is told to stop, and it exits quietly when the
reader of its output goes away. Every test runs the real `schedc` in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedc.settings import Settings
from schedc.verifier.sandbox import sandbox_problem
from tests.conftest import EXAMPLES, ROOT, skip_or_fail

SCHEDC = ROOT / ".venv" / "bin" / "schedc"
BARE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SETTINGS_ENV = {
    "clang": "SCHEDC_CLANG",
    "bpftool": "SCHEDC_BPFTOOL",
    "btf": "SCHEDC_BTF",
    "kernel": "SCHEDC_KERNEL",
    "libbpf_include": "SCHEDC_LIBBPF_INCLUDE",
    "libbpf": "SCHEDC_LIBBPF",
    "cache_dir": "SCHEDC_CACHE",
    "accel": "SCHEDC_ACCEL",
}


def bare_env(settings: Settings, home: Path) -> dict[str, str]:
    """What a cron job or a service manager gives a program: no virtualenv on PATH, only the
    settings as SCHEDC_* variables."""
    env = {"PATH": BARE_PATH, "HOME": str(home), "LANG": "C.UTF-8"}
    for key, name in SETTINGS_ENV.items():
        value = getattr(settings, key)
        if value:
            env[name] = str(value)
    return env


def needs_schedc_script() -> None:
    if not os.access(SCHEDC, os.X_OK):
        skip_or_fail(f"{SCHEDC} is missing: run scripts/setup.sh")


def needs_sandbox(settings: Settings) -> None:
    problem = sandbox_problem(settings)
    if problem:
        skip_or_fail(problem)


# --- processes, from /proc ----------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, process group) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return name, int(fields[1]), int(fields[2])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def processes() -> dict[int, tuple[str, int, int]]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            got = _stat(int(entry))
            if got:
                table[int(entry)] = got
    return table


def descendants(root: int) -> dict[int, str]:
    """Live descendants of root: pid -> command line (or name)."""
    table = processes()
    children: dict[int, list[int]] = {}
    for pid, (_name, ppid, _pgid) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = _cmdline(pid) or table[pid][0]
        todo.extend(children.get(pid, []))
    return found


def in_groups(groups: set[int]) -> dict[int, str]:
    """Live processes whose process group is one of groups (they outlive a dead parent)."""
    return {
        pid: _cmdline(pid) or name
        for pid, (name, _ppid, pgid) in processes().items()
        if pgid in groups
    }


def wait_for(predicate, timeout: float, every: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    return predicate()


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; whatever is left of them is killed at the end, whole groups."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# --- 1. vng without an activated virtualenv -----------------------------------------------------


@pytest.mark.vm
def test_verify_boots_the_sandbox_without_the_virtualenv_on_path(settings, toolchain, tmp_path):
    """vng starts virtme-run through PATH: schedc puts the virtualenv's bin folder there."""
    needs_sandbox(settings)
    needs_schedc_script()
    proc = subprocess.run(
        [str(SCHEDC), "verify", "--sandbox", str(EXAMPLES[0])],
        capture_output=True,
        text=True,
        env=bare_env(settings, tmp_path),
        cwd=tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "virtme-run: not found" not in proc.stderr
    assert f"ok   {EXAMPLES[0]}" in proc.stdout
