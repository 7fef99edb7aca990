"""The kernel verifier accepts what the compiler emits for any well-typed policy: at least 50
random policies from tests/policygen.py (fixed seeds) are loaded with `bpftool prog loadall` in
one boot of the sandbox kernel, together with the kernel's own example schedulers as a
reference (Debian linux-source-6.12 tools/sched_ext, found through SCHEDC_KERNEL_EXAMPLES;
scripts/fetch-kernel-examples.sh extracts it). Skips with the remedy when there is no sandbox;
fails instead when SCHEDC_REQUIRE_TOOLS is set (CI). The examples themselves are verified and
run in tests/test_verify.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from schedc.compiler.pipeline import compile_policy
from schedc.verifier.sandbox import LoadReport, load_in_sandbox
from tests.conftest import KERNEL_EXAMPLES_REMEDY, kernel_examples_dir, needs_sandbox, skip_or_fail
from tests.policygen import PolicyGen

GENERATED_SEEDS = range(1000, 1060)
KERNEL_EXAMPLES = ("scx_simple", "scx_qmap", "scx_central", "scx_flatcg")


@pytest.fixture(scope="module")
def loaded(settings, toolchain, tmp_path_factory) -> dict[str, LoadReport]:
    needs_sandbox(settings)
    build = tmp_path_factory.mktemp("vm-generated")
    objects: dict[str, Path] = {}
    for seed in GENERATED_SEEDS:
        src = build / f"gen{seed}.sched"
        src.write_text(PolicyGen(random.Random(seed)).policy(name=f"gen{seed}"))
        result = compile_policy(src, settings, out=build / f"gen{seed}.bpf.o", toolchain=toolchain)
        if result.ok:  # a program the front end rejects is outside the sample
            objects[f"gen{seed}"] = result.object_path
    kdir = kernel_examples_dir()
    if kdir is not None and settings.libbpf_include:
        inc = kdir / "include"
        for name in KERNEL_EXAMPLES:
            result = compile_policy(
                kdir / f"{name}.bpf.c", settings, out=build / f"{name}.bpf.o",
                include_dirs=[inc, inc / "bpf-compat"], toolchain=toolchain,
            )
            assert result.ok, (name, result.diagnostics)
            objects[name] = result.object_path
    reports = load_in_sandbox(list(objects.values()), settings)
    return dict(zip(objects, reports, strict=True))


@pytest.mark.vm
def test_kernel_verifier_accepts_at_least_50_generated_policies(loaded):
    generated = {k: r for k, r in loaded.items() if k.startswith("gen")}
    assert len(generated) >= 50
    rejected = {k: r.error for k, r in generated.items() if not r.ok}
    assert rejected == {}
    assert all(r.programs and all(p.insns_processed for p in r.programs) for r in generated.values())


@pytest.mark.vm
@pytest.mark.parametrize("name", KERNEL_EXAMPLES)
def test_kernel_example_scheduler_loads(loaded, name):
    if name not in loaded:
        skip_or_fail(KERNEL_EXAMPLES_REMEDY)
    assert loaded[name].ok, loaded[name].error
