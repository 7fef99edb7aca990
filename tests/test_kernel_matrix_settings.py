"""The kernel matrix as a setting: kits from the config file, the environment and options, and
each kit's tools in place of the base settings' (no boot here; tests/test_matrix.py boots)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedc.settings import (
    EnvironmentProblem,
    as_environment,
    config_warnings,
    kernel_matrix,
    kernel_name,
    kernel_release,
    load_settings,
)


def fake_bzimage(path: Path, release: str) -> Path:
    """A file with a bzImage setup header whose version string says `release`."""
    data = bytearray(0x1000)
    data[0x202:0x206] = b"HdrS"
    text = f"{release} (builder@host) #1 SMP".encode() + b"\0"
    data[0x20E:0x210] = (0x400 - 0x200).to_bytes(2, "little")
    data[0x400 : 0x400 + len(text)] = text
    path.write_bytes(bytes(data))
    return path


def kit(root: Path, release: str) -> Path:
    root.mkdir()
    fake_bzimage(root / "bzImage", release)
    (root / "vmlinux.btf").write_bytes(b"\0sched_ext_ops\0")
    (root / "bpftool").write_text("#!/bin/sh\n")
    (root / "include" / "bpf").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "lib" / "libbpf.so.1.8.0").write_bytes(b"\x7fELF" + b"\0" * 12)
    (root / "lib" / "libbpf.so.1.7.0").write_text("a link turned into text")
    return root


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHEDC_CONFIG", str(tmp_path / "schedc.toml"))
    for name in ("SCHEDC_KERNELS", "SCHEDC_KERNEL", "SCHEDC_BTF", "SCHEDC_BPFTOOL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_release_from_the_setup_header(tmp_path: Path) -> None:
    assert kernel_release(fake_bzimage(tmp_path / "bz", "7.2.13")) == "7.2.13"
    (tmp_path / "text").write_text("not a kernel")
    assert kernel_release(tmp_path / "text") is None
    assert kernel_release(tmp_path / "missing") is None


def test_each_kit_replaces_the_kernel_and_its_tools(isolated: Path) -> None:
    a, b = kit(isolated / "a", "6.12.117"), kit(isolated / "b", "7.2.13")
    (isolated / "schedc.toml").write_text(
        f'[schedc]\nbtf = "/base.btf"\nclang = "clang-19"\nkernels = ["{a}", "{b}"]\n'
    )
    settings = load_settings()
    assert settings.kernels == (str(a), str(b))
    first, second = kernel_matrix(settings, attach=False)
    assert [kernel_name(s) for s in (first, second)] == ["6.12.117", "7.2.13"]
    assert second.kernel == str(b / "bzImage") and second.btf == str(b / "vmlinux.btf")
    assert second.bpftool == str(b / "bpftool") and second.libbpf_include == str(b / "include")
    assert second.libbpf == str(b / "lib" / "libbpf.so.1.8.0")  # the ELF, not the text file
    assert second.clang == "clang-19"  # what a kit does not hold stays
    assert "kernels in" in second.sources["btf"]


def test_environment_and_options_give_the_list_too(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = kit(isolated / "a", "6.12.1"), kit(isolated / "b", "7.2.1")
    monkeypatch.setenv("SCHEDC_KERNELS", f"{b}:{a}")
    settings = load_settings()
    assert [kernel_name(s) for s in kernel_matrix(settings, attach=False)] == ["7.2.1", "6.12.1"]
    assert as_environment(settings)["SCHEDC_KERNELS"] == f"{b}:{a}"  # for a child process
    only = load_settings(kernels=[str(a)])
    assert [kernel_name(s) for s in kernel_matrix(only, attach=False)] == ["6.12.1"]


def test_no_matrix_is_the_base_settings(isolated: Path) -> None:
    settings = load_settings(kernel="/some/bzImage")
    assert kernel_matrix(settings, attach=False) == [settings]


def test_a_bad_entry_is_an_environment_problem_with_a_remedy(isolated: Path) -> None:
    (isolated / "empty").mkdir()
    settings = load_settings(kernels=[str(isolated / "empty")])
    with pytest.raises(EnvironmentProblem) as err:
        kernel_matrix(settings, attach=False)
    assert "neither a kit folder" in err.value.message and "SCHEDC_KERNELS" in err.value.remedy
    (isolated / "schedc.toml").write_text("[schedc]\nkernels = [1, 2]\n")
    with pytest.raises(EnvironmentProblem, match="must be a list of kit folders"):
        load_settings()


def test_a_single_kernel_given_as_explicitly_replaces_the_matrix(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = kit(isolated / "a", "6.12.1"), kit(isolated / "b", "7.2.1")
    (isolated / "schedc.toml").write_text(
        f'[schedc]\nkernel = "{a}/bzImage"\nkernels = ["{a}", "{b}"]\n'
    )
    assert len(kernel_matrix(load_settings(), attach=False)) == 2  # one file says both: the matrix
    mine = fake_bzimage(isolated / "mine", "6.18.0")
    monkeypatch.setenv("SCHEDC_KERNEL", str(mine))
    assert [s.kernel for s in kernel_matrix(load_settings(), attach=False)] == [str(mine)]
    monkeypatch.setenv("SCHEDC_KERNELS", str(b))  # as explicit, elsewhere: the single one
    assert [s.kernel for s in kernel_matrix(load_settings(), attach=False)] == [str(mine)]
    # --kernel (an option) is more explicit than SCHEDC_KERNEL
    option = load_settings(kernels=[str(a), str(b)])
    assert [kernel_name(s) for s in kernel_matrix(option, attach=False)] == ["6.12.1", "7.2.1"]


def test_each_kit_gives_its_own_kernel_config(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = kit(isolated / "a", "6.12.117"), kit(isolated / "b", "7.2.13")
    (a / "kernel.config").write_text("CONFIG_HZ=250\n")
    (b / "kernel.config").write_text("CONFIG_HZ=1000\n")
    (isolated / "schedc.toml").write_text(f'[schedc]\nkernels = ["{a}", "{b}"]\n')
    first, second = kernel_matrix(load_settings(), attach=False)
    assert first.kconfig == str(a / "kernel.config")
    assert second.kconfig == str(b / "kernel.config")
    assert as_environment(second)["SCHEDC_KCONFIG"] == str(b / "kernel.config")
    # Without kits: the kconfig key of schedc.toml (relative to its folder), or SCHEDC_KCONFIG.
    monkeypatch.delenv("SCHEDC_KCONFIG", raising=False)
    (isolated / "schedc.toml").write_text('[schedc]\nkconfig = "a/kernel.config"\n')
    assert load_settings().kconfig == str(isolated / "a" / "kernel.config")
    assert config_warnings() == []
    monkeypatch.setenv("SCHEDC_KCONFIG", "/elsewhere/.config")
    assert load_settings().kconfig == "/elsewhere/.config"
