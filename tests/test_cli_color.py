"""Colour in the human format: on a terminal unless NO_COLOR is set, never into a pipe, and
--color always / never over both. Runs the real command, on a pseudo-terminal where it matters."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from tests.conftest import ROOT
from tests.test_cli import BAD, run

RED = "\x1b[1;31merror[E"
ESC = "\x1b["


def on_terminal(*args: str, env: dict[str, str] | None = None) -> str:
    """stderr of `schedc ARGS` when stderr is a terminal (stdout a pipe)."""
    leader, follower = pty.openpty()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", **(env or {})}
    if "NO_COLOR" not in (env or {}):
        full_env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "schedc", *args], stdout=subprocess.PIPE,
                            stderr=follower, env=full_env, cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_colour_and_no_color_turns_it_off(tmp_path):
    policy = tmp_path / "bad.sched"
    policy.write_text(BAD)
    coloured = on_terminal("check", str(policy))
    assert RED in coloured and "\x1b[1;32m^" in coloured and "\x1b[1;36mhint:" in coloured
    plain = on_terminal("check", str(policy), env={"NO_COLOR": "1"})
    assert "error[E" in plain and ESC not in plain
    assert ESC not in on_terminal("compile", str(policy), "--color", "never")
    assert RED in on_terminal("check", str(policy), "--color", "always", env={"NO_COLOR": "1"})


def test_a_pipe_gets_none_unless_asked(tmp_path):
    policy = tmp_path / "bad.sched"
    policy.write_text(BAD)
    proc = run("check", str(policy))
    assert proc.returncode == 1 and "error[E" in proc.stderr and ESC not in proc.stderr
    proc = run("compile", str(policy), "--color", "always")
    assert proc.returncode == 1 and RED in proc.stderr
    proc = run("check", str(policy), "--color", "sometimes")
    assert proc.returncode == 2 and "invalid choice: 'sometimes'" in proc.stderr
