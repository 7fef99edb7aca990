"""`schedc warm -- COMMAND`: the commands of a script share warm sandbox guests. Here as a
user runs it (a real process tree): the pool the command sees, the exit status it passes on,
what is left after it ends or is stopped, and, in the VM, two `schedc verify` runs on one
boot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedc.settings import kernel_matrix
from tests.conftest import EXAMPLES, ROOT, needs_sandbox

SCHEDC = [sys.executable, "-m", "schedc"]


def warm(tmp_path: Path, *command: str, kernel: str | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`schedc warm [--kernel K] -- COMMAND` from `tmp_path` with its cache there, so the pool
    is made (and must be removed) inside the test's folder."""
    return subprocess.run(
        [*SCHEDC, "warm", *(["--kernel", kernel] if kernel else []), "--", *command],
        cwd=tmp_path, env=env_for(tmp_path), capture_output=True, text=True, timeout=timeout,
    )


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCHEDC_WARM_SANDBOX"}
    env.update(PYTHONPATH=str(ROOT), SCHEDC_CACHE=str(tmp_path / "cache"))
    return env


def pools(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "warm").glob("pool-*"))


def test_without_a_command_it_says_how_to_give_one(tmp_path):
    ran = warm(tmp_path)
    assert ran.returncode == 2
    assert "give the command to run after --: schedc warm -- COMMAND" in ran.stderr
    ran = warm(tmp_path, "no-such-command-here")
    assert ran.returncode == 2 and "no such command: no-such-command-here" in ran.stderr
    assert pools(tmp_path) == []


def test_the_command_sees_the_pool_and_its_status_is_passed_on(tmp_path):
    seen = tmp_path / "seen"
    ran = warm(tmp_path, "sh", "-c", f'echo "$SCHEDC_WARM_SANDBOX" > {seen}; ls "$SCHEDC_WARM_SANDBOX"'
               f' > /dev/null && exit 7')
    assert ran.returncode == 7, ran.stderr
    pool = Path(seen.read_text().strip())
    assert pool.parent == tmp_path / "cache" / "warm" and pool.name.startswith("pool-")
    assert not pool.exists()  # shut down and removed when the command ended
    assert "guests shut down" in ran.stderr


def test_a_command_killed_by_a_signal_gives_128_plus_it(tmp_path):
    ran = warm(tmp_path, "sh", "-c", "kill -KILL $$")
    assert ran.returncode == 128 + signal.SIGKILL
    assert pools(tmp_path) == []


def test_without_a_sandbox_kernel_it_warns_and_still_runs_the_command(tmp_path):
    env_file = tmp_path / "ran"
    settings = {k: v for k, v in env_for(tmp_path).items()
                if not k.startswith("SCHEDC_KERNEL")}
    ran = subprocess.run(
        [*SCHEDC, "warm", "--", "touch", str(env_file)], cwd=tmp_path, env=settings,
        capture_output=True, text=True, timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert env_file.exists()
    assert "no sandbox kernel to keep warm" in ran.stderr


def test_stopping_schedc_warm_stops_the_command_and_removes_the_pool(tmp_path):
    started = tmp_path / "started"
    child_pid = tmp_path / "pid"
    proc = subprocess.Popen(
        [*SCHEDC, "warm", "--", "sh", "-c",
         f'echo $$ > {child_pid}; touch {started}; exec sleep 300'],
        cwd=tmp_path, env=env_for(tmp_path), stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the command did not start"
        assert len(pools(tmp_path)) == 1
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    pid = int(child_pid.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the command was stopped with it
    assert pools(tmp_path) == []


@pytest.mark.vm
def test_two_verify_commands_share_one_boot(settings, tmp_path):
    """The batch case: one boot for both commands, each command's job in the warm guest, and
    the second one's verdict (a run test too) as good as a fresh boot's."""
    needs_sandbox(settings)
    first = kernel_matrix(settings, attach=True)[0]  # the kit both the pool and verify name
    kit = str(Path(str(first.kernel)).parent)
    one = f"{sys.executable} -m schedc verify --kernel {kit}"
    script = f"cd {ROOT} && {one} {EXAMPLES[0]} && {one} --run 2 {ROOT / 'examples' / 'ljf.sched'}"
    env = env_for(tmp_path)
    ran = subprocess.run(
        [*SCHEDC, "warm", "--kernel", kit, "--", "sh", "-c", script],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stderr.count("booting the warm sandbox") == 1, ran.stderr
    assert ran.stderr.count("in the warm sandbox guest") == 2, ran.stderr
    assert "warm sandbox: 1 boot(s); guests shut down" in ran.stderr
    assert f"ok   {EXAMPLES[0]}" in ran.stdout and "stayed enabled" in ran.stdout, ran.stdout
    assert pools(tmp_path) == []
