"""`repo add --run WORKLOAD` without a VM: the stored run record (its `ok` derived, a hand edit
that contradicts it refused, and `fsck` saying so), the record made from a run report, the
options refused before anything is compiled or committed, and MCP submit_policy storing the
run of a verify_policy of the same session. tests/test_repo_add.py runs a real one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from schedc.agent.operations import Context, GetArgs, SubmitArgs, do_get, do_submit
from schedc.diagnostics import Diagnostic, Severity
from schedc.repo import ingest, layout
from schedc.repo.add import AddOptions, add_policy
from schedc.repo.fsck import fsck
from schedc.repo.gitstore import GitStore
from schedc.repo.ingest import RunTest, run_record
from schedc.repo.models import KernelVerification, RunRecord, VerificationSummary
from schedc.verifier.sandbox import ProcessExit, ProgramReport, RunReport
from schedc.verifier.verify import KernelVerdict, VerifyResult
from tests import test_repo_support as support
from tests.conftest import ROOT, needs_sandbox
from tests.test_repo_support import cli, commit_count, git, is_clean

repo_env = support.repo_env
store = support.store  # fixtures

FIFO = ROOT / "examples" / "fifo.sched"


def run_report(*, enabled: bool = True, crashed: int = 0) -> RunReport:
    return RunReport(
        seconds=2.0,
        workload="spin",
        attached=True,
        attach_error=None,
        enabled_throughout=enabled,
        samples=8,
        ops="fifo",
        exit_reason=None if enabled else "runnable task stall",
        exit_message=None if enabled else "watchdog failed to check in for 30 s",
        kernel_log="",
        crashed=[ProcessExit(100 + i, "stress-ng", "SIGSEGV", "crashed") for i in range(crashed)],
    )


def test_the_record_of_a_run_and_its_derived_ok():
    held = run_record(run_report())
    assert held.ok is True and held.failed == [] and held.processes_traced
    ejected = run_record(run_report(enabled=False))
    assert ejected.ok is False and ejected.exit_reason == "runnable task stall"
    crashed = run_record(run_report(crashed=20))
    assert crashed.ok is False and crashed.failed_count == 20 and len(crashed.failed) == 16
    assert crashed.failed[0].signal == "SIGSEGV" and crashed.failed[0].comm == "stress-ng"
    untraced = run_record(RunReport(**{**run_report().__dict__, "crashed": None}))
    assert untraced.ok is True and untraced.processes_traced is False
    data = ejected.model_dump(mode="json")
    for bad in (
        {**data, "ok": True},  # a hand edit that turns a failed run into a passing one
        {**data, "failed_count": -1},
        {**data, "seconds": 0},
        {**data, "workload": "Not A Workload"},
        {**crashed.model_dump(mode="json"), "failed_count": 3},
    ):
        with pytest.raises(ValidationError):
            RunRecord.model_validate(bad)


def test_the_summary_agrees_with_its_runs():
    date = datetime(2026, 12, 1, tzinfo=UTC)
    passing = KernelVerification(kernel="6.12.117", run=run_record(run_report()))
    failing = KernelVerification(kernel="7.2.13", run=run_record(run_report(enabled=False)))
    ok = VerificationSummary(status="verified", stage="run", kernels=[passing], date=date)
    assert ok.run_ok is True
    mixed = VerificationSummary(
        status="verified", stage="verifier", kernels=[passing, failing], date=date
    )
    assert mixed.run_ok is False
    assert VerificationSummary(status="verified", stage="verifier", date=date).run_ok is None
    with pytest.raises(ValidationError, match="a run test failed"):
        VerificationSummary(status="verified", stage="run", kernels=[failing], date=date)
    with pytest.raises(ValidationError, match="held on every kernel"):
        VerificationSummary(status="verified", stage="verifier", kernels=[passing], date=date)
    with pytest.raises(ValidationError, match="unverified"):
        VerificationSummary(status="unverified", stage="check", kernels=[passing], date=date)
    # a record stored before run tests were: no `run` key
    old = KernelVerification.model_validate({"kernel": "6.12.117", "programs": 3})
    assert old.run is None


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--run", "spin", "--unverified"), "cannot go with --unverified"),
        (("--run-seconds", "3"), "--run-seconds needs --run"),
        (("--run", "spin", "--run-seconds", "0"), "--run-seconds takes"),
        (("--run", "nosuchload"), "invalid choice"),
    ],
)
def test_bad_run_options_are_usage_errors_before_anything(store: GitStore, args, said):
    before = commit_count(store.root)
    ran = cli("add", str(FIFO), *args)
    assert ran.code == 2 and said in ran.err, ran.err
    assert commit_count(store.root) == before and is_clean(store.root)


def test_a_run_without_a_sandbox_is_an_environment_error_with_nothing_committed(
    store: GitStore, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("SCHEDC_KERNEL", str(tmp_path / "no-bzImage"))
    monkeypatch.delenv("SCHEDC_KERNELS", raising=False)
    before = commit_count(store.root)
    ran = cli("add", str(FIFO), "--run", "spin", "--format", "json")
    assert ran.code == 2, ran.err
    error = ran.json()["error"]
    assert "no-bzImage" in error["message"] and "cannot be booted" in error["message"]
    assert commit_count(store.root) == before and is_clean(store.root)


def verified_with_a_run(enabled: bool = True) -> VerifyResult:
    """What verify_policy answers for FIFO with run_seconds (as data: its boot is not this
    test's subject)."""
    programs = [
        ProgramReport("fifo_enqueue", 120, 10, 50),
        ProgramReport("fifo_dispatch", 80, 8, 40),
    ]
    run = run_report(enabled=enabled)
    verdict = KernelVerdict("6.12.117", enabled, programs, run, None if enabled else "stall")
    return VerifyResult(
        policy="policy.sched",
        ok=enabled,
        stage="run",
        programs=programs,
        run=run,
        kernels=[verdict],
    )


def test_submit_after_verify_with_a_run_stores_that_run(toolchain, settings, store: GitStore):
    needs_sandbox(settings)  # submit records a verification only where a kernel is at hand
    ctx = Context(store.root, settings)
    ctx.prior_verification = verified_with_a_run().to_json()
    args = SubmitArgs(source=FIFO.read_text(), name="fifo", description="FIFO", verify="auto")
    answer = do_submit(ctx, args)
    assert answer["status"] == "added" and answer["verification_reused"] is True, answer
    assert answer["ok"] is True and answer["run_ok"] is True
    summary = answer["verification"]
    assert summary["stage"] == "run"
    [kernel] = summary["kernels"]
    assert kernel["kernel"] == "6.12.117" and kernel["run"]["workload"] == "spin"
    assert kernel["run"]["ok"] is True and kernel["run"]["seconds"] == 2.0
    shown = do_get(ctx, GetArgs(name="fifo"))
    assert shown["meta"]["verification"]["kernels"][0]["run"]["enabled_throughout"] is True
    human = cli("show", "fifo").out
    assert "run on 6.12.117: 2s under 'spin', stayed enabled, no workload process died" in human
    assert "Schedc-Run: spin passing on 6.12.117" in git(store.root, "log", "-1", "--format=%B")

    # fsck refuses a hand edit that says the kernel ejected it while stage stays 'run'
    meta_path = store.root / layout.policy_file("fifo", layout.META)
    data = json.loads(meta_path.read_text())
    data["verification"]["kernels"][0]["run"]["enabled_throughout"] = False
    meta_path.write_text(json.dumps(data, indent=2) + "\n")
    git(store.root, "commit", "-qam", "hand edit: an ejected run")
    found, _count = fsck(store)
    assert any("ok is true but the run did not hold" in d.message for d in found), found


def test_a_failed_run_is_stored_marked_failed_and_the_add_exits_1(
    toolchain, settings, store, monkeypatch
):
    """The kernel loaded the policy but ejected it under load: like a failed behaviour report,
    the verification is stored with the run marked failed, and the add says so (ok false).
    The verifier's answer is given as data (the boot is tests/test_repo_add.py's)."""
    needs_sandbox(settings)
    failing = verified_with_a_run(enabled=False)
    failing.diagnostics = [Diagnostic(Severity.ERROR, "V003", "ejected (stall)", "policy.sched")]
    monkeypatch.setattr(ingest, "verify_policies", lambda *_a, **_k: [failing])
    before = commit_count(store.root)
    options = AddOptions(verify="always", run_test=RunTest("spin", 2.0))
    result = add_policy(store, FIFO, settings, options)
    assert result.status == "added" and result.ok is False and result.run_ok is False
    assert commit_count(store.root) == before + 1
    assert any(d.code == "V003" for d in result.diagnostics)
    summary = result.meta.verification if result.meta else None
    assert summary is not None and summary.stage == "verifier" and summary.status == "verified"
    assert summary.kernels[0].run is not None and summary.kernels[0].run.ok is False
    human = cli("show", "fifo").out
    assert "FAILED: ejected by the kernel (runnable task stall)" in human
    assert "Schedc-Run: spin failing on 6.12.117" in git(store.root, "log", "-1", "--format=%B")
    assert cli("fsck").code == 0


def test_a_kernel_that_rejects_the_object_still_rejects_the_add(
    toolchain, settings, store, monkeypatch
):
    needs_sandbox(settings)
    rejected = VerifyResult(policy="policy.sched", ok=False, stage="verifier")
    rejected.diagnostics = [Diagnostic(Severity.ERROR, "V001", "rejected", "policy.sched")]
    rejected.kernels = [KernelVerdict("6.12.117", False, [], None, "rejected")]
    monkeypatch.setattr(ingest, "verify_policies", lambda *_a, **_k: [rejected])
    before = commit_count(store.root)
    result = add_policy(
        store, FIFO, settings, AddOptions(verify="always", run_test=RunTest("spin", 2.0))
    )
    assert result.status == "rejected" and not result.ok
    assert commit_count(store.root) == before and is_clean(store.root)
