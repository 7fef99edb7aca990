"""`schedc verify`: every example verified and run under load in one sandbox boot, a C policy
with a missing NULL check rejected at its line, and a policy that never drains its queue ejected
by the watchdog. Plus the parts that need no VM: log-to-source mapping, hints, mode choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schedc.compiler.pipeline import Source, verify_policies
from schedc.diagnostics import Severity, render_human
from schedc.settings import EnvironmentProblem
from schedc.verifier import verify
from schedc.verifier.sandbox import LoadReport, RunReport
from schedc.verifier.verify import (
    VerifyResult,
    choose_mode,
    hint_for,
    rejection_diagnostic,
    run_diagnostic,
)
from tests.conftest import EXAMPLES, ROOT, needs_sandbox

DATA = ROOT / "tests" / "data" / "verify"
LINK = ROOT / "tests" / "data" / "link"
RUN_SECONDS = 3


# --- without a VM ------------------------------------------------------------------------------

FAILED_LOG = """libbpf: prog 'x_enqueue': BPF program load failed: Permission denied
libbpf: prog 'x_enqueue': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
; class long when task.avg_runtime > 10ms @ examples/ljf.sched:9
5: (85) call bpf_map_lookup_elem#1
; slice long = slice * 2 @ examples/ljf.sched:16
9: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
verification time 40 usec
processed 10 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 1
-- END PROG LOAD LOG --
libbpf: prog 'x_enqueue': failed to load: -13
"""


def test_rejection_points_at_the_last_source_line_before_the_error():
    report = LoadReport(
        "x.bpf.o", False, FAILED_LOG, [], "R0 invalid mem access 'map_value_or_null'"
    )
    diag = rejection_diagnostic(report, "examples/ljf.sched")
    assert (diag.code, diag.file, diag.line) == ("V001", "examples/ljf.sched", 16)
    assert "x_enqueue" in diag.message and "map_value_or_null" in diag.message
    assert "instruction 9" in diag.message
    assert "NULL" in diag.hint


def test_rejection_without_line_info_names_the_policy():
    report = LoadReport(
        "x.bpf.o", False, "Error: failed", [], "extern (func ksym) 'foo': not found in kernel"
    )
    diag = rejection_diagnostic(report, "p.bpf.c")
    assert (diag.file, diag.line) == ("p.bpf.c", None)
    assert "6.13" in diag.hint


SANDBOX_DATA = Path(__file__).resolve().parent / "data" / "sandbox"


@pytest.mark.parametrize(
    ("name", "error", "line", "access"),
    [
        # Logs the 6.12 sandbox kernel wrote for these objects (one boot, 2026-12-02).
        ("oob_index", "R5 unbounded memory access, make sure to bounds check any such access",
         22, "enqueued[cpu]"),
        ("oob_stack", "invalid unbounded variable-offset read from stack R3", 20, "slices[level]"),
    ],
)
def test_an_out_of_bounds_access_gets_a_hint_and_the_column_of_the_access(
    name, error, line, access
):
    source = SANDBOX_DATA / f"{name}.bpf.c"
    log = (SANDBOX_DATA / f"{name}.log").read_text()
    assert error in log.splitlines()  # the captured log holds the kernel's own message
    report = LoadReport(f"{name}.bpf.o", False, log, [], error)
    diag = rejection_diagnostic(report, str(source))
    assert (diag.code, diag.file, diag.line) == ("V001", str(source), line)
    text = source.read_text().splitlines()[line - 1]
    assert (diag.column, diag.end_column) == (
        text.index(access) + 1, text.index(access) + len(access)
    )
    assert text[diag.column - 1 : diag.end_column] == access
    assert "if (i >= N) return" in diag.hint and "i &= N - 1" in diag.hint
    rendered = render_human([diag])
    assert f"{source}:{line}:{diag.column}: error[V001]" in rendered


def test_the_column_is_left_at_1_when_the_file_has_changed(tmp_path):
    source = tmp_path / "oob_index.bpf.c"
    source.write_text("\n" * 21 + "\tsomething[else] = 0;\n")  # not the line the log names
    log = (SANDBOX_DATA / "oob_index.log").read_text()
    report = LoadReport("oob_index.bpf.o", False, log, [], "R5 unbounded memory access, x")
    diag = rejection_diagnostic(report, str(source))
    assert (diag.line, diag.column) == (22, 1) and "bound" in diag.hint


@pytest.mark.parametrize(
    ("message", "word"),
    [
        ("invalid access to map value, value_size=64 off=64 size=8", "if (i >= N)"),
        ("R1 min value is negative, either use unsigned index or do a if (index >=0) check.",
         "signed index"),
        ("R1 max value is outside of the allowed memory range", "if (i >= N)"),
        ("invalid variable-offset write to stack R2 var_off=(0x0; 0x18) size=8", "mask"),
        ("R1 invalid mem access 'map_value_or_null'", "NULL"),
        ("back-edge from insn 10 to 5", "loop"),
        ("BPF program is too large. Processed 1000001 insn", "loop"),
        ("combined stack size of 2 calls is 600. Too large", "512 bytes"),
        ("calling kernel function scx_bpf_foo is not allowed", "callback"),
        ("R2 invalid mem access 'scalar'", "pointer"),
        ("Tracing programs must provide btf_id", 'SEC("fentry/FUNCTION")'),
    ],
)
def test_common_rejections_get_a_hint(message, word):
    assert word in (hint_for(message) or "")


def test_run_reports_become_diagnostics():
    common = dict(seconds=3, workload="spin", samples=12, ops="x", kernel_log="")
    fine = RunReport(
        attached=True,
        attach_error=None,
        enabled_throughout=True,
        exit_reason=None,
        exit_message=None,
        **common,
    )
    assert run_diagnostic(fine, "p") is None
    stalled = RunReport(
        attached=True,
        attach_error=None,
        enabled_throughout=False,
        exit_reason="runnable task stall",
        exit_message="x[1] failed to run for 1s",
        **common,
    )
    diag = run_diagnostic(stalled, "p")
    assert diag.code == "V003" and "stall" in diag.message and "ops.dispatch" in diag.hint
    unattached = RunReport(
        attached=False,
        attach_error="Invalid argument",
        enabled_throughout=False,
        exit_reason=None,
        exit_message=None,
        **common,
    )
    assert run_diagnostic(unattached, "p").code == "V002"


def test_modes_are_the_host_the_kits_or_the_matrix(settings):
    assert [choose_mode(m) for m in ("auto", "host", "sandbox")] == ["auto", "host", "sandbox"]
    with pytest.raises(ValueError):
        choose_mode("elsewhere")
    # --sandbox leaves the host out whatever `host` says; --host is the host alone.
    assert verify.matrix_of(settings.with_overrides(host="yes"), "sandbox", None) == (
        verify.matrix_of(settings.with_overrides(host="no"), "auto", None)
    )
    [alone] = verify.matrix_of(settings, "host", None)
    assert alone.on_host


def test_host_mode_without_sched_ext_is_an_environment_error(monkeypatch, tmp_path, settings):
    real = verify.host_kernel_problem
    monkeypatch.setattr(
        verify, "host_kernel_problem", lambda s: real(s, sysfs=tmp_path / "missing")
    )
    with pytest.raises(EnvironmentProblem) as err:
        verify_policies([EXAMPLES[0]], settings, mode="host")
    assert "no sched_ext" in err.value.message and "--sandbox" in err.value.remedy


def test_run_is_never_done_on_the_host(monkeypatch, tmp_path, settings):
    monkeypatch.setattr(verify, "host_problem", lambda settings=None: None)
    with pytest.raises(EnvironmentProblem) as err:
        verify_policies([EXAMPLES[0]], settings, mode="host", run_seconds=1)
    assert "only done in the sandbox" in err.value.message
    # nor with the host asked into the matrix: a run test there is refused before compiling
    with pytest.raises(EnvironmentProblem) as err:
        verify_policies([EXAMPLES[0]], settings.with_overrides(host="yes"), run_seconds=1)
    assert "only done in the sandbox" in err.value.message


def test_policy_errors_stop_at_the_compile_stage_without_booting(settings, toolchain, tmp_path):
    bad = tmp_path / "bad.sched"
    bad.write_text('scheduler bad "x" {\n  class a when task.nice > 0\n  queue q for a fifo\n}\n')
    # No sandbox is needed: nothing loadable means no boot (and no EnvironmentProblem).
    [result] = verify_policies(
        [bad], settings.with_overrides(kernel="/nonexistent"), mode="sandbox"
    )
    assert not result.ok and result.stage == "compile"
    assert [d.code for d in result.diagnostics] == ["E141"]


# --- one boot: verify and run -----------------------------------------------------------------


@pytest.fixture(scope="module")
def verified(settings, toolchain) -> dict[str, VerifyResult]:
    needs_sandbox(settings)
    # One example here (the API); tests/test_matrix.py runs every example on every kernel.
    # A policy of two C files (tests/test_link.py), linked and, without its unit, not.
    linked = Source(LINK / "main.bpf.c", link=(LINK / "unit.bpf.c",))
    policies = [EXAMPLES[0], DATA / "null_lookup.bpf.c", DATA / "stall.bpf.c", linked]
    policies.append(LINK / "main.bpf.c")
    messages: list[str] = []
    results = verify_policies(
        policies,
        settings,
        mode="sandbox",
        run_seconds=RUN_SECONDS,
        workload="mixed",
        progress=messages.append,
    )
    assert any("booting" in m for m in messages)
    named = {Path(r.policy).name: r for r in results[:3]}
    return {**named, "linked": results[3], "unlinked": results[4]}


@pytest.mark.vm
def test_example_is_verified_and_stays_enabled_under_load(verified):
    example = EXAMPLES[0]
    result = verified[example.name]
    assert result.ok, result.diagnostics
    assert result.stage == "run"
    assert result.programs and all(p.insns_processed for p in result.programs)
    run = result.run
    assert run.attached and run.enabled_throughout and run.samples >= RUN_SECONDS  # about 4 a second, fewer under load
    assert run.ops == example.stem.replace("tunables_counters", "tunables")
    # Where the guest's time went: the workload ran its seconds (the window is counted in
    # guest uptime), attaching and detaching took some, and the total is their sum.
    phases = run.phases
    assert phases is not None and set(phases) == {"attach", "run", "detach", "total"}, phases
    assert phases["run"] >= RUN_SECONDS and phases["attach"] > 0 and phases["detach"] >= 0
    assert abs(phases["total"] - (phases["attach"] + phases["run"] + phases["detach"])) < 0.05


@pytest.mark.vm
def test_missing_null_check_is_rejected_at_its_line(verified):
    result = verified["null_lookup.bpf.c"]
    assert not result.ok and result.stage == "verifier"
    [diag] = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert diag.code == "V001" and "map_value_or_null" in diag.message
    source = (DATA / "null_lookup.bpf.c").read_text().splitlines()
    assert diag.file == str(DATA / "null_lookup.bpf.c")
    assert source[diag.line - 1].strip() == "*count += 1;"


@pytest.mark.vm
def test_a_queue_that_is_never_drained_is_ejected_by_the_watchdog(verified):
    result = verified["stall.bpf.c"]
    assert not result.ok and result.stage == "run"
    assert result.run.attached and not result.run.enabled_throughout
    assert result.run.exit_reason == "runnable task stall"
    [diag] = result.diagnostics
    assert diag.code == "V003" and "failed to run for" in diag.message


@pytest.mark.vm
def test_a_policy_of_two_linked_units_loads_and_runs(verified):
    result = verified["linked"]
    assert result.ok, result.diagnostics
    assert result.stage == "run" and result.run.enabled_throughout
    assert {p.name for p in result.programs} >= {"linked_enqueue"}
    # The same main file alone has linked_slice() unresolved: libbpf refuses it before the
    # verifier, and says which symbol.
    alone = verified["unlinked"]
    assert not alone.ok and alone.stage == "verifier"
    [diag] = [d for d in alone.diagnostics if d.severity is Severity.ERROR]
    assert diag.code == "V008" and "linked_slice" in diag.message


@pytest.mark.vm
def test_cli_json_shape_and_exit_code(settings, toolchain, tmp_path):
    """The CLI contract, in a boot of its own with one good and one rejected policy."""
    needs_sandbox(settings)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schedc",
            "verify",
            "--sandbox",
            "--format",
            "json",
            "--compare",
            str(EXAMPLES[0]),
            str(DATA / "null_lookup.bpf.c"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == [  # the envelope, then verify's own: --sandbox, no host kernel
        "schedc", "command", "ok", "error", "diagnostics", "results", "host", "compare"
    ]
    assert data["command"] == "verify" and data["ok"] is False and data["error"] is None
    assert data["diagnostics"] == [d for r in data["results"] for d in r["diagnostics"]]
    assert data["host"] == {"setting": "no", "included": False, "kernel": None, "reason": None}
    good, bad = data["results"]
    assert set(good) == {
        "policy", "ok", "stage", "diagnostics", "programs", "run", "kernels", "set"
    }
    assert good["ok"] and good["stage"] == "verifier" and good["run"] is None
    assert good["set"] == {}  # built with the params' defaults (no --set)
    assert set(good["programs"][0]) == {
        "name", "insns_processed", "states", "peak_states", "verification_time_us"
    }
    assert good["programs"][0]["peak_states"] is not None
    # --compare: the good policy's programs, by callback, beside the rejected one's (none)
    first = data["compare"][0]
    assert first["kernel"] == good["kernels"][0]["kernel"]
    sides = {p["a"]["name"]: p for p in first["programs"] if p["a"]}
    assert set(sides) == {p["name"] for p in good["kernels"][0]["programs"]}
    assert all(p["a"]["insns"] == q["insns_processed"] for q in good["kernels"][0]["programs"]
               for p in [sides[q["name"]]])
    assert not bad["ok"] and bad["stage"] == "verifier"
    assert [d["code"] for d in bad["diagnostics"] if d["severity"] == "error"] == ["V001"]
    assert "booting sandbox kernel" in proc.stderr  # progress while the guest works


def test_cli_missing_sandbox_kernel_is_exit_2_with_the_remedy(tmp_path, monkeypatch):
    """No host sched_ext and no sandbox kernel: an environment error, not a policy failure."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), SCHEDC_KERNEL=str(tmp_path / "no-bzImage"))
    proc = subprocess.run(
        [sys.executable, "-m", "schedc", "verify", "--sandbox", str(DATA / "null_lookup.bpf.c")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no-bzImage" in proc.stderr and "does not exist" in proc.stderr
    assert "SCHEDC_KERNEL" in proc.stderr  # the remedy names the setting
    assert "Traceback" not in proc.stderr
