"""Targets follow kernels: `schedc check` checks a policy for every kernel in use, each judged
by its own BTF, and a finding for some of them says which. The kernel's own examples of 6.12
and of 7.2 check without errors, each with its own kit as the kernel in use.

Needs both sandbox kits (the kernel matrix); skipped with the remedy (or failed in CI) without.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schedc.compiler.pipeline import check_file
from schedc.compiler.toolchain import Toolchain, load_toolchain
from schedc.diagnostics import Diagnostic, Severity, render_human
from schedc.settings import Settings, cache_root, kernel_matrix, kernel_name
from schedc.verifier.btf import IMPLICIT_SUFFIX, SCX_PREFIXES, KernelFacts
from schedc.verifier.checks import check_c, kernel_targets
from schedc.verifier.rules.kernel import KFUNCS, Context, Target, allows, checked_version
from tests.conftest import (
    KERNEL_EXAMPLES_REMEDY,
    MATRIX,
    MATRIX_REMEDY,
    ROOT,
    kernel_examples_dir,
    skip_or_fail,
)
from tests.test_btf import _with_long_create_dsq

INCLUDE = ROOT / "tests" / "data" / "check" / "include"
DIAGNOSTIC_FIELDS = {
    "severity",
    "code",
    "message",
    "file",
    "line",
    "column",
    "end_line",
    "end_column",
    "hint",
}


def kit_folder(release: str) -> Path:
    for entry in MATRIX:
        bz = Path(entry) / "bzImage"
        if bz.is_file() and kernel_name(Settings(kernel=str(bz))).startswith(release + "."):
            return Path(entry)
    skip_or_fail(f"no {release} kit in the kernel matrix: {MATRIX_REMEDY}")
    raise AssertionError("unreachable")


def examples(release: str) -> Path:
    if release == "6.12":
        found = kernel_examples_dir()
        if found is None:
            skip_or_fail(KERNEL_EXAMPLES_REMEDY)
            raise AssertionError("unreachable")
        return found
    folder = kit_folder(release) / "sched_ext-examples"
    if not (folder / "scx_simple.bpf.c").is_file():
        skip_or_fail(f"{folder} has no kernel examples (the 7.2 kit ships them)")
    return folder


def schedc_check(
    settings: Settings, kernels: list[Path], *args: str | Path
) -> subprocess.CompletedProcess[str]:
    first = kernels[0]  # compiled (so parsed) with the first kit's BTF and libbpf headers
    env = {
        **os.environ,
        "SCHEDC_KERNELS": os.pathsep.join(str(k) for k in kernels),
        "SCHEDC_BTF": str(first / "vmlinux.btf"),
        "SCHEDC_BPFTOOL": str(first / "bpftool"),
        "SCHEDC_LIBBPF_INCLUDE": str(first / "include"),
        "SCHEDC_CACHE": str(cache_root(settings)),
    }
    return subprocess.run(
        [sys.executable, "-m", "schedc", "check", "--format", "json", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


def findings(proc: subprocess.CompletedProcess[str]) -> list[Diagnostic]:
    payload = json.loads(proc.stdout)
    for d in payload["diagnostics"]:
        assert set(d) == DIAGNOSTIC_FIELDS  # the JSON of one kernel, unchanged
    return [Diagnostic.from_json(d) for d in payload["diagnostics"]]


def errors_of(diags: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diags if d.severity is Severity.ERROR]


@pytest.mark.parametrize("release", ["6.12", "7.2"])
def test_the_kernels_own_examples_check_without_errors(settings: Settings, release: str) -> None:
    """Each version's tools/sched_ext with that version's kit as the kernel in use: the target
    is that kernel (no --target-kernel), judged by its BTF."""
    folder = examples(release)
    files = sorted(folder.glob("*.bpf.c"))
    assert len(files) >= 4
    proc = schedc_check(
        settings,
        [kit_folder(release)],
        *files,
        "-I",
        folder / "include",
        "-I",
        folder / "include" / "bpf-compat",
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    diags = findings(proc)
    assert errors_of(diags) == [], render_human(errors_of(diags))
    assert not any("[Linux" in d.message for d in diags)  # one target: nothing to say


def test_a_finding_for_one_kernel_says_which(settings: Settings) -> None:
    """6.12's scx_simple calls scx_bpf_dispatch() and friends: fine on 6.12, gone on 7.2."""
    folder = examples("6.12")
    both = [kit_folder("6.12"), kit_folder("7.2")]
    inc = ["-I", folder / "include", "-I", folder / "include" / "bpf-compat"]
    proc = schedc_check(settings, both, folder / "scx_simple.bpf.c", *inc)
    assert proc.returncode == 1, proc.stderr
    errors = errors_of(findings(proc))
    assert {d.code for d in errors} == {"K050"}
    assert all(d.message.endswith("[Linux 7.2.13]") for d in errors), render_human(errors)
    assert any(
        "scx_bpf_dispatch()" in d.message and "scx_bpf_dsq_insert" in d.message for d in errors
    )
    # --target-kernel says otherwise: that version only, from the tables
    proc = schedc_check(
        settings, both, folder / "scx_simple.bpf.c", *inc, "--target-kernel", "6.12"
    )
    assert proc.returncode == 0, proc.stdout


