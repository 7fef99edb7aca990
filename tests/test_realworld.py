"""benchmarks/realworld.py (issue 12): corpus discovery, the verdicts of one kernel, the
false-positive / missed-defect classification and the totals; and one sandbox run of a tiny
corpus (a good scheduler, one the verifier rejects, one the watchdog ejects)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks import realworld
from benchmarks.realworld import (
    EJECTED,
    ENABLED,
    LOADED,
    NOT_REACHED,
    NOT_RUN,
    NOT_STANDALONE,
    REJECTED,
    FileResult,
    KernelOutcome,
    kernel_outcome,
    totals,
)
from schedc.compiler.toolchain import Toolchain, compile_c
from schedc.diagnostics import has_errors, render_human
from schedc.settings import Settings
from schedc.verifier.sandbox import RunReport
from schedc.verifier.verify import KernelVerdict
from tests.conftest import KERNEL_EXAMPLES_REMEDY, kernel_examples_dir, needs_sandbox, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
VERIFY_DATA = ROOT / "tests" / "data" / "verify"


def _run(*, attached: bool = True, enabled: bool = True, reason: str | None = None) -> RunReport:
    return RunReport(
        seconds=2.0,
        workload="stress",
        attached=attached,
        attach_error=None if attached else "-EINVAL",
        enabled_throughout=enabled,
        samples=4,
        ops="x",
        exit_reason=reason,
        exit_message="stuck for 1s" if reason else None,
        kernel_log="",
        crashed=[],
    )


def _verdict(ok: bool, run: RunReport | None = None, error: str | None = None) -> KernelVerdict:
    return KernelVerdict("6.12.117", ok, [], run, error)


def test_kernel_outcome_names_load_and_run_verdicts() -> None:
    ran = kernel_outcome(_verdict(True, _run()))
    assert (ran.load, ran.run) == (LOADED, ENABLED)
    ejected = kernel_outcome(_verdict(False, _run(enabled=False, reason="runnable task stall")))
    assert (ejected.load, ejected.run) == (LOADED, EJECTED)
    assert ejected.run_message == "runnable task stall: stuck for 1s"
    unattached = kernel_outcome(_verdict(False, _run(attached=False)))
    assert unattached.run == EJECTED and "did not attach" in (unattached.run_message or "")
    rejected = kernel_outcome(
        _verdict(False, error="R1 invalid mem access 'map_value_or_null'\n..")
    )
    assert (rejected.load, rejected.run) == (REJECTED, NOT_RUN)
    assert rejected.load_message == "R1 invalid mem access 'map_value_or_null'"
    unreached = kernel_outcome(
        _verdict(False, error="not verified: the guest stopped before this object")
    )
    assert (unreached.load, unreached.run) == (NOT_REACHED, NOT_RUN)
    load_only = kernel_outcome(_verdict(True))
    assert (load_only.load, load_only.run) == (LOADED, NOT_RUN)
    unit = kernel_outcome(_verdict(False, error="failed to find BTF for extern 'nr_cpu_ids' [5]"))
    assert unit.load == NOT_STANDALONE
    no_ops = _run(attached=False)
    no_ops = RunReport(**{**no_ops.__dict__, "attach_error": "Error: no struct_ops found in x"})
    assert kernel_outcome(_verdict(False, no_ops, "Error: no struct_ops found in x")).load == (
        NOT_STANDALONE
    )


def _result(name: str, errors: dict[str, int], *outcomes: KernelOutcome) -> FileResult:
    return FileResult(
        name,
        errors=errors,
        first_error=f"{next(iter(errors))} {name}:3: flagged" if errors else None,
        compiled=bool(outcomes),
        kernels=list(outcomes),
    )


def test_totals_classify_false_positives_and_missed_defects() -> None:
    k = "6.12.117"
    results = [
        _result("fp.bpf.c", {"K020": 1}, KernelOutcome(k, LOADED, None, ENABLED)),
        _result("true.bpf.c", {"K030": 2}, KernelOutcome(k, REJECTED, "invalid", NOT_RUN)),
        _result("good.bpf.c", {}, KernelOutcome(k, LOADED, None, ENABLED)),
        _result("stall.bpf.c", {}, KernelOutcome(k, LOADED, None, EJECTED, "runnable task stall")),
        _result("null.bpf.c", {}, KernelOutcome(k, REJECTED, "R1 invalid mem access", NOT_RUN)),
        _result("lost.bpf.c", {}, KernelOutcome(k, NOT_REACHED, "not verified", NOT_RUN)),
        _result("unit.bpf.c", {}, KernelOutcome(k, NOT_STANDALONE, "failed to find BTF", NOT_RUN)),
        _result("broken.bpf.c", {"C001": 1}),  # did not compile: no kernel verdict
    ]
    (t,) = totals(results, ran=True)
    assert (t.kernel, t.files, t.check_errors, t.compiled, t.loaded, t.ran) == (k, 8, 3, 7, 3, 2)
    assert t.false_positives == ["fp.bpf.c: K020 fp.bpf.c:3: flagged"]
    assert t.missed == [
        "stall.bpf.c: runnable task stall",
        "null.bpf.c: R1 invalid mem access",
    ]
    # Without a run, a check error on an object that loads is already a candidate.
    load_only = [_result("fp.bpf.c", {"K020": 1}, KernelOutcome(k, LOADED))]
    assert len(totals(load_only, ran=False)[0].false_positives) == 1
    assert totals(load_only, ran=True)[0].false_positives == []
    lines = realworld.table(results, ran=True)
    assert "fp.bpf.c: errors K020; warnings -; compiled" in lines
    assert "broken.bpf.c: errors C001; warnings -; not compiled ()" in lines
    assert t.not_standalone == 1
    assert any(line.startswith("kernel 6.12.117: 8 files, 3 with check errors") for line in lines)


def test_totals_are_per_kernel() -> None:
    a, b = "6.12.117", "7.2.13"
    r = _result(
        "x.bpf.c",
        {"K020": 1},
        KernelOutcome(a, LOADED, None, ENABLED),
        KernelOutcome(b, REJECTED, "unknown func", NOT_RUN),
    )
    ta, tb = totals([r], ran=True)
    assert (ta.kernel, len(ta.false_positives), ta.loaded) == (a, 1, 1)
    assert (tb.kernel, tb.false_positives, tb.loaded) == (b, [], 0)


def test_corpus_discovery_is_check_pys(tmp_path: Path) -> None:
    """realworld.py uses check.py's corpus functions: schedulers only, no library or test
    folders, no piece another file includes."""
    (tmp_path / "scheds" / "c").mkdir(parents=True)
    (tmp_path / "scheds" / "c" / "a.bpf.c").write_text('#include "util.bpf.c"\n')
    (tmp_path / "scheds" / "c" / "util.bpf.c").write_text("\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "l.bpf.c").write_text("\n")
    assert realworld.corpus_files(tmp_path) == [tmp_path / "scheds" / "c" / "a.bpf.c"]


def test_a_crash_on_one_file_is_that_files_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.bpf.c").write_text("\n")
    (tmp_path / "b.bpf.c").write_text("\n")

    def boom(path: Path, *args: object) -> tuple[FileResult, Path | None]:
        if path.name == "a.bpf.c":
            raise ValueError("libclang fell over")
        return FileResult("b.bpf.c", compiled=False, compile_codes=["C001"]), None

    monkeypatch.setattr(realworld, "check_and_compile", boom)
    from schedc.settings import load_settings  # noqa: PLC0415

    results = realworld.measure(tmp_path, load_settings(), run_seconds=None)
    assert [r.file for r in results] == ["a.bpf.c", "b.bpf.c"]
    assert "ValueError: libclang fell over" in (results[0].crash or "")
    assert results[1].crash is None
    assert realworld.table(results, ran=False)[0] == "a.bpf.c: CRASH ValueError: libclang fell over"


@pytest.mark.vm
def test_realworld_on_a_tiny_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One boot of one kernel: scx_simple loads and stays enabled, null_lookup is rejected by
    the verifier (check only warns), stall loads and is ejected by the watchdog (check is
    clean): two missed defects, no false positive. 3 s runs: the watchdog needs 1 s of a stuck
    task and up to half that again to notice, once the workload has started."""
    from schedc.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    needs_sandbox(settings)
    examples = kernel_examples_dir()
    if examples is None:
        skip_or_fail(KERNEL_EXAMPLES_REMEDY)
        return
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(examples / "scx_simple.bpf.c", corpus)
    shutil.copytree(examples / "include", corpus / "include")
    for name in ("null_lookup.bpf.c", "stall.bpf.c"):
        shutil.copy(VERIFY_DATA / name, corpus)
    out = tmp_path / "out.json"
    kit = Path(settings.kernels[0]) if settings.kernels else Path(settings.kernel or "")
    monkeypatch.delenv("SCHEDC_KERNELS", raising=False)
    code = realworld.main(
        ["--corpus", str(corpus), "--kernel", str(kit), "--run-seconds", "3", "--json", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    import json  # noqa: PLC0415

    data = json.loads(out.read_text())
    files = {f["file"]: f for f in data["files"]}
    assert sorted(files) == ["null_lookup.bpf.c", "scx_simple.bpf.c", "stall.bpf.c"]
    verdicts = {name: [(k["load"], k["run"]) for k in f["kernels"]] for name, f in files.items()}
    assert verdicts == {
        "null_lookup.bpf.c": [(REJECTED, NOT_RUN)],
        "scx_simple.bpf.c": [(LOADED, ENABLED)],
        "stall.bpf.c": [(LOADED, EJECTED)],
    }
    assert "stall" in (files["stall.bpf.c"]["kernels"][0]["run_message"] or "")
    assert all(f["errors"] == {} and f["compiled"] for f in files.values())
    (t,) = data["totals"]
    assert (t["files"], t["check_errors"], t["compiled"], t["loaded"], t["ran"]) == (3, 0, 3, 2, 1)
    assert t["false_positives"] == []
    assert [m.split(":")[0] for m in t["missed"]] == ["null_lookup.bpf.c", "stall.bpf.c"]
    assert "1 ran, 0 not standalone; 0 false-positive candidates, 2 missed defects" in text


def test_caged_clang_finds_its_builtin_headers(toolchain: Toolchain, tmp_path: Path) -> None:
    """scx's schedulers include <limits.h> (intf.h): in the cage clang must see its own
    builtin headers, which it looks for beside the name it runs as (/usr/lib/clang/N)."""
    source = tmp_path / "limits.bpf.c"
    source.write_text(
        '#include "schedc_runtime.bpf.h"\n#include <limits.h>\n'
        'char _license[] SEC("license") = "GPL";\nint biggest = INT_MAX;\n'
    )
    # glibc's headers want gnu/stubs-32.h for a target that is not x86-64: an empty one, as
    # scx's bpf-compat/gnu/stubs.h is.
    (tmp_path / "compat" / "gnu").mkdir(parents=True)
    (tmp_path / "compat" / "gnu" / "stubs.h").write_text("/* empty */\n")
    multiarch = [d for d in [Path("/usr/include/x86_64-linux-gnu")] if d.is_dir()]
    include = [tmp_path / "compat", *multiarch]
    diags = compile_c(toolchain, source, tmp_path / "limits.bpf.o", include_dirs=include)
    assert not has_errors(diags), render_human(diags)
    assert (tmp_path / "limits.bpf.o").is_file()


def test_checks_parse_with_the_first_kernels_types(tmp_path: Path) -> None:
    """`--kernel KIT` judges by that kit's vmlinux.h, not the configuration's `btf`."""
    kit = tmp_path / "kit"
    (kit / "include" / "bpf").mkdir(parents=True)
    for name in ("bzImage", "vmlinux.btf"):
        (kit / name).write_bytes(b"")
    settings = Settings(btf="/elsewhere/vmlinux.btf").with_overrides(kernels=[str(kit)])
    first = realworld.first_kernels_types(settings)
    assert first.btf == str(kit / "vmlinux.btf")
    assert first.libbpf_include == str(kit / "include")
    assert realworld.first_kernels_types(Settings(btf="/b")).btf == "/b"
