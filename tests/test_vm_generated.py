"""The kernel verifier accepts what the compiler emits: every example policy, and a fixed-seed
sample of random well-typed policies, are loaded with `bpftool prog loadall` in one boot of the
sandbox kernel (SCHEDC_KERNEL). Skips with the remedy when there is no sandbox; fails instead
when SCHEDC_REQUIRE_TOOLS is set (CI)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from schedc.compiler.pipeline import compile_policy
from schedc.verifier.sandbox import LoadReport, load_in_sandbox, sandbox_problem
from tests.conftest import EXAMPLES, skip_or_fail
from tests.policygen import PolicyGen

GENERATED_SEEDS = range(8)


@pytest.fixture(scope="module")
def verified(settings, toolchain, tmp_path_factory) -> dict[str, tuple[Path, LoadReport]]:
    problem = sandbox_problem(settings)
    if problem:
        skip_or_fail(problem)
    build = tmp_path_factory.mktemp("vm-examples")
    sources: list[Path] = list(EXAMPLES)
    for seed in GENERATED_SEEDS:
        src = build / f"gen{seed}.sched"
        src.write_text(PolicyGen(random.Random(seed)).policy(name=f"gen{seed}"))
        sources.append(src)
    built: dict[str, tuple[Path, Path]] = {}
    for src in sources:
        result = compile_policy(src, settings, out=build / f"{src.stem}.bpf.o", toolchain=toolchain)
        if not result.ok and src.parent == build:
            continue  # a generated program the front end rejects is not in the sample
        assert result.ok, (src, result.diagnostics)
        built[src.stem] = (src, result.object_path)
    reports = load_in_sandbox([obj for _, obj in built.values()], settings)
    return {stem: (src, report) for (stem, (src, _)), report in zip(built.items(), reports, strict=True)}


@pytest.mark.vm
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_kernel_verifier_accepts_example(verified, example):
    _, report = verified[example.stem]
    assert report.ok, report.error
    names = {p.name.rsplit("_", 1)[-1] for p in report.programs}
    assert {"cpu", "enqueue", "dispatch", "task", "init", "exit"} <= names
    assert all(p.insns_processed and p.insns_processed > 0 for p in report.programs)


@pytest.mark.vm
def test_kernel_verifier_accepts_generated_policies(verified):
    generated = {k: v for k, v in verified.items() if k.startswith("gen")}
    assert len(generated) >= 6
    rejected = {k: r.error for k, (_, r) in generated.items() if not r.ok}
    assert rejected == {}
