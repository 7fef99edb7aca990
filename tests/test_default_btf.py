"""The embedded minimal BTF (schedc/codegen_templates/default_kernel/, issue 20): what `schedc
compile` uses with no BTF configured and a host kernel without sched_ext.

Checked here, on the host: the fallback picks it (and only when nothing else is set); every
example and random well-typed policies compile against it with no bpftool at all; its records
have the layouts of the kernel they were cut from; its writer reproduces it byte for byte; and
a C policy that needs more of the kernel is told how to give it (C005). That the objects load
on 6.12 and 7.2 is tests/test_vm_generated.py's boot."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from schedc import settings as settings_module
from schedc.compiler.pipeline import check_file, compile_policy
from schedc.compiler.toolchain import load_toolchain
from schedc.settings import (
    DEFAULT_KERNEL_DIR,
    EMBEDDED_BTF,
    Settings,
    find_btf,
    kernel_matrix,
    kernel_name,
    load_settings,
)
from schedc.verifier.btf import FWD, STRUCT, UNION, read_btf
from schedc.verifier.btf_min import c_names, cut, write_btf
from tests.conftest import ROOT, skip_or_fail
from tests.policygen import PolicyGen

EXAMPLES = sorted((ROOT / "examples").glob("*.sched"))
NO_BPFTOOL = "/nonexistent/bpftool"  # would fail the compile if anything ran it


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    cache = tmp_path_factory.mktemp("embedded-cache")
    return load_settings(btf=str(EMBEDDED_BTF), bpftool=NO_BPFTOOL, cache_dir=str(cache))


def test_with_nothing_configured_the_embedded_btf_is_the_default(tmp_path, monkeypatch):
    no_sched_ext = tmp_path / "host-btf"
    no_sched_ext.write_bytes(b"\x9f\xeb\x01\x00 a BTF without the ops struct")
    monkeypatch.setattr(settings_module, "HOST_BTF", no_sched_ext)
    assert find_btf(Settings()) == EMBEDDED_BTF
    mine = tmp_path / "mine.btf"
    mine.write_bytes(EMBEDDED_BTF.read_bytes())
    assert find_btf(Settings(btf=str(mine))) == mine  # a configured one always wins
    with_sched_ext = tmp_path / "sched-ext-host"
    with_sched_ext.write_bytes(b"\x00sched_ext_ops\x00")
    monkeypatch.setattr(settings_module, "HOST_BTF", with_sched_ext)
    assert find_btf(Settings()) == with_sched_ext  # a sched_ext host's own BTF comes first


def test_the_embedded_header_is_used_as_shipped(embedded: Settings):
    tc = load_toolchain(embedded)  # no bpftool: it would fail here
    assert tc.vmlinux_dir == DEFAULT_KERNEL_DIR
    header = (DEFAULT_KERNEL_DIR / "vmlinux.h").read_text(encoding="utf-8")
    assert "struct sched_ext_ops {" in header and "SCX_DSQ_LOCAL" in header
    assert "BPF_F_NO_PREALLOC" in header  # the enum bpftool 7.5's sorted dump loses


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_compiles_against_it_without_bpftool(path: Path, embedded, tmp_path):
    result = compile_policy(path, embedded, out=tmp_path / "out.bpf.o")
    assert result.ok, result.diagnostics
    assert (tmp_path / "out.bpf.o").stat().st_size > 0


def test_random_well_typed_policies_compile_against_it(embedded: Settings, tmp_path: Path):
    """Seeds the script's corpus did not use (it takes 0..39): the cut covers the language,
    not only the policies it was made from."""
    tc = load_toolchain(embedded)
    failed = {}
    for seed in range(5000, 5030):
        src = tmp_path / f"g{seed}.sched"
        src.write_text(PolicyGen(random.Random(seed)).policy(f"g{seed}"), encoding="utf-8")
        result = compile_policy(src, embedded, out=tmp_path / f"g{seed}.bpf.o", toolchain=tc)
        codes = {d.code for d in result.diagnostics}
        if not result.ok and "S900" in codes:  # generated C that the cut cannot compile
            failed[seed] = [d.message for d in result.diagnostics if d.code == "C001"][:3]
    assert failed == {}


def test_a_c_policy_that_needs_more_of_the_kernel_is_told_to_pass_a_btf(embedded, tmp_path):
    src = tmp_path / "needs_mm.bpf.c"
    src.write_text(
        '#include "vmlinux.h"\n'
        'char _license[] __attribute__((section("license"))) = "GPL";\n'
        "int f(struct mm_struct *mm) { return mm->map_count; }\n",
        encoding="utf-8",
    )
    result = compile_policy(src, embedded, out=tmp_path / "needs_mm.bpf.o")
    assert not result.ok
    codes = [d.code for d in result.diagnostics]
    assert "C001" in codes and codes[-1] == "C005", codes
    note = result.diagnostics[-1]
    assert note.hint is not None and "--btf" in note.hint and "SCHEDC_BTF" in note.hint
    checked = check_file(src, embedded)  # the pre-commit hook's command says the same
    assert {"C001", "C005"} <= {d.code for d in checked.diagnostics}


def test_a_c_policy_against_a_full_btf_gets_no_such_note(settings, toolchain, tmp_path):
    src = tmp_path / "broken.bpf.c"
    src.write_text('#include "vmlinux.h"\nint f(void) { return missing; }\n', encoding="utf-8")
    result = compile_policy(src, settings, out=tmp_path / "broken.bpf.o", toolchain=toolchain)
    assert "C005" not in {d.code for d in result.diagnostics}


def test_the_writer_reproduces_the_shipped_btf_byte_for_byte():
    data = EMBEDDED_BTF.read_bytes()
    assert write_btf([t for t in read_btf(data).types if t is not None]) == data


def test_what_is_whole_and_what_is_only_declared():
    btf = read_btf(EMBEDDED_BTF.read_bytes())
    by_name: dict[str, list] = {}
    for t in btf.types[1:]:
        assert t is not None
        by_name.setdefault(t.name, []).append(t)
    whole = {t.name for t in btf.types[1:] if t and t.kind in (STRUCT, UNION) and t.members}
    declared = {t.name for t in btf.types[1:] if t and t.kind == FWD}
    assert {"task_struct", "sched_ext_ops", "sched_ext_entity", "cgroup", "kernfs_node"} <= whole
    assert {"mm_struct", "rq"} <= declared  # reached only through pointers no policy follows
    assert not whole & declared
    ops = next(t for t in by_name["sched_ext_ops"] if t.kind == STRUCT)
    assert {"enqueue", "dispatch", "select_cpu", "running", "name"} <= {m[0] for m in ops.members}
    assert len(EMBEDDED_BTF.read_bytes()) < 100_000


def test_the_records_kept_whole_have_the_kernel_s_layout(settings: Settings):
    """Every whole record of the cut, against the same record of the full 6.12 BTF it was cut
    from: same size, same members at the same offsets (the CO-RE relocations of objects built
    against the cut name these fields)."""
    kits = [k for k in kernel_matrix(settings, attach=False) if k.btf and not k.on_host]
    of_612 = [k for k in kits if kernel_name(k).startswith("6.12.")]
    if not of_612:
        skip_or_fail(
            "no 6.12 kit in the kernel matrix (the embedded BTF is cut from 6.12.117's): "
            "scripts/setup.sh --kit ../shared/sandbox writes one"
        )
        return
    full_path = Path(str(of_612[0].btf))
    full = read_btf(full_path.read_bytes())
    full_records = {
        (t.kind, t.name): t for t in full.types[1:] if t and t.kind in (STRUCT, UNION) and t.name
    }
    compared = 0
    for t in read_btf(EMBEDDED_BTF.read_bytes()).types[1:]:
        if t is None or t.kind not in (STRUCT, UNION) or not t.name:
            continue
        original = full_records[(t.kind, t.name)]
        assert t.size_or_type == original.size_or_type, t.name
        assert [(n, off) for n, _, off in t.members] == [
            (n, off) for n, _, off in original.members
        ], t.name
        compared += 1
    assert compared > 50


def test_a_cut_follows_the_c_it_is_given():
    """The cut of the embedded BTF for a C text that names only `struct cpumask` keeps that
    record whole and declares task_struct only where a kept type points to it."""
    btf = read_btf(EMBEDDED_BTF.read_bytes())
    idents, records = c_names(["int f(struct cpumask *m, u64 x) { return SCX_DSQ_LOCAL; }"])
    assert records == {"cpumask"} and {"u64", "SCX_DSQ_LOCAL"} <= idents
    types = cut(btf, idents, records)
    kinds = {(t.kind, t.name) for t in types}
    assert (STRUCT, "cpumask") in kinds
    assert (STRUCT, "task_struct") not in kinds
    assert any(name == "SCX_DSQ_LOCAL" for t in types for name, _ in t.values)
    again = read_btf(write_btf(types))
    assert [(t.kind, t.name) for t in again.types[1:] if t] == [(t.kind, t.name) for t in types]