def matrix_targets(settings: Settings) -> tuple[Target, ...]:
    if len(MATRIX) < 2:
        skip_or_fail(MATRIX_REMEDY)
    targets = kernel_targets(settings.with_overrides(kernels=MATRIX))
    assert [t.name.rsplit(".", 1)[0] for t in targets][:2] == ["6.12", "7.2"]
    return targets


def toolchain_of(settings: Settings, release: str) -> Toolchain:
    for kit in kernel_matrix(settings.with_overrides(kernels=MATRIX), attach=False):
        if kernel_name(kit).startswith(release + "."):
            return load_toolchain(kit)
    skip_or_fail(MATRIX_REMEDY)
    raise AssertionError("unreachable")


def test_7_2_qmap_for_both_kernels_fails_only_on_6_12(settings: Settings) -> None:
    """Parsed with 7.2's vmlinux.h (it needs 7.2's types), checked for 6.12 and 7.2: every
    error is for 6.12 only (no struct sched_ext_ops_cid there, no cid kfuncs)."""
    targets = matrix_targets(settings)
    folder = examples("7.2")
    inc = [folder / "include", folder / "include" / "bpf-compat"]
    diags = check_c(folder / "scx_qmap.bpf.c", toolchain_of(settings, "7.2"), inc, targets)
    errors = errors_of(diags)
    old = targets[0].name
    assert all(d.message.endswith(f"[Linux {old}]") for d in errors), render_human(errors)
    by_code = {d.code: d for d in errors}
    assert "sched_ext_ops_cid" in by_code["K003"].message
    # its cid kfuncs (7.x) are not in 6.12's BTF, and 6.12 has no scx_bpf_reenqueue_local
    # callable from a timer
    assert "scx_bpf_nr_cids()" in by_code["K050"].message
    assert set(by_code) == {"K003", "K020", "K050"}


def test_ops_flags_come_from_each_kernels_btf(settings: Settings, tmp_path: Path) -> None:
    """SCX_OPS_HAS_CGROUP_WEIGHT exists in 6.12 and is gone from 7.2's enum scx_ops_flags."""
    targets = matrix_targets(settings)
    policy = tmp_path / "weights.bpf.c"
    policy.write_text(
        '#include "check_test.h"\n'
        'char _license[] SEC("license") = "GPL";\n'
        's32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)\n'
        "{\n"
        "\tschedc_insert((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);\n"
        "\treturn 0;\n"
        "}\n"
        'SEC(".struct_ops.link") struct sched_ext_ops t_ops = {\n'
        '\t.enqueue = (void *)t_enqueue, .name = "t",\n'
        "\t.flags = SCX_OPS_HAS_CGROUP_WEIGHT,\n"
        "};\n",
        encoding="utf-8",
    )
    diags = check_c(policy, toolchain_of(settings, "6.12"), [INCLUDE], targets)
    assert [(d.code, d.line) for d in diags] == [("K005", 10)], render_human(diags)
    assert "SCX_OPS_HAS_CGROUP_WEIGHT" in diags[0].message
    assert diags[0].message.endswith(f"[Linux {targets[1].name}]")
    # the tables alone (a version, no BTF) know the flag from 6.12 on
    assert check_c(policy, toolchain_of(settings, "6.12"), [INCLUDE], "7.2") == []


