"""A made-up /sys and /run in a temp folder for schedc's host control (verifier/hostctl.py):
the kernel's sched_ext files show a scheduler attached, and SysRq goes to a file there.
Nothing on the machine running the tests is read or changed."""

from __future__ import annotations

from pathlib import Path

from schedc.verifier.hostctl import Host


def made_up_host(tmp_path: Path, ops: str, enable_seq: int = 7) -> Host:
    """A Host whose kernel runs scheduler `ops` (state enabled), with schedc's pins folder and
    run folder made and empty; its sysrq file does not exist until something writes it."""
    sched_ext = tmp_path / "sys" / "kernel" / "sched_ext"
    (sched_ext / "root").mkdir(parents=True)
    (sched_ext / "state").write_text("enabled\n")
    (sched_ext / "root" / "ops").write_text(f"{ops}\n")
    (sched_ext / "enable_seq").write_text(f"{enable_seq}\n")
    host = Host(sysfs=tmp_path / "sys", run_dir=tmp_path / "run", sysrq=tmp_path / "sysrq")
    host.pins.mkdir(parents=True)
    host.run_dir.mkdir()
    return host
