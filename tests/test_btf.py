"""schedc/verifier/btf.py reads the kits' real vmlinux.btf: its kfuncs, ops members and SCX_*
enums agree with what bpftool (an independent BTF reader) prints, and a kit built with an old
pahole (long prototypes of implicit-argument kfuncs) is refused with the reason."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from schedc.settings import EnvironmentProblem, Settings, cache_root, kit_settings
from schedc.verifier.btf import (
    FUNC,
    FUNC_PROTO,
    SCX_PREFIXES,
    BtfError,
    facts_of,
    kernel_facts,
    read_btf,
)
from tests.conftest import MATRIX, MATRIX_REMEDY, skip_or_fail


def kit(settings: Settings, release: str) -> Settings:
    """The matrix kit of one kernel release (6.12 / 7.2), with its BTF and bpftool."""
    from schedc.settings import kernel_release  # noqa: PLC0415

    for entry in MATRIX:
        found = kit_settings(settings, entry, "test")
        if (kernel_release(Path(found.kernel or "")) or "").startswith(release + "."):
            if found.btf and found.bpftool:
                return found
    skip_or_fail(f"no {release} kit in the kernel matrix: {MATRIX_REMEDY}")
    raise AssertionError("unreachable")


def bpftool_funcs(tool: str, btf: str) -> dict[str, int]:
    """FUNC name -> its FUNC_PROTO's parameter count, as bpftool prints them."""
    out = subprocess.run(
        [tool, "btf", "dump", "file", btf], capture_output=True, text=True, check=True
    ).stdout
    protos: dict[str, int] = {}
    for m in re.finditer(
        r"^\[(\d+)\] FUNC_PROTO '\(anon\)' ret_type_id=\d+ vlen=(\d+)$", out, re.M
    ):
        protos[m.group(1)] = int(m.group(2))
    funcs = {}
    for m in re.finditer(r"^\[\d+\] FUNC '([^']+)' type_id=(\d+)", out, re.M):
        funcs[m.group(1)] = protos[m.group(2)]
    return funcs


@pytest.mark.parametrize("release", ["6.12", "7.2"])
def test_kfuncs_agree_with_bpftool(settings: Settings, release: str) -> None:
    found = kit(settings, release)
    assert found.btf is not None and found.bpftool is not None
    facts = facts_of(read_btf(Path(found.btf).read_bytes()))
    theirs = bpftool_funcs(found.bpftool, found.btf)
    scx = {n: c for n, c in theirs.items() if n.startswith(SCX_PREFIXES)}
    ours = {n: len(p.params) for n, p in facts.kfuncs.items() if n.startswith(SCX_PREFIXES)}
    assert ours == scx
    assert len(scx) > 30


def test_what_differs_from_6_12_to_7_2(settings: Settings) -> None:
    old = kernel_facts(Path(kit(settings, "6.12").btf or ""), cache_root(settings))
    new = kernel_facts(Path(kit(settings, "7.2").btf or ""), cache_root(settings))
    # the dispatch kfuncs under their 6.13 names only
    assert old.has_kfunc("scx_bpf_dispatch") and not new.has_kfunc("scx_bpf_dispatch")
    assert new.has_kfunc("scx_bpf_dsq_insert") and not old.has_kfunc("scx_bpf_dsq_insert")
    # an implicit-argument kfunc: the short prototype for BPF programs, the long one beside it
    create = "s32 scx_bpf_create_dsq(u64 dsq_id, s32 node)"
    assert old.kfuncs["scx_bpf_create_dsq"].text("scx_bpf_create_dsq") == create
    assert new.kfuncs["scx_bpf_create_dsq"].text("scx_bpf_create_dsq") == create
    impl = new.kfuncs["scx_bpf_create_dsq_impl"]
    assert [n for n, _ in impl.params] == ["dsq_id", "node", "aux"]
    assert impl.params[2][1] == "const struct bpf_prog_aux *"
    # prototypes as C spells them
    assert old.kfuncs["scx_bpf_select_cpu_dfl"].text("f") == (
        "s32 f(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle)"
    )
    # ops structs and their members
    assert set(old.ops) == {"sched_ext_ops"}
    assert set(new.ops) == {"sched_ext_ops", "sched_ext_ops_cid"}
    assert "cgroup_set_bandwidth" in new.ops["sched_ext_ops"]
    assert "cgroup_set_bandwidth" not in old.ops["sched_ext_ops"]
    assert "select_cid" in new.ops["sched_ext_ops_cid"]
    # ops flags: 7.x adds some and dropped SCX_OPS_HAS_CGROUP_WEIGHT
    assert old.ops_flags_mask == 0xF | 1 << 16
    assert new.ops_flags["SCX_OPS_ALLOW_QUEUED_WAKEUP"] == 1 << 5
    assert "SCX_OPS_HAS_CGROUP_WEIGHT" not in new.ops_flags
    assert not new.ops_flags_mask & 1 << 16
    # enum values that differ between the kernels (docs: SCX_ENQ_HEAD)
    assert old.enums["SCX_ENQ_HEAD"] == 0x10
    assert new.enums["SCX_ENQ_HEAD"] != old.enums["SCX_ENQ_HEAD"]
    assert (old.tagged, new.tagged) == (False, True)


