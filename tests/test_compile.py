"""The compile pipeline with real clang: every example to a BPF object, raw C policies, and
what the object holds."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from schedc.compiler.pipeline import compile_policy, default_object_path, translate
from tests.conftest import EXAMPLES


def _sections(obj: Path) -> str:
    readelf = shutil.which("llvm-readelf-19") or shutil.which("llvm-readelf") or shutil.which("readelf")
    assert readelf, "readelf is needed to inspect objects"
    return subprocess.run([readelf, "-S", "-W", str(obj)], capture_output=True, text=True, check=True).stdout


def test_there_are_at_least_ten_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_compiles_to_a_sched_ext_object(example, settings, toolchain, tmp_path):
    out = tmp_path / f"{example.stem}.bpf.o"
    result = compile_policy(example, settings, out=out, toolchain=toolchain)
    assert result.ok, result.diagnostics
    # Examples are the reference policies: no warnings from schedc or clang either.
    assert result.diagnostics == []
    assert result.object_path == out and out.stat().st_size > 0
    sections = _sections(out)
    name = result.policy.name
    assert ".struct_ops.link" in sections
    for callback in ("select_cpu", "enqueue", "dispatch", "exit"):
        assert f"struct_ops/{name}_{callback}" in sections
    # Task-local storage (created in init_task) only when the policy keeps per-task state.
    keeps_state = "schedc_tasks SEC" in result.c_text
    assert (f"struct_ops/{name}_init_task" in sections) == keeps_state
    assert keeps_state == (example.stem not in ("fifo", "vtime_fair"))
    assert f"struct_ops.s/{name}_init" in sections  # create_dsq needs the sleepable init
    assert ".BTF.ext" in sections  # line info for the verifier's source mapping


def test_generated_c_is_deterministic(tmp_path):
    example = EXAMPLES[0]
    first = translate(example, c_name="out.bpf.c").c_text
    second = translate(example, c_name="out.bpf.c").c_text
    assert first == second


def test_compile_writes_the_c_it_was_asked_for(settings, toolchain, tmp_path):
    src = tmp_path / "p.sched"
    src.write_text('scheduler p "x" {\n  class all otherwise\n  queue q for all fifo\n}\n')
    c_out = tmp_path / "gen" / "p.bpf.c"
    result = compile_policy(src, settings, emit_c=c_out, toolchain=toolchain)
    assert result.ok, result.diagnostics
    assert result.c_path == c_out and c_out.read_text() == result.c_text
    assert result.object_path == default_object_path(src) == tmp_path / "p.bpf.o"
    # The C names its own path after DSL-mapped lines, so clang's messages point at real lines.
    assert f'"{c_out}"' in result.c_text


@pytest.mark.parametrize("name", ["c", "policy.txt"])
def test_the_c_is_compiled_as_c_whatever_its_name(settings, toolchain, tmp_path, name):
    # clang takes a file without a C suffix for a linker input ("unused during compilation")
    src = tmp_path / "p.sched"
    src.write_text('scheduler p "x" {\n  class all otherwise\n  queue q for all fifo\n}\n')
    result = compile_policy(src, settings, emit_c=tmp_path / name, toolchain=toolchain)
    assert result.ok, result.diagnostics
    assert result.object_path is not None and result.object_path.stat().st_size > 0


def test_policy_errors_leave_no_object_behind(settings, toolchain, tmp_path):
    src = tmp_path / "bad.sched"
    src.write_text('scheduler bad "x" {\n  class a when task.nice > 0\n  queue q for a fifo\n}\n')
    out = tmp_path / "bad.bpf.o"
    result = compile_policy(src, settings, out=out, toolchain=toolchain)
    assert not result.ok
    assert [d.code for d in result.diagnostics] == ["E141"]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]  # no temporary files either


def test_a_raw_c_policy_compiles_with_the_runtime_header(settings, toolchain, tmp_path):
    src = tmp_path / "hand.bpf.c"
    src.write_text(
        '#include "schedc_runtime.bpf.h"\n'
        'char _license[] SEC("license") = "GPL";\n'
        's32 SEC("struct_ops/hand_enqueue") hand_enqueue(unsigned long long *ctx)\n'
        "{\n"
        "\tstruct task_struct *p = (struct task_struct *)ctx[0];\n"
        "\tschedc_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);\n"
        "\treturn 0;\n"
        "}\n"
        'SEC(".struct_ops.link") struct sched_ext_ops hand_ops = {\n'
        "\t.enqueue = (void *)hand_enqueue,\n"
        '\t.name = "hand",\n'
        "};\n"
    )
    result = compile_policy(src, settings, toolchain=toolchain)
    assert result.ok, result.diagnostics
    assert result.object_path == tmp_path / "hand.bpf.o"
    assert "struct_ops/hand_enqueue" in _sections(result.object_path)


def test_clang_errors_in_raw_c_come_back_as_diagnostics(settings, toolchain, tmp_path):
    src = tmp_path / "broken.bpf.c"
    src.write_text('#include "schedc_runtime.bpf.h"\nint f(void) { return undefined_thing; }\n')
    result = compile_policy(src, settings, toolchain=toolchain)
    assert not result.ok
    err = next(d for d in result.diagnostics if d.code == "C001")
    assert err.file == str(src) and err.line == 2
    assert "undefined_thing" in err.message
    assert not (tmp_path / "broken.bpf.o").exists()


def test_unreadable_and_non_utf8_sources_are_diagnostics(tmp_path):
    missing = translate(tmp_path / "nope.sched")
    assert [d.code for d in missing.diagnostics] == ["E000"]
    binary = tmp_path / "bin.sched"
    binary.write_bytes(b"scheduler x {\n\xff\xfe}\n")
    result = translate(binary)
    assert [(d.code, d.line) for d in result.diagnostics] == [("E000", 2)]


def test_btf_line_info_points_at_the_dsl(settings, toolchain, tmp_path):
    """#line directives put DSL positions into the object's BTF line info, which is what the
    kernel verifier quotes in its log: the class condition shows up with its DSL text."""
    objdump = shutil.which("llvm-objdump-19") or shutil.which("llvm-objdump")
    assert objdump, "llvm-objdump (Debian llvm-19) is needed to read line info"
    example = next(e for e in EXAMPLES if e.stem == "ljf")
    out = tmp_path / "ljf.bpf.o"
    assert compile_policy(example, settings, out=out, toolchain=toolchain).ok
    listing = subprocess.run(
        [objdump, "-S", "--no-show-raw-insn", str(out)], capture_output=True, text=True, check=True
    ).stdout
    condition = example.read_text().splitlines()[8]
    assert condition.startswith("  class long  when")
    assert f"; {condition}" in listing


def test_comment_markers_in_a_description_stay_inside_the_c_comment(settings, toolchain, tmp_path):
    src = tmp_path / "c.sched"
    src.write_text(
        'scheduler c "opens /* and closes */ a comment" {\n'
        "  class all otherwise\n  queue q for all fifo\n  dispatch q\n}\n"
    )
    result = compile_policy(src, settings, out=tmp_path / "c.bpf.o", toolchain=toolchain)
    assert result.ok and result.diagnostics == [], result.diagnostics
