"""A C policy of several files: `--link UNIT.bpf.c` compiles each unit on its own (scanned by
the security rules like the policy itself) and links the objects into one with `bpftool gen
object`. Real clang, bubblewrap and bpftool; the sandbox run is in tests/test_verify.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from schedc.cli import main as cli_main
from schedc.compiler.pipeline import CHECK, Options, Source, compile_policy, run
from schedc.diagnostics import Severity
from schedc.settings import find_bpftool
from tests.conftest import EXAMPLES, ROOT

DATA = ROOT / "tests" / "data" / "link"
MAIN, UNIT = DATA / "main.bpf.c", DATA / "unit.bpf.c"


def _funcs(settings, obj: Path) -> dict[str, str]:
    """The object's BTF functions and their linkage (global, static, extern)."""
    out = subprocess.run(
        [find_bpftool(settings), "btf", "dump", "file", str(obj)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        if "] FUNC '" in line:
            name = line.split("'")[1]
            found[name] = line.rsplit("linkage=", 1)[-1]
    return found


def _errors(outcome) -> list[str]:
    return [d.code for d in outcome.diagnostics if d.severity is Severity.ERROR]


def test_linked_units_make_one_object_with_the_extern_resolved(settings, toolchain, tmp_path):
    out = tmp_path / "linked.bpf.o"
    result = compile_policy(Source(MAIN, link=(UNIT,)), settings, out=out, toolchain=toolchain)
    assert result.ok, result.diagnostics
    assert result.object_path == out
    assert _funcs(settings, out)["linked_slice"] == "global"
    # Without the unit the function stays an extern of the object (what the link resolves).
    alone = compile_policy(MAIN, settings, out=tmp_path / "alone.bpf.o", toolchain=toolchain)
    assert alone.ok and _funcs(settings, tmp_path / "alone.bpf.o")["linked_slice"] == "extern"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.bpf.o", "linked.bpf.o"]


def test_a_symbol_defined_twice_is_a_link_error_and_no_object(settings, toolchain, tmp_path):
    twice = tmp_path / "twice.bpf.c"
    twice.write_text(UNIT.read_text())
    out = tmp_path / "linked.bpf.o"
    result = compile_policy(
        Source(MAIN, link=(UNIT, twice)), settings, out=out, toolchain=toolchain
    )
    [link] = [d for d in result.diagnostics if d.code == "C004"]
    assert link.severity is Severity.ERROR and "linked_slice" in link.message
    assert str(twice) in link.message and ".units" not in link.message  # sources, not temps
    assert link.file == str(MAIN) and link.hint
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twice.bpf.c"]  # nothing left behind


def test_a_unit_is_scanned_like_the_policy_and_nothing_is_compiled(settings, toolchain, tmp_path):
    canary = tmp_path / "canary.h"
    canary.write_text("#error the canary was read\n")
    hostile = tmp_path / "hostile.bpf.c"
    hostile.write_text(f'#include "{canary}"\n' + UNIT.read_text())
    out = tmp_path / "linked.bpf.o"
    result = compile_policy(Source(MAIN, link=(hostile,)), settings, out=out, toolchain=toolchain)
    codes = _errors(result)
    assert "K060" in codes, result.diagnostics
    assert all(d.file == str(hostile) for d in result.diagnostics if d.code == "K060")
    assert not any("the canary was read" in d.message for d in result.diagnostics)
    assert not out.exists()


def test_a_missing_unit_is_a_read_error_at_its_path(settings, toolchain, tmp_path):
    missing = tmp_path / "nowhere.bpf.c"
    result = compile_policy(
        Source(MAIN, link=(missing,)), settings, out=tmp_path / "o.bpf.o", toolchain=toolchain
    )
    [diag] = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert diag.code == "E000" and diag.file == str(missing)


def test_link_needs_a_c_policy(settings, toolchain, tmp_path):
    result = compile_policy(
        Source(EXAMPLES[0], link=(UNIT,)), settings, out=tmp_path / "o.bpf.o", toolchain=toolchain
    )
    [diag] = result.diagnostics
    assert diag.code == "C004" and "C units to a C policy" in diag.message
    assert not (tmp_path / "o.bpf.o").exists()


def test_check_runs_the_rules_on_every_unit(settings, toolchain, tmp_path):
    bad = tmp_path / "bad_unit.bpf.c"
    bad.write_text(
        UNIT.read_text() + "\nu64 linked_loop(u64 n)\n{\n\tu64 i = 0;\n"
        "\twhile (i < n)\n\t\ti++;\n\treturn i;\n}\n"
    )
    options = Options(settings=settings, toolchain=lambda: toolchain, c_folder="check")
    [outcome] = run(CHECK, [Source(MAIN, link=(bad,))], options)
    assert any(d.code == "K040" and d.file == str(bad) for d in outcome.diagnostics)


def test_cli_compile_link(tmp_path, capsys):
    out = tmp_path / "cli.bpf.o"
    rc = cli_main(["compile", str(MAIN), "--link", str(UNIT), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert out.is_file()