def test_facts_are_cached_by_the_files_hash(settings: Settings, tmp_path: Path) -> None:
    btf = Path(kit(settings, "6.12").btf or "")
    first = kernel_facts(btf, tmp_path)
    stored = list((tmp_path / "btf").glob("*.json"))
    assert len(stored) == 1 and not list((tmp_path / "btf").glob("*.tmp"))
    assert kernel_facts(btf, tmp_path) == first
    # a damaged cache file is parsed again, not believed
    stored[0].write_text('{"format": 1, "btf_hash": "x"}', encoding="utf-8")
    assert kernel_facts(btf, tmp_path) == first


def _with_long_create_dsq(data: bytes) -> bytes:
    """The BTF with scx_bpf_create_dsq's FUNC pointing at scx_bpf_create_dsq_impl's prototype
    (dsq_id, node, aux): what a kernel built with pahole < 1.26 has."""
    btf = read_btf(data)
    funcs = {t.name: t for t in btf.types if t is not None and t.kind == FUNC}
    short, impl = funcs["scx_bpf_create_dsq"], funcs["scx_bpf_create_dsq_impl"]
    proto = btf.get(impl.size_or_type)
    assert proto is not None and proto.kind == FUNC_PROTO and len(proto.params) == 3
    out = bytearray(data)
    struct.pack_into("<I", out, short.at + 8, impl.size_or_type)
    return bytes(out)


def test_a_kit_with_long_implicit_argument_prototypes_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    good = Path(kit(settings, "7.2").btf or "")
    broken = tmp_path / "vmlinux.btf"
    broken.write_bytes(_with_long_create_dsq(good.read_bytes()))
    cache = tmp_path / "cache"
    with pytest.raises(EnvironmentProblem) as caught:
        kernel_facts(broken, cache)
    problem = caught.value
    assert "scx_bpf_create_dsq" in problem.message
    assert "aux" in problem.message and "incompatible with vmlinux" in problem.message
    assert "pahole >= 1.26" in problem.remedy
    assert not list(cache.rglob("*.tmp"))
    # the good file of the same kernel is fine
    assert kernel_facts(good, cache_root(settings)).has_kfunc("scx_bpf_create_dsq_impl")


def test_not_btf_is_a_clear_problem(tmp_path: Path) -> None:
    junk = tmp_path / "vmlinux.btf"
    junk.write_bytes(b"\x7fELF" + bytes(100))
    with pytest.raises(EnvironmentProblem, match="not a raw BTF file"):
        kernel_facts(junk, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    with pytest.raises(BtfError, match="too short"):
        read_btf(b"\x9f\xeb")
    cut = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 1000, 1000, 10)
    with pytest.raises(BtfError, match="past the end"):
        read_btf(cut)
