"""The suite's own rules, enforced: a test without the vm marker cannot boot the sandbox, and
with SCHEDC_REQUIRE_TOOLS set (CI) a skip of any kind is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from schedc.verifier.sandbox import boot_guest, find_vng
from tests.conftest import ROOT


def test_a_test_without_the_vm_marker_cannot_boot(settings, tmp_path):
    vng = Path(str(find_vng()))
    assert vng.parent.name.startswith("boot-guard"), vng
    script = tmp_path / "guest.sh"
    script.write_text("poweroff -f\n")
    status = boot_guest(settings, tmp_path, script, 30, lambda _m: None)
    assert status == 97  # the stand-in refused at once: no QEMU was started
    record = vng.parent / "booted"
    assert record.is_file()
    record.unlink()  # this test's boot was on purpose: the guard must not fail it


def run_pytest(tmp_path: Path, require: bool) -> str:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n\ndef test_x():\n    pytest.importorskip('no_such_module_for_schedc')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SCHEDC_REQUIRE_TOOLS"}
    env["PYTHONPATH"] = str(ROOT)
    if require:
        env["SCHEDC_REQUIRE_TOOLS"] = "1"
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--rootdir", str(tmp_path), str(tmp_path / "test_x.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return ran.stdout.strip().splitlines()[-1]


def test_with_tools_required_an_importorskip_is_a_failure(tmp_path):
    assert "1 failed" in run_pytest(tmp_path, require=True)
    assert "1 skipped" in run_pytest(tmp_path, require=False)


def test_no_test_calls_importorskip_directly():
    """conftest.require_module names the remedy and fails where tools are required."""
    users = [
        p.name for p in (ROOT / "tests").glob("*.py")
        if p.name != Path(__file__).name and "importorskip(" in p.read_text()
    ]  # fmt: skip
    assert users == []
