"""schedc fills the scx enum values an object reads from .rodata (`__SCX_<X>`, scx's
enums.autogen.bpf.h) with each kernel's `SCX_<X>`, as scx's own loader does (VM-free).

The objects are real: compiled by clang (a small one here, and the 7.2 kernel's own scx_simple
against its kit's BTF and headers). The slots and the written bytes are checked against
binutils' readelf and llvm-objcopy (ELF readers that are not ours), the values against the
kits' BTF as bpftool prints it; objects without such symbols stay byte-identical."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from schedc.compiler.pipeline import compile_policy
from schedc.compiler.toolchain import Toolchain
from schedc.diagnostics import Severity
from schedc.settings import EnvironmentProblem, Settings, find_clang
from schedc.verifier.sandbox import LoadReport, object_for_kernel
from schedc.verifier.scx_enums import ElfError, enum_slots, fill_enums
from schedc.verifier.verify import apply_report, enum_diagnostic
from tests.conftest import EXAMPLES, skip_or_fail
from tests.test_btf import kit

SMALL = r"""
typedef unsigned long long u64;
typedef unsigned int u32;
const volatile u64 __SCX_DSQ_LOCAL __attribute__((weak));
const volatile u64 __SCX_SLICE_DFL __attribute__((weak));
const volatile u64 __SCX_TASK_CURSOR __attribute__((weak));
const volatile u64 __SCX_NO_SUCH_CONSTANT __attribute__((weak));
const volatile u32 __SCX_ENQ_WAKEUP __attribute__((weak));   /* 4 bytes: not a slot */
u64 __SCX_DSQ_GLOBAL = 5;                                    /* .data: not a slot */
const volatile u64 other_setting = 7;                        /* not __SCX_ */
char _license[] __attribute__((section("license"), used)) = "GPL";
u64 use(void) { return __SCX_DSQ_LOCAL + __SCX_SLICE_DFL + __SCX_TASK_CURSOR
    + __SCX_NO_SUCH_CONSTANT + __SCX_ENQ_WAKEUP + __SCX_DSQ_GLOBAL + other_setting; }
"""


def elf_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(f"llvm-{name}")
    if found is None:
        skip_or_fail(f"{name} is not installed (apt-get install binutils llvm)")
        raise AssertionError("unreachable")
    return found


def readelf_symbols(obj: Path) -> dict[str, tuple[int, int, str]]:
    """name -> (value, size, section name), as readelf prints the symbol table."""
    tool = elf_tool("readelf")
    text = subprocess.run(
        [tool, "--wide", "-S", "-s", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    sections = {
        m.group(1): m.group(2) for m in re.finditer(r"^\s*\[\s*(\d+)\]\s+(\S+)", text, re.M)
    }
    symbols = {}
    for m in re.finditer(
        r"^\s*\d+: ([0-9a-f]+)\s+(\d+)\s+OBJECT\s+\w+\s+\w+\s+(\d+)\s+(\S+)$", text, re.M
    ):
        symbols[m.group(4)] = (int(m.group(1), 16), int(m.group(2)), sections[m.group(3)])
    return symbols


def section_bytes(obj: Path, section: str, tmp: Path) -> bytes:
    """A section's bytes as llvm-objcopy extracts them."""
    out = tmp / f"dump{section}"
    tool = shutil.which("llvm-objcopy") or shutil.which("llvm-objcopy-19")
    if tool is None:
        skip_or_fail("llvm-objcopy is not installed (apt-get install llvm)")
    subprocess.run([str(tool), f"--dump-section={section}={out}", str(obj)], check=True)
    return out.read_bytes()


def slot_value(obj: Path, symbol: str, tmp: Path) -> int:
    value, size, section = readelf_symbols(obj)[symbol]
    data = section_bytes(obj, section, tmp)
    return int.from_bytes(data[value : value + size], "little")


