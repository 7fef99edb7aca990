"""In the sandbox guest (6.12 kit): an object with a `__kconfig` extern loads when the kit's
kernel.config is handed to libbpf, and fails with V008 naming kconfig without it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from schedc.diagnostics import render_human
from schedc.settings import kernel_matrix, load_settings
from schedc.verifier.sandbox import load_in_sandbox
from schedc.verifier.verify import apply_report
from tests.conftest import ROOT, needs_sandbox, skip_or_fail

SOURCE = ROOT / "tests" / "data" / "verify" / "kconfig_hz.bpf.c"


@pytest.mark.vm
def test_kconfig_externs_load_with_the_kits_config_and_fail_with_v008_without(
    tmp_path: Path,
) -> None:
    settings = load_settings()
    kits = [k for k in kernel_matrix(settings, attach=True) if k.kconfig]
    if not kits:
        skip_or_fail("no kernel of the matrix has a kconfig (a kit's kernel.config)")
    kit = kits[0]
    needs_sandbox(kit)
    obj = tmp_path / "kconfig_hz.bpf.o"
    subprocess.run(
        [sys.executable, "-m", "schedc", "compile", str(SOURCE), "-o", str(obj)],
        cwd=ROOT, check=True, capture_output=True,
    )
    (with_config,) = load_in_sandbox([obj], kit, run_seconds=3)
    assert with_config.ok, with_config.error
    assert with_config.run is not None and with_config.run.attached, with_config.run
    assert apply_report(with_config, str(SOURCE)) == []

    (without,) = load_in_sandbox([obj], replace(kit, kconfig=None))
    assert not without.ok and without.stage == "prepare"
    (found,) = apply_report(without, str(SOURCE))
    print(render_human([found]))
    assert found.code == "V008" and "Kconfig" in found.message
    assert found.hint is not None and "kconfig" in found.hint
