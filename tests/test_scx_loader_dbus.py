"""`schedc status` and `schedc stop --force` talk to scx_loader over the system bus with
busctl (docs/run.md). Here the bus is a real dbus-daemon on a socket in a temp folder (busctl
reaches it through DBUS_SYSTEM_BUS_ADDRESS, as sd-bus documents), scx_loader is the stand-in of
tests/scx_loader_standin.py (scx_loader itself cannot be installed on this machine), and the
kernel is a made-up /sys: nothing on this machine is attached, stopped or written outside the
temp folder (SysRq goes to a canary file that must stay absent).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedc.verifier import hostctl
from schedc.verifier.hostctl import Host, HostControlError, detach, host_status
from tests.made_up_sys import made_up_host

HERE = Path(__file__).parent

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>schedc-test</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it: apt-get install "
                    "dbus-daemon systemd)")
    return path


@pytest.fixture
def bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private bus; busctl --system (schedc's calls) goes to it."""
    _need("busctl")
    daemon = _need("dbus-daemon")
    socket = tmp_path / "bus"
    config = tmp_path / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=socket))
    proc = subprocess.Popen([daemon, f"--config-file={config}", "--nofork", "--nopidfile"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not socket.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "dbus-daemon did not listen within 10 s"
        time.sleep(0.05)
    address = f"unix:path={socket}"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
    try:
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def loader(bus: str, tmp_path: Path) -> Iterator[tuple[Host, Path]]:
    """The made-up kernel runs 'rusty', which the stand-in scx_loader says it started."""
    host = made_up_host(tmp_path, "rusty", enable_seq=3)
    log = tmp_path / "loader.log"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "scx_loader_standin.py"), bus, "scx_rusty", str(log),
         str(host.sched_ext / "state")],
        stderr=subprocess.PIPE, env=os.environ.copy(),
    )
    deadline = time.monotonic() + 15
    while not (log.exists() and log.read_text().startswith("ready")):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the stand-in did not take its bus name in 15 s"
        time.sleep(0.05)
    try:
        yield host, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _calls(log: Path) -> list[str]:
    return [line.split(" ", 1)[0] for line in log.read_text().splitlines()[1:]]


def test_status_names_scx_loaders_scheduler_and_stop_refuses_it(loader):
    host, log = loader
    status = host_status(host)
    assert status.attached and status.ops == "rusty"
    assert status.scx_loader == "scx_rusty" and status.owner == "scx_loader"
    assert _calls(log) == ["org.freedesktop.DBus.Properties.Get"]
    with pytest.raises(HostControlError, match="scx_loader's scx_rusty"):
        detach(host=host)
    assert "org.scx.Loader.StopScheduler" not in _calls(log)
    assert (host.sched_ext / "state").read_text() == "enabled\n"


def test_stop_force_asks_scx_loader_to_stop_its_scheduler_not_sysrq(loader):
    host, log = loader
    before, after = detach(host=host, force=True)
    assert before.owner == "scx_loader" and before.scx_loader == "scx_rusty"
    assert _calls(log).count("org.scx.Loader.StopScheduler") == 1
    assert after.state == "disabled" and not after.attached and after.owner == "none"
    assert not host.sysrq.exists()  # scx_loader stopped it: no SysRq-S


def test_without_scx_loader_on_the_bus_the_scheduler_is_anothers(bus, tmp_path, monkeypatch):
    """A bus where nobody owns org.scx.Loader: busctl fails, schedc says `other` and
    --force falls back to SysRq-S (here the canary file)."""
    monkeypatch.setattr(hostctl, "DISABLE_WAIT_S", 0.3)
    host = made_up_host(tmp_path, "rusty", enable_seq=3)
    status = host_status(host)
    assert status.attached and status.scx_loader is None and status.owner == "other"
    with pytest.raises(HostControlError, match="still attached"):  # no kernel to react
        detach(host=host, force=True)
    assert host.sysrq.read_text() == "S"
