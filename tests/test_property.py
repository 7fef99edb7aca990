"""Property: every policy the front end accepts lowers to C that clang compiles cleanly.

Random well-typed programs come from tests/policygen.py; hypothesis drives its Random, so a
failure shrinks and replays. (The kernel verifier sees a fixed-seed sample of them in
tests/test_vm_generated.py.)
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from schedc.compiler.pipeline import compile_policy, translate
from schedc.diagnostics import Severity
from tests.policygen import PolicyGen


def test_generator_output_is_mostly_accepted(tmp_path):
    accepted = 0
    for seed in range(60):
        src = tmp_path / f"g{seed}.sched"
        src.write_text(PolicyGen(random.Random(seed)).policy())
        result = translate(src)
        errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
        accepted += not errors
    # The generator aims at well-typed programs; rejections are rare corner cases (e.g. a
    # constant slice that folds below the minimum).
    assert accepted >= 50


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rnd=st.randoms(use_true_random=False))
def test_well_typed_programs_compile_with_clang(rnd, settings, toolchain, tmp_path):
    src = tmp_path / "gen.sched"
    src.write_text(PolicyGen(rnd).policy())
    front = translate(src)
    if not front.ok:
        return  # outside the property's domain: the front end rejected it with diagnostics
    result = compile_policy(src, settings, out=tmp_path / "gen.bpf.o", toolchain=toolchain)
    clang = [d for d in result.diagnostics if d.code.startswith(("C", "S"))]
    assert result.ok and clang == [], (src.read_text(), clang)
