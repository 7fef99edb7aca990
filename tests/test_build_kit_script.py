"""scripts/build-sandbox-kernel.sh without building a kernel: its refusals before anything is
installed or built (a 7.x source with a pahole older than 1.26, mismatched or missing input),
and --check-kit, the check every kit it writes gets, on the real 7.2 kit (accepted) and on a
copy of it whose BTF has the long prototype an old pahole leaves (refused, with the reason)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from schedc.settings import Settings
from tests.conftest import ROOT
from tests.test_btf import _with_long_create_dsq, kit

SCRIPT = ROOT / "scripts" / "build-sandbox-kernel.sh"


def run_script(
    *args: str | Path, path_first: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def source_tree(root: Path, version: int, patchlevel: int) -> Path:
    """A folder whose top Makefile says which release it is: all the script reads up front."""
    tree = root / f"linux-{version}.{patchlevel}"
    tree.mkdir()
    (tree / "Makefile").write_text(
        f"VERSION = {version}\nPATCHLEVEL = {patchlevel}\nSUBLEVEL = 0\n"
    )
    return tree


def fake_pahole(root: Path, version: str) -> Path:
    """A folder with a `pahole` that only prints its version, to put first on PATH."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    pahole = bin_dir / "pahole"
    pahole.write_text(f"#!/bin/sh\necho {version}\n")
    pahole.chmod(0o755)
    return bin_dir


def test_the_script_parses() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0


def test_a_7x_source_with_pahole_1_24_is_refused_up_front(tmp_path: Path) -> None:
    tree = source_tree(tmp_path, 7, 2)
    out = tmp_path / "kit"
    done = run_script("--source", tree, out, path_first=fake_pahole(tmp_path, "v1.24"))
    assert done.returncode == 2, done.stderr
    assert "Linux 7.2 needs pahole >= 1.26" in done.stderr and "v1.24" in done.stderr
    assert "func_proto ... incompatible with vmlinux" in done.stderr
    assert "build pahole >= 1.26 from source" in done.stderr
    assert "== build dependencies" not in done.stdout  # refused before apt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", tree.name]  # nothing written


def test_a_debian_7x_package_without_pahole_is_refused(tmp_path: Path) -> None:
    """--version 7.2 (Debian's linux-source-7.2): refused before apt when no pahole >= 1.26
    is on PATH either, here a pahole that does not answer at all."""
    bin_dir = fake_pahole(tmp_path, "")
    (bin_dir / "pahole").write_text("#!/bin/sh\nexit 1\n")
    done = run_script("--version", "7.2", tmp_path / "kit", path_first=bin_dir)
    assert done.returncode == 2, done.stderr
    assert "Linux 7.2 needs pahole >= 1.26" in done.stderr
    assert "does not print its version" in done.stderr
    assert "== build dependencies" not in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "seven", "{out}"], "--version is X.Y"),
        (["--source", "{tmp}/none.tar.xz", "{out}"], "no kernel source at"),
        (["--source", "{tmp}/bin", "{out}"], "not a kernel source tree"),
        (["--version", "6.12", "--source", "{tree}", "{out}"], "--version 6.12, but"),
        (["--source", "{tree}", "{tmp}"], "exists and is not empty"),
        (["--bogus", "{out}"], "unknown option --bogus"),
        (["--jobs", "2"], "usage:"),
    ],
)
def test_bad_input_is_refused_before_anything_is_done(
    tmp_path: Path, args: list[str], message: str
) -> None:
    tree = source_tree(tmp_path, 7, 2)
    bin_dir = fake_pahole(tmp_path, "v1.31")  # new enough: the other refusals are reached
    given = [a.format(tmp=tmp_path, tree=tree, out=tmp_path / "kit") for a in args]
    done = run_script(*given, path_first=bin_dir)
    assert done.returncode == 2, (given, done.stdout, done.stderr)
    assert message in done.stderr, done.stderr
    assert not (tmp_path / "kit").exists()


def test_check_kit_accepts_the_real_7_2_kit(settings: Settings) -> None:
    found = kit(settings, "7.2")
    folder = Path(found.kernel or "").parent
    done = run_script("--check-kit", folder)
    assert done.returncode == 0, done.stderr
    assert f"kit {folder}: ok" in done.stdout
    assert "with bpf_kfunc tags" in done.stdout and "sched_ext_ops_cid" in done.stdout


def test_check_kit_refuses_a_kit_built_with_an_old_pahole(
    settings: Settings, tmp_path: Path
) -> None:
    """The 7.2 kit with scx_bpf_create_dsq's long prototype (what pahole 1.24 leaves): schedc's
    own broken-kit check (schedc/verifier/btf.py) says why, and the script exits 1."""
    real = Path(kit(settings, "7.2").kernel or "").parent
    broken = tmp_path / "kit"
    broken.mkdir()
    for name in ("bzImage", "bpftool", "include", "lib"):
        (broken / name).symlink_to(real / name)
    (broken / "vmlinux.btf").write_bytes(_with_long_create_dsq((real / "vmlinux.btf").read_bytes()))
    done = run_script("--check-kit", broken)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "scx_bpf_create_dsq" in done.stderr and "incompatible with vmlinux" in done.stderr
    assert "pahole >= 1.26" in done.stderr and "the kit is broken" in done.stderr
    assert "ok" not in done.stdout


def test_check_kit_names_every_missing_file(tmp_path: Path) -> None:
    done = run_script("--check-kit", tmp_path)
    assert done.returncode == 1
    for missing in ("bzImage", "vmlinux.btf", "bpftool", "include/bpf/bpf_helpers.h"):
        assert f"{tmp_path} has no {missing}: not a sandbox kit" in done.stderr, done.stderr
    assert f"{tmp_path} has no lib/libbpf.so.X.Y.Z" in done.stderr
