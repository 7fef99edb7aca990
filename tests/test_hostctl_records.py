"""schedc's record of what it attached (RUN_DIR/attached.json) is a file anyone with root can
write: `status` and `stop` must never take it at its word. On a made-up /sys in a temp folder
(no kernel is touched, nothing is attached), records that name a canary folder outside schedc's
pins, a symbolic link to one, or `..` of the pins' folder are never reported as ours and
nothing they name is removed; a record that is not JSON is forgotten.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schedc.verifier.hostctl import RECORD, Host, HostControlError, detach, host_status
from tests.made_up_sys import made_up_host


def _host(tmp_path: Path, ops: str = "planted_ops") -> Host:
    return made_up_host(tmp_path, ops)


def _canary(tmp_path: Path) -> Path:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "file").write_text("keep")
    return canary


def _plant(host: Host, pin: str, ops: str = "planted_ops") -> None:
    record = {"policy": "x", "ops": ops, "pin": pin, "enable_seq": 7, "attached_at": "t"}
    (host.run_dir / RECORD).write_text(json.dumps(record))


def _no_loader() -> None:
    return None


@pytest.mark.parametrize("how", ["outside", "symlink", "dotdot"])
def test_a_planted_record_is_not_ours_and_stop_removes_nothing_it_names(tmp_path, how):
    host = _host(tmp_path)
    canary = _canary(tmp_path)
    (host.pins / "inside").mkdir()
    (host.pins / "inside" / "file").write_text("keep")  # what `..` of a pin would reach
    if how == "outside":
        pin = str(canary)
    elif how == "symlink":
        (host.pins / "link").symlink_to(canary, target_is_directory=True)
        pin = str(host.pins / "link")
    else:
        pin = str(host.pins / "inside" / "..")
    _plant(host, pin)
    status = host_status(host, loader=_no_loader)
    # The kernel shows a scheduler by the record's name, but the record's pin is not schedc's.
    assert status.attached and status.by_schedc is None
    assert status.stale is not None and status.stale.policy == "x"
    with pytest.raises(HostControlError, match="not attached by schedc"):
        detach(host=host, loader=_no_loader)  # another tool's: refused without --force
    assert (canary / "file").read_text() == "keep"
    assert (host.pins / "inside" / "file").read_text() == "keep"
    assert not (host.run_dir / RECORD).exists()  # the planted record itself is forgotten


def test_a_record_of_schedc_pins_is_ours(tmp_path):
    """The same record with a pin folder of schedc's own is trusted: the guard above is not
    a refusal of every record."""
    host = _host(tmp_path)
    (host.pins / "ljf-1-2").mkdir()
    _plant(host, str(host.pins / "ljf-1-2"))
    status = host_status(host, loader=_no_loader)
    assert status.by_schedc is not None and status.by_schedc.policy == "x"
    assert status.stale is None


@pytest.mark.parametrize("text", ["{not json", '{"policy": "x"}', "[]"])
def test_an_unreadable_record_is_reported_as_none_and_forgotten_by_stop(tmp_path, text):
    host = _host(tmp_path)
    (host.sched_ext / "state").write_text("disabled\n")
    (host.run_dir / RECORD).write_text(text)
    status = host_status(host, loader=_no_loader)
    assert status.by_schedc is None and status.stale is None and not status.attached
    before, after = detach(host=host, loader=_no_loader)
    assert not before.attached and not after.attached
    assert not (host.run_dir / RECORD).exists()