def test_a_branch_a_kernel_does_not_take_is_not_judged_for_it(
    settings: Settings, tmp_path: Path
) -> None:
    """As 7.x's compat header calls scx_bpf_reenqueue_local: the 6.19 kfunc (callable from
    anywhere) when the kernel has it, else the old one (ops.cpu_release only). From
    ops.enqueue that is wrong only on a kernel without the new one: 6.12."""
    targets = matrix_targets(settings)
    policy = tmp_path / "reenq.bpf.c"
    policy.write_text(
        '#include "check_test.h"\n'
        'char _license[] SEC("license") = "GPL";\n'
        "#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!sym), "
        '"weak"); !!sym; })\n'
        "u32 scx_bpf_reenqueue_local___v1(void) __ksym __weak;\n"
        "void scx_bpf_reenqueue_local___v2___compat(void) __ksym __weak;\n"
        "static inline bool from_anywhere(void)\n"
        "{\n"
        "\treturn bpf_ksym_exists(scx_bpf_reenqueue_local___v2___compat);\n"
        "}\n"
        "static inline void reenqueue(void)\n"
        "{\n"
        "\tif (from_anywhere())\n"
        "\t\tscx_bpf_reenqueue_local___v2___compat();\n"
        "\telse\n"
        "\t\tscx_bpf_reenqueue_local___v1();\n"
        "}\n"
        's32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)\n'
        "{\n"
        "\treenqueue();\n"
        "\tschedc_insert((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);\n"
        "\treturn 0;\n"
        "}\n"
        'TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");\n',
        encoding="utf-8",
    )
    diags = check_c(policy, toolchain_of(settings, "6.12"), [INCLUDE], targets)
    assert [(d.code, d.line) for d in diags] == [("K020", 15)], render_human(diags)
    assert diags[0].message.endswith(f"[Linux {targets[0].name}]")


def test_the_kfunc_table_agrees_with_both_kits_btf(settings: Settings) -> None:
    """What the table says about names (6.13 renames, 6.17 removals) is what the BTF of a
    6.12 and a 7.2 kernel show."""
    old, new = (t.facts for t in matrix_targets(settings)[:2])
    assert old is not None and new is not None
    for name, kfunc in KFUNCS.items():
        on_old, on_new = old.has_kfunc(name), new.has_kfunc(name)
        assert (on_old, on_new) == ((6, 12) in kfunc.seen_in, (7, 2) in kfunc.seen_in), name
        if kfunc.removed is not None:
            assert on_old and not on_new, name
        elif kfunc.since > (6, 12):
            assert on_new and not on_old, name


def sched_ext_kfuncs(facts: KernelFacts) -> set[str]:
    """The sched_ext kfuncs a BPF program may call: not the `foo_impl` beside a `foo` (the
    kernel's long form of a kfunc with an implicit argument)."""
    names = {n for n in facts.kfuncs if n.startswith(SCX_PREFIXES)}
    return {n for n in names if not (n.endswith(IMPLICIT_SUFFIX) and n[:-5] in names)}


@pytest.mark.parametrize("index", [0, 1])
def test_the_context_table_covers_every_sched_ext_kfunc_of_each_kit(
    settings: Settings, index: int
) -> None:
    """Every sched_ext kfunc of a kit's BTF is in the callback→kfunc table (K020/K021) of the
    kernel source it is judged by, and nothing else is: a kit of a newer kernel with a kfunc
    the table lacks fails here, naming it, until the table is checked against its source."""
    target = matrix_targets(settings)[index]
    assert target.facts is not None
    version = checked_version(target.version)
    known = {name for name, kfunc in KFUNCS.items() if version in kfunc.seen_in}
    in_btf = sched_ext_kfuncs(target.facts)
    assert len(in_btf) >= 38
    assert sorted(in_btf - known) == [], f"Linux {target.name}: kfuncs the table lacks"
    assert sorted(known - in_btf) == [], f"Linux {target.name}: kfuncs its BTF lacks"


