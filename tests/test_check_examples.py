"""`schedc check` must not cry wolf: every example policy is spotless (no errors, no warnings),
and the kernel's own example schedulers (tools/sched_ext of linux-source-6.12) have no errors.

The kernel examples are a test input, not part of this project: point SCHEDC_KERNEL_EXAMPLES at
a folder made by `scripts/fetch-kernel-examples.sh DEST` (CI does).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from schedc.compiler.pipeline import check_file, translate
from schedc.diagnostics import Diagnostic, Severity, render_human
from schedc.verifier.checks import check_c, map_to_dsl
from tests.conftest import (
    EXAMPLES,
    KERNEL_EXAMPLES_REMEDY,
    ROOT,
    kernel_examples_dir,
    skip_or_fail,
)

KERNEL_SCHEDULERS = ("scx_simple", "scx_qmap", "scx_central", "scx_flatcg")
TARGETS = ("6.12", "6.13", "6.17")


def kernel_examples() -> Path:
    found = kernel_examples_dir()
    if found is None:
        skip_or_fail(KERNEL_EXAMPLES_REMEDY)
        raise AssertionError("unreachable")
    return found


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_policies_are_spotless(settings, toolchain, example: Path, target: str):
    result = check_file(example, settings, toolchain=lambda: toolchain, target_kernel=target)
    assert result.diagnostics == [], render_human(result.diagnostics)


@pytest.mark.parametrize("name", KERNEL_SCHEDULERS)
def test_kernel_example_schedulers_have_no_errors(toolchain, name: str):
    folder = kernel_examples()
    include = [folder / "include", folder / "include" / "bpf-compat"]
    if toolchain.libbpf_include is None:
        skip_or_fail("the kernel examples include <bpf/bpf_helpers.h>: set SCHEDC_LIBBPF_INCLUDE")
    diags = check_c(folder / f"{name}.bpf.c", toolchain, include, "6.12")
    errors = [d for d in diags if d.severity is Severity.ERROR]
    assert errors == [], render_human(errors)


def test_kernel_examples_on_a_kernel_without_the_old_names(toolchain):
    """The same schedulers call scx_bpf_dispatch() and friends directly: on 6.17 that is an
    error, and the message says what to call instead."""
    folder = kernel_examples()
    include = [folder / "include", folder / "include" / "bpf-compat"]
    diags = check_c(folder / "scx_simple.bpf.c", toolchain, include, "6.17")
    assert {d.code for d in diags} == {"K050"}
    assert any("scx_bpf_dsq_insert()" in d.message for d in diags)


def test_findings_in_generated_c_move_to_the_dsl_line(tmp_path: Path):
    """Through the generator's #line directives: a C line inside the code of `class long when
    ...` (ljf.sched line 9) is reported on line 9 of the policy."""
    source = ROOT / "examples" / "ljf.sched"
    c_path = tmp_path / "ljf.bpf.c"
    c_text = translate(source, c_name=str(c_path)).c_text
    assert c_text is not None
    lines = c_text.splitlines()
    directive = lines.index(f'#line 9 "{source}"')
    inside = Diagnostic(Severity.ERROR, "K041", "x", str(c_path), directive + 2, 3, directive + 2, 9)
    header = Diagnostic(Severity.WARNING, "K071", "y", str(c_path), 3, 1, 3, 2)
    moved, kept = map_to_dsl([inside, header], c_path, c_text, source)
    assert (moved.file, moved.line, moved.column) == (str(source), 9, None)
    assert kept.file == str(source) and kept.line is None
    assert f"{c_path}:3" in (kept.hint or "")


def test_the_dsl_warning_replaces_the_same_finding_on_generated_c(settings, toolchain, tmp_path):
    policy = tmp_path / "strict.sched"
    policy.write_text(
        'scheduler strict "strict priority" {\n'
        "  class fast when task.avg_runtime < 5ms\n"
        "  class slow otherwise\n"
        "  queue fast_q for fast fifo\n"
        "  queue slow_q for slow fifo\n"
        "  dispatch fast_q then slow_q\n"
        "}\n"
    )
    result = check_file(policy, settings, toolchain=lambda: toolchain)
    assert [(d.code, d.line) for d in result.diagnostics] == [("W005", 6)]