@pytest.fixture(scope="module")
def small(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("scx-enums")
    (build / "small.bpf.c").write_text(SMALL)
    obj = build / "small.bpf.o"
    subprocess.run(
        [find_clang(settings), "-target", "bpf", "-O2", "-g", "-c", str(build / "small.bpf.c")]
        + ["-o", str(obj)],
        check=True,
    )
    return obj


def test_slots_are_the_8_byte_rodata_symbols_readelf_sees(small: Path) -> None:
    symbols = readelf_symbols(small)
    expected = {
        name[2:]
        for name, (_value, size, section) in symbols.items()
        if name.startswith("__SCX_") and size == 8 and section.startswith(".rodata")
    }
    assert expected == {"SCX_DSQ_LOCAL", "SCX_SLICE_DFL", "SCX_TASK_CURSOR", "SCX_NO_SUCH_CONSTANT"}
    slots = enum_slots(small.read_bytes())
    assert {s.name for s in slots} == expected
    assert symbols["__SCX_ENQ_WAKEUP"][1] == 4 and symbols["__SCX_DSQ_GLOBAL"][2] == ".data"


def test_fill_writes_each_value_where_the_symbol_is(small: Path, tmp_path: Path) -> None:
    values = {
        "SCX_DSQ_LOCAL": (1 << 63) | 2,
        "SCX_SLICE_DFL": 20_000_000,
        "SCX_TASK_CURSOR": -(1 << 31),
    }
    values |= {"SCX_ENQ_WAKEUP": 1, "SCX_DSQ_GLOBAL": 9}  # no slot for these: not written
    data, fill = fill_enums(small.read_bytes(), values)
    patched = tmp_path / "small.bpf.o"
    patched.write_bytes(data)
    assert slot_value(patched, "__SCX_DSQ_LOCAL", tmp_path) == (1 << 63) | 2
    assert slot_value(patched, "__SCX_SLICE_DFL", tmp_path) == 20_000_000
    # A negative enumerator becomes the u64 C makes of it (scx's loader sign-extends it).
    assert slot_value(patched, "__SCX_TASK_CURSOR", tmp_path) == (1 << 64) - (1 << 31)
    assert slot_value(patched, "__SCX_NO_SUCH_CONSTANT", tmp_path) == 0
    assert slot_value(patched, "__SCX_ENQ_WAKEUP", tmp_path) == 0
    assert slot_value(patched, "__SCX_DSQ_GLOBAL", tmp_path) == 5
    assert slot_value(patched, "other_setting", tmp_path) == 7
    assert fill.missing == ("SCX_NO_SUCH_CONSTANT",)
    assert set(fill.filled) == {"SCX_DSQ_LOCAL", "SCX_SLICE_DFL", "SCX_TASK_CURSOR"}
    # Only the slots' bytes changed: every other byte of the file is the same.
    original = small.read_bytes()
    changed = [i for i, (a, b) in enumerate(zip(original, data, strict=True)) if a != b]
    rodata = {s.offset + i for s in enum_slots(original) for i in range(8)}
    assert changed and set(changed) <= rodata


def test_damaged_objects_are_refused_with_elf_error(small: Path) -> None:
    data = small.read_bytes()
    with pytest.raises(ElfError, match="not an ELF file"):
        enum_slots(b"#!/bin/sh\n" + data)
    for cut in range(0, len(data), max(1, len(data) // 200)):
        try:
            slots = enum_slots(data[:cut])
        except ElfError:
            continue
        assert all(s.offset + 8 <= cut for s in slots)  # never a slot past the end
    bad_header = bytearray(data)
    bad_header[0x28:0x30] = (len(data) * 4).to_bytes(8, "little")  # e_shoff past the end
    with pytest.raises(ElfError, match="past the end"):
        enum_slots(bytes(bad_header))


def test_objects_without_slots_are_copied_byte_identical(
    settings: Settings, toolchain: Toolchain, tmp_path: Path
) -> None:
    result = compile_policy(EXAMPLES[0], settings, out=tmp_path / "dsl.bpf.o", toolchain=toolchain)
    assert result.ok and result.object_path is not None
    copy = tmp_path / "copy.bpf.o"
    assert object_for_kernel(result.object_path, copy, settings) is None
    assert copy.read_bytes() == result.object_path.read_bytes()
    junk = tmp_path / "junk.bpf.o"
    junk.write_bytes(b"not an object")
    assert object_for_kernel(junk, copy, settings) is None  # libbpf says what is wrong with it
    assert copy.read_bytes() == b"not an object"


def test_without_a_btf_the_values_stay_and_a_warning_says_so(small: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.bpf.o"
    fill = object_for_kernel(small, copy, Settings(btf=str(tmp_path / "gone.btf")))
    assert fill is not None and fill.problem and "does not exist" in fill.problem
    assert copy.read_bytes() == small.read_bytes()
    finding = enum_diagnostic(fill, "small.bpf.c")
    assert finding.severity is Severity.WARNING and finding.code == "V007"


def bpftool_enum_values(tool: str, btf: str) -> dict[str, int]:
    """Every SCX_* enumerator of a BTF file, as bpftool prints it (an independent reader)."""
    out = subprocess.run(
        [tool, "btf", "dump", "file", btf], capture_output=True, text=True, check=True
    ).stdout
    values: dict[str, int] = {}
    for m in re.finditer(r"^\t'(SCX_\w+)' val=(-?\d+)(?:U?LL)?$", out, re.M):
        values.setdefault(m.group(1), int(m.group(2)))
    return values


@pytest.fixture(scope="module")
def simple_72(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7.2's own scx_simple, compiled against its kit's BTF and libbpf headers."""
    k = kit(settings, "7.2")
    examples = Path(k.kernel or "").parent / "sched_ext-examples"
    if not (examples / "scx_simple.bpf.c").is_file():
        skip_or_fail(f"the 7.2 kit has no sched_ext-examples/ ({examples})")
    inc = examples / "include"
    out = tmp_path_factory.mktemp("simple72") / "scx_simple.bpf.o"
    result = compile_policy(
        examples / "scx_simple.bpf.c", k, out=out, include_dirs=[inc, inc / "bpf-compat"]
    )
    assert result.ok and result.object_path is not None, result.diagnostics
    return result.object_path


def test_7_2_scx_simple_gets_each_kernel_s_own_values(
    settings: Settings, simple_72: Path, tmp_path: Path
) -> None:
    """Every __SCX_ symbol of the kernel's scx_simple is filled with that kernel's value, as
    bpftool reads it from the kit's BTF; compiled as it is, SCX_DSQ_LOCAL would be 0 — DSQ 0,
    which scx_simple creates itself, hence the kernel's 'DSQ 0 already had FIFO-enqueued
    tasks'."""
    names = {n[2:] for n in readelf_symbols(simple_72) if n.startswith("__SCX_")}
    assert {"SCX_DSQ_LOCAL", "SCX_SLICE_DFL", "SCX_DSQ_GLOBAL"} <= names
    assert slot_value(simple_72, "__SCX_DSQ_LOCAL", tmp_path) == 0  # as compiled
    fills = {}
    for release in ("6.12", "7.2"):
        k = kit(settings, release)
        assert k.btf and k.bpftool
        copy = tmp_path / release / "scx_simple.bpf.o"
        copy.parent.mkdir()
        fill = object_for_kernel(simple_72, copy, k)
        assert fill is not None and fill.problem is None
        truth = bpftool_enum_values(k.bpftool, k.btf)
        assert set(fill.filled) | set(fill.missing) == names
        assert set(fill.missing) == names - set(truth)
        for name in names:
            want = truth.get(name, 0) % (1 << 64)
            assert slot_value(copy, f"__{name}", tmp_path) == want, (release, name)
        assert slot_value(copy, "__SCX_DSQ_LOCAL", tmp_path) == (1 << 63) | 2
        fills[release] = fill
    # The kernels differ: 6.12 lacks constants 7.2 has, so the copies are not the same.
    assert set(fills["6.12"].missing) != set(fills["7.2"].missing)
    note = enum_diagnostic(fills["6.12"], "scx_simple.bpf.c")
    assert note.severity is Severity.NOTE and note.code == "V006"
    assert all(name in note.message for name in fills["6.12"].missing)


def test_a_loaded_report_carries_the_note(
    settings: Settings, simple_72: Path, tmp_path: Path
) -> None:
    k = kit(settings, "7.2")
    fill = object_for_kernel(simple_72, tmp_path / "x.bpf.o", k)
    report = LoadReport("x.bpf.o", True, "", [], None, scx_enums=fill)
    found = apply_report(report, "scx_simple.bpf.c")
    assert [d.code for d in found] == ["V006"]
    assert f"filled {len(fill.filled)} scx enum value(s)" in found[0].message
    not_loaded = LoadReport("x.bpf.o", False, "", [], "stopped", verified=False, scx_enums=fill)
    assert [d.code for d in apply_report(not_loaded, "scx_simple.bpf.c")] == ["V004"]


def test_bench_boots_with_each_kernel_s_values_in_its_copy(
    settings: Settings, simple_72: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`schedc bench` attaches its own copy of each object in the guest: that copy is filled
    too (the boot is faked; what the guest would see is read from the copy it was given)."""
    import schedc.bench.runner as runner  # noqa: PLC0415

    k = kit(settings, "7.2")
    seen: dict[str, int] = {}
    messages: list[str] = []

    def fake_boot(_settings: Settings, outdir: Path, *_args: object, **_kw: object) -> int:
        copy = outdir / "objects" / "0" / simple_72.name
        seen["SCX_DSQ_LOCAL"] = slot_value(copy, "__SCX_DSQ_LOCAL", tmp_path)
        return 0  # wrote nothing: bench then says so

    monkeypatch.setattr(runner, "check_environment", lambda *_a: None)
    monkeypatch.setattr(runner, "boot_guest", fake_boot)
    policy = runner.BenchPolicy("scx_simple", str(simple_72), simple_72)
    with pytest.raises(EnvironmentProblem, match="wrote no results"):
        runner.bench_objects([policy], ["hackbench"], k, progress=messages.append)
    assert seen == {"SCX_DSQ_LOCAL": (1 << 63) | 2}
    assert any(f"{simple_72.name}: filled " in m for m in messages), messages