def test_contexts_follow_the_kernel_version() -> None:
    """Where 6.12 and 7.2 differ (checked against their ext.c): 7.2's verifier lets
    ops.enqueue and unlocked callbacks pick a CPU with scx_bpf_select_cpu_dfl(), and keeps
    scx_bpf_create_dsq() to unlocked callbacks; 6.13-7.1 are judged by 6.12's table."""

    def at(name: str, version: tuple[int, int]) -> Context:
        context = KFUNCS[name].context(version)
        assert context is not None, (name, version)
        return context

    dfl, create = "scx_bpf_select_cpu_dfl", "scx_bpf_create_dsq"
    assert not allows(at(dfl, (6, 12)).allowed, "enqueue", (6, 12))
    assert allows(at(dfl, (7, 2)).allowed, "enqueue", (7, 2))
    assert allows(at(dfl, (7, 2)).allowed, "init", (7, 2))
    assert not allows(at(dfl, (7, 2)).allowed, "tick", (7, 2))
    assert not allows(at(dfl, (7, 0)).allowed, "enqueue", (7, 0))
    assert at(dfl, (7, 2)).at_load and not at(dfl, (6, 12)).at_load
    assert at(create, (6, 12)).sleepable and at(create, (7, 2)).sleepable
    assert allows(at(create, (6, 12)).allowed, "dump", (6, 12))
    assert allows(at(create, (7, 2)).allowed, "dump", (7, 2))  # unlocked, not sleepable
    assert not allows(at(create, (7, 2)).allowed, "enable", (7, 2))
    # 7.2's cid-form callbacks allow what the cpu-form ones at their offsets allow
    insert = at("scx_bpf_dsq_insert", (7, 2)).allowed
    assert allows(insert, "select_cid", (7, 2)) and not allows(insert, "set_cmask", (7, 2))
    assert allows(at(create, (7, 2)).allowed, "cid_online", (7, 2))
    # a kfunc newer than the table a target uses is not judged there (scx calls 7.x's
    # __scx_bpf_select_cpu_and() from ops.enqueue under a bpf_ksym_exists() test)
    assert KFUNCS["__scx_bpf_select_cpu_and"].context((6, 12)) is None
    assert KFUNCS["__scx_bpf_select_cpu_and"].context((7, 0)) is None
    # a 6.13 name is judged on 6.13 as 6.12 judged its old name
    move = KFUNCS["scx_bpf_dsq_move_to_local"]
    assert move.seen_in == ((7, 2),)
    assert move.context((6, 13)) == KFUNCS["scx_bpf_consume"].context((6, 12))


def test_pipeline_options_take_targets(settings: Settings, toolchain: Toolchain) -> None:
    folder = examples("6.12")
    inc = [folder / "include", folder / "include" / "bpf-compat"]
    targets = matrix_targets(settings)
    one = check_file(folder / "scx_simple.bpf.c", settings, toolchain=toolchain, include_dirs=inc)
    assert errors_of(one.diagnostics) == []
    both = check_file(
        folder / "scx_simple.bpf.c",
        settings,
        toolchain=toolchain,
        include_dirs=inc,
        targets=targets,
    )
    assert {d.code for d in errors_of(both.diagnostics)} == {"K050"}


def test_a_broken_kit_stops_check_with_the_reason(settings: Settings, tmp_path: Path) -> None:
    good = kit_folder("7.2")
    broken = tmp_path / "kit-7.2-old-pahole"
    broken.mkdir()
    for name in ("bzImage", "bpftool", "include", "lib"):
        (broken / name).symlink_to(good / name)
    (broken / "vmlinux.btf").write_bytes(_with_long_create_dsq((good / "vmlinux.btf").read_bytes()))
    policy = ROOT / "examples" / "fifo.sched"
    if not policy.is_file():
        policy = sorted((ROOT / "examples").glob("*.sched"))[0]
    proc = schedc_check(settings, [broken], policy)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "pahole >= 1.26" in proc.stdout + proc.stderr
    assert "scx_bpf_create_dsq" in proc.stdout + proc.stderr


def test_a_kfunc_prototype_is_judged_by_each_kernels_btf(settings: Settings) -> None:
    """scx_bpf_create_dsq() declared with three parameters: both kernels have two, and 7.2
    also has the long form with the implicit `aux` (the hint says so there only). Each
    finding shows the declared prototype and the kernel's."""
    targets = matrix_targets(settings)
    policy = ROOT / "tests" / "data" / "check" / "K052_wrong_count.bpf.c"
    diags = check_c(policy, toolchain_of(settings, "7.2"), [INCLUDE], targets)
    by_kernel = {d.message.rsplit("[Linux ", 1)[-1].rstrip("]"): d for d in diags}
    assert {d.code for d in diags} == {"K052"}, render_human(diags)
    assert set(by_kernel) == {targets[0].name, targets[1].name}, render_human(diags)
    for name, d in by_kernel.items():
        assert d.line == 15
        assert "declared `s32 scx_bpf_create_dsq(u64 dsq_id, s32 node, void *aux)`" in d.message
        assert f"Linux {name}'s BTF has `s32 scx_bpf_create_dsq(u64 dsq_id, s32 node)`" in (
            d.message
        )
        assert "3 parameter(s) where the kernel has 2" in d.message
        assert "incompatible with vmlinux" in d.message
    assert "KF_IMPLICIT_ARGS" in by_kernel[targets[1].name].hint
    assert "KF_IMPLICIT_ARGS" not in by_kernel[targets[0].name].hint
