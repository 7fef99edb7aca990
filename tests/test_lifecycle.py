"""The command line as a process: it finds its helpers without an activated virtualenv, it
stops its children (clang, vng, QEMU) when it is told to stop, and it exits quietly when the
reader of its output goes away. Every test runs the real `schedc` in a subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedc.settings import Settings, as_environment
from tests.conftest import EXAMPLES, ROOT, needs_sandbox, skip_or_fail

SCHEDC = ROOT / ".venv" / "bin" / "schedc"
BARE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def bare_env(settings: Settings, home: Path) -> dict[str, str]:
    """What a cron job or a service manager gives a program: no virtualenv on PATH, only the
    settings as SCHEDC_* variables."""
    env = {"PATH": BARE_PATH, "HOME": str(home), "LANG": "C.UTF-8"}
    return env | as_environment(settings)


def needs_schedc_script() -> None:
    if not os.access(SCHEDC, os.X_OK):
        skip_or_fail(f"{SCHEDC} is missing: run scripts/setup.sh")



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


# --- 2. SIGTERM stops the children --------------------------------------------------------------

# 2**40 tokens from 40 macro lines: clang would expand for hours.
MACRO_BOMB = (
    "#define A0 x\n"
    + "".join(f"#define A{i} A{i - 1} A{i - 1}\n" for i in range(1, 41))
    + "int v = A40;\n"
)


def start_schedc(
    started: list[subprocess.Popen[str]], args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [str(SCHEDC), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,  # a group of ours: the fixture kills what is left of it
    )
    started.append(proc)
    return proc


def wait_for_child(
    proc: subprocess.Popen[str], word: str, timeout: float, also: str = ""
) -> dict[int, str]:
    """The descendants of proc once one of them has `word` (and `also`) in its command line."""

    def look() -> dict[int, str]:
        assert proc.poll() is None, proc.communicate()
        found = descendants(proc.pid)
        return found if any(word in cmd and also in cmd for cmd in found.values()) else {}

    found = wait_for(look, timeout, every=0.2)
    assert found, f"no {word} under schedc after {timeout} s"
    return found


def still_alive(seen: dict[int, str]) -> dict[int, str]:
    """Which of the processes seen before are still running (the same command line)."""
    return {pid: cmd for pid, cmd in seen.items() if _stat(pid) and _cmdline(pid) == cmd}


def stop_and_check(proc: subprocess.Popen[str], seen: dict[int, str], groups: set[int]) -> str:
    """SIGTERM to schedc alone (as `timeout` or systemd sends it); it must be gone within a
    few seconds with every child it had, and say so in one line. Returns its stderr."""
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
        raise AssertionError(f"schedc still running 15 s after SIGTERM: {err}") from None

    def leftovers() -> dict[int, str]:
        return {**still_alive(seen), **in_groups(groups | {proc.pid})}

    deadline = time.monotonic() + 5
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = leftovers()
    for pid in left:  # do not leave them to the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"left running after SIGTERM: {left}"
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "schedc: stopped by SIGTERM", err
    return err


def groups_of(pids: dict[int, str]) -> set[int]:
    return {st[2] for pid in pids if (st := _stat(pid))}


def compile_bomb(settings: Settings, tmp_path: Path, started: list[subprocess.Popen[str]]):  # type: ignore[no-untyped-def]
    """`schedc compile` of a C macro bomb, stopped with SIGTERM while clang expands it."""
    needs_schedc_script()
    source = tmp_path / "bomb.bpf.c"
    source.write_text(MACRO_BOMB)
    env = {**bare_env(settings, tmp_path), "TMPDIR": str(tmp_path)}
    proc = start_schedc(started, ["compile", str(source)], env, tmp_path)
    seen = wait_for_child(proc, "clang", 60)
    time.sleep(0.5)  # clang is busy expanding
    return stop_and_check(proc, seen, groups_of(seen))


def test_sigterm_during_compile_leaves_no_clang(settings, toolchain, tmp_path, started):
    compile_bomb(settings, tmp_path, started)


def test_sigterm_during_compile_leaves_no_object_temp_file(settings, toolchain, tmp_path, started):
    """clang's `.OUT.*.tmp` object is removed on every way out (compiler/toolchain.py)."""
    compile_bomb(settings, tmp_path, started)
    assert not list(tmp_path.glob(".bomb.bpf.o.*.tmp"))


