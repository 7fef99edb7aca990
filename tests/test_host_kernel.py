"""The host's own kernel as one more kernel of the matrix (`host` = auto | yes | no): the one
check (settings.host_kernel_problem) on a made-up /sys in a temp folder with an injected user
id, never the real /sys for a "yes" and never loading anything on this host; on this host
(no sched_ext) the matrix stays the kits, and verify says why the host was left out."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from schedc.behaviour.run import check_sandbox
from schedc.cli import main as schedc_main
from schedc.settings import (
    EnvironmentProblem,
    Settings,
    host_choice,
    host_kernel_problem,
    kernel_matrix,
    kernel_name,
    load_settings,
)
from tests.conftest import MATRIX, ROOT, skip_or_fail

ROOT_UID = 0


def fake_sysfs(root: Path, btf: Path, state: str = "disabled") -> Path:
    """What a sched_ext host shows: /sys/kernel/sched_ext/state, /sys/fs/bpf and its BTF."""
    (root / "kernel" / "sched_ext").mkdir(parents=True)
    (root / "kernel" / "sched_ext" / "state").write_text(f"{state}\n")
    (root / "fs" / "bpf").mkdir(parents=True)
    (root / "kernel" / "btf").mkdir()
    shutil.copyfile(btf, root / "kernel" / "btf" / "vmlinux")
    return root


def where(matrix: list[Settings]) -> list[tuple[str | None, str | None, bool]]:
    """What makes each kernel of a matrix: its bzImage, its BTF, whether it is the host."""
    return [(k.kernel, k.btf, k.on_host) for k in matrix]


@pytest.fixture
def kits(settings: Settings) -> Settings:
    """The settings with the configured kits as the matrix (their bpftool is >= 7.2)."""
    if not MATRIX or not settings.btf or not settings.bpftool:
        skip_or_fail("no sandbox kit is configured: run scripts/setup.sh --kit KIT")
    return settings.with_overrides(kernels=MATRIX, host="auto")


@pytest.fixture
def sysfs(tmp_path: Path, kits: Settings) -> Path:
    return fake_sysfs(tmp_path / "sys", Path(kits.btf or ""))


def test_a_qualifying_host_is_one_more_kernel(kits: Settings, sysfs: Path) -> None:
    before = kernel_matrix(kits.with_overrides(host="no"), attach=False)
    matrix = kernel_matrix(kits, attach=False, sysfs=sysfs, euid=ROOT_UID)
    assert where(matrix[:-1]) == where(before) and len(matrix) == len(before) + 1
    host = matrix[-1]
    assert host.on_host and host.kernel is None and host.kernels == ()
    assert host.btf == str(sysfs / "kernel" / "btf" / "vmlinux")
    assert kernel_name(host) == os.uname().release
    assert not any(k.on_host for k in before)


def test_with_no_sandbox_kernel_the_host_is_the_whole_matrix(kits: Settings, sysfs: Path) -> None:
    bare = Settings(bpftool=kits.bpftool, host="auto")
    [host] = kernel_matrix(bare, attach=False, sysfs=sysfs, euid=ROOT_UID)
    assert host.on_host


def test_runs_that_attach_take_the_host_only_when_asked(kits: Settings, sysfs: Path) -> None:
    choice = host_choice(kits, attach=True, sysfs=sysfs, euid=ROOT_UID)
    assert choice.entry is None and choice.reason is not None and 'host = "yes"' in choice.reason
    asked = kits.with_overrides(host="yes")
    assert kernel_matrix(asked, attach=True, sysfs=sysfs, euid=ROOT_UID)[-1].on_host
    (sysfs / "kernel" / "sched_ext" / "state").write_text("enabled\n")
    with pytest.raises(EnvironmentProblem, match="already attached") as caught:
        kernel_matrix(asked, attach=True, sysfs=sysfs, euid=ROOT_UID)
    assert "--host-kernel" in caught.value.remedy
    # loading only (verify) does not mind an attached scheduler
    assert kernel_matrix(asked, attach=False, sysfs=sysfs, euid=ROOT_UID)[-1].on_host


def test_no_means_never(kits: Settings, sysfs: Path) -> None:
    never = kits.with_overrides(host="no")
    assert host_choice(never, attach=False, sysfs=sysfs, euid=ROOT_UID).reason is None
    assert not any(k.on_host for k in kernel_matrix(never, attach=False, sysfs=sysfs, euid=0))


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        ("no-sched-ext", "has no sched_ext"),
        ("not-root", "needs root"),
        ("no-bpffs", "BPF file system) is not mounted"),
        ("btf-without-sched-ext", "has no 'struct sched_ext_ops'"),
        ("old-bpftool", "too old for sched_ext objects"),
    ],
)
def test_each_reason_keeps_the_host_out_or_stops_a_yes(
    kits: Settings, sysfs: Path, tmp_path: Path, spoil: str, why: str
) -> None:
    euid = ROOT_UID
    settings = kits
    if spoil == "no-sched-ext":
        shutil.rmtree(sysfs / "kernel" / "sched_ext")
    elif spoil == "not-root":
        euid = 1000
    elif spoil == "no-bpffs":
        (sysfs / "fs" / "bpf").rmdir()
    elif spoil == "btf-without-sched-ext":
        (sysfs / "kernel" / "btf" / "vmlinux").write_bytes(b"\x9f\xeb\x01\0 no such struct")
    else:
        old = tmp_path / "bpftool"
        old.write_text("#!/bin/sh\necho 'bpftool v7.1.0'\n")
        old.chmod(0o755)
        settings = kits.with_overrides(bpftool=str(old))
    assert why in (host_kernel_problem(settings, sysfs=sysfs, euid=euid) or "")
    choice = host_choice(settings, attach=False, sysfs=sysfs, euid=euid)
    assert choice.entry is None and why in (choice.reason or "")
    assert where(kernel_matrix(settings, attach=False, sysfs=sysfs, euid=euid)) == where(
        kernel_matrix(settings.with_overrides(host="no"), attach=False)
    )
    with pytest.raises(EnvironmentProblem, match=re.escape(why)) as caught:
        kernel_matrix(settings.with_overrides(host="yes"), attach=False, sysfs=sysfs, euid=euid)
    assert "host = yes (from option)" in caught.value.message


def test_on_this_host_the_matrix_is_the_kits(kits: Settings) -> None:
    trouble = host_kernel_problem(kits)
    if trouble is None:
        pytest.skip("this host can load sched_ext objects itself: it would join the matrix")
    assert where(kernel_matrix(kits, attach=False)) == where(
        kernel_matrix(kits.with_overrides(host="no"), attach=False)
    )
    assert [k.kernel for k in kernel_matrix(kits, attach=False)] == [
        str(Path(m) / "bzImage") for m in MATRIX
    ]
    assert host_choice(kits, attach=False).reason == trouble


def test_the_setting_from_config_environment_and_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDC_CONFIG", str(tmp_path / "schedc.toml"))
    monkeypatch.delenv("SCHEDC_HOST", raising=False)
    assert load_settings().host == "auto"
    (tmp_path / "schedc.toml").write_text('[schedc]\nhost = "no"\n')
    assert (load_settings().host, load_settings().sources["host"]) == (
        "no",
        str(tmp_path / "schedc.toml"),
    )
    monkeypatch.setenv("SCHEDC_HOST", "yes")
    assert load_settings().host == "yes"
    assert load_settings(host="auto").host == "auto"
    monkeypatch.setenv("SCHEDC_HOST", "sometimes")
    with pytest.raises(EnvironmentProblem, match="'host' \\(from SCHEDC_HOST\\) must be one of"):
        load_settings()
    with pytest.raises(EnvironmentProblem, match="from option"):
        Settings().with_overrides(host="maybe")


def test_scenario_tests_refuse_the_host(kits: Settings, sysfs: Path) -> None:
    host = kernel_matrix(kits.with_overrides(host="yes"), attach=True, sysfs=sysfs, euid=0)[-1]
    with pytest.raises(EnvironmentProblem, match="sandbox guest only"):
        check_sandbox(host)


# --- through the command line, on this host (no sched_ext): nothing is loaded -----------------

BAD = 'scheduler bad "x" {\n  class a when task.nice > 0\n  queue q for a fifo\n}\n'


def _no_sched_ext_here(kits: Settings) -> str:
    trouble = host_kernel_problem(kits)
    if trouble is None:
        pytest.skip("this host has sched_ext: the command line would include it")
    return trouble


def test_verify_says_why_the_host_was_left_out(
    kits: Settings, toolchain: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A policy that does not compile: nothing boots, and the output still says where it
    would have loaded. Asked for auto, one line on stderr and the reason in the JSON."""
    trouble = _no_sched_ext_here(kits)
    bad = tmp_path / "bad.sched"
    bad.write_text(BAD)
    assert schedc_main(["verify", str(bad), "--host-kernel", "auto", "--format", "json"]) == 1
    out, err = capsys.readouterr()
    host = json.loads(out)["host"]
    assert host == {"setting": "auto", "included": False, "kernel": None, "reason": trouble}
    assert err.count("this host's kernel is not in the matrix") == 1, err
    # not asked: the JSON still says, the human output stays quiet about it
    assert schedc_main(["verify", str(bad), "--host-kernel", "no"]) == 1
    assert "not in the matrix" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["verify", "bench", "test"])
def test_host_yes_on_this_host_stops_before_compiling(
    kits: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    trouble = _no_sched_ext_here(kits)
    bad = tmp_path / "bad.sched"
    bad.write_text(BAD)
    extra = {
        "verify": [],
        "bench": ["--workload", "hackbench"],
        "test": ["--scenario", str(ROOT / "examples" / "fifo.scenario.toml")],
    }[command]
    assert schedc_main([command, str(bad), *extra, "--host-kernel", "yes"]) == 2
    err = capsys.readouterr().err
    assert "host = yes (from option)" in err and trouble in err, err
    assert "compiling" not in err


def test_verify_policies_with_host_yes_stops_before_compiling(
    kits: Settings, tmp_path: Path
) -> None:
    """The library entry point (MCP verify_policy) refuses as the command line does."""
    from schedc.compiler.pipeline import verify_policies  # noqa: PLC0415

    trouble = _no_sched_ext_here(kits)
    with pytest.raises(EnvironmentProblem, match=re.escape(trouble)):
        verify_policies([tmp_path / "never-read.sched"], kits.with_overrides(host="yes"))