def test_sigterm_reaches_a_check_stuck_in_libclang(settings, toolchain, tmp_path, started):
    """libclang parses in the main thread, in C, where Python cannot run a signal handler: the
    watchdog ends the process a few seconds after SIGTERM."""
    needs_schedc_script()
    source = tmp_path / "bomb.bpf.c"
    source.write_text(MACRO_BOMB)
    env = {**bare_env(settings, tmp_path), "TMPDIR": str(tmp_path)}
    proc = start_schedc(started, ["check", str(source)], env, tmp_path)
    time.sleep(6)  # past the start: libclang is expanding the bomb
    assert proc.poll() is None, proc.communicate()
    seen = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
        raise AssertionError("schedc check still running 20 s after SIGTERM") from None
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("schedc: stopped by SIGTERM"), err
    assert not still_alive(seen)


@pytest.mark.vm
def test_sigterm_during_verify_stops_vng_and_qemu(settings, toolchain, tmp_path, started):
    needs_sandbox(settings)
    needs_schedc_script()
    env = {**bare_env(settings, tmp_path), "TMPDIR": str(tmp_path)}
    proc = start_schedc(
        started,
        ["verify", "--sandbox", "--run", "30", "--workload", "spin", str(EXAMPLES[0])],
        env,
        tmp_path,
    )
    # The guest's QEMU (with its -kernel), not a short-lived `qemu-system-* --version` probe of
    # vng's, which a busy machine may catch and which is gone when its group is read.
    seen = wait_for_child(proc, "qemu-system", 300, also="-kernel")
    qemu = [pid for pid, cmd in seen.items() if "qemu-system" in cmd and "-kernel" in cmd]
    groups = groups_of(seen) - {proc.pid}
    assert len(groups) == 1, f"vng and QEMU run in one process group of their own: {seen}"
    assert groups_of(dict.fromkeys(qemu, "")) == groups, "QEMU is in vng's group"
    time.sleep(1)
    stop_and_check(proc, seen, groups)
    assert not list(tmp_path.glob("schedc-*")), "the sandbox and build folders are removed"


# --- 4. a reader that goes away -----------------------------------------------------------------


def into_closed_pipe(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """args with stdout on a pipe whose reader has already gone (as `| head` does once it has
    its lines): the first write fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            args, stdout=write, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, timeout=300
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args",
    [
        ["repo", "--format", "json", "list"],
        ["compile", "--format", "json", str(EXAMPLES[0])],
    ],
    ids=["repo-list", "compile-json"],
)
def test_a_closed_pipe_is_a_quiet_exit_141(args, settings, toolchain, tmp_path):
    needs_schedc_script()
    env = {**bare_env(settings, tmp_path), "SCHEDC_REPO": str(tmp_path / "policies")}
    init = subprocess.run([str(SCHEDC), "repo", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    if args[0] == "compile":
        args = [*args[:-1], "-o", str(tmp_path / "out.bpf.o"), args[-1]]
    proc = into_closed_pipe([str(SCHEDC), *args], env, tmp_path)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


def test_the_repo_module_entry_point_is_quiet_on_a_closed_pipe(settings, tmp_path):
    env = {**bare_env(settings, tmp_path), "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "schedc.repo", "--repo", str(tmp_path / "r"), "init"],
        env=env,
        capture_output=True,
        check=True,
    )
    proc = into_closed_pipe(
        [
            sys.executable,
            "-m",
            "schedc.repo",
            "--repo",
            str(tmp_path / "r"),
            "--format",
            "json",
            "list",
        ],
        env,
        tmp_path,
    )
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


def test_wait_group_gone_waits_for_every_live_member_of_the_group():
    """A group whose leader exits at once but whose child lives on is not gone until the
    child is; a killed group is gone (zombies do not count)."""
    import subprocess as sp

    from schedc.lifecycle import kill_group, wait_group_gone

    proc = sp.Popen(["sh", "-c", "sleep 30 & exit 0"], start_new_session=True)
    proc.wait()
    assert wait_group_gone(proc.pid, timeout=0.3) is False  # the sleep is still in the group
    kill_group(proc.pid)
    assert wait_group_gone(proc.pid, timeout=5) is True
