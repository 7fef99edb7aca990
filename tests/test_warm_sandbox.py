"""The warm sandbox (schedc.verifier.warm): one guest booted once runs many jobs, each from a
clean state, and is replaced when a job hangs past its deadline. Real guests under TCG."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from schedc.compiler.pipeline import compile_policy, verify_policies
from schedc.settings import set_warm_pool_dir, warm_pool_dir
from schedc.verifier import warm, warm_client
from schedc.verifier.sandbox import _loader_lines, boot_guest, guest_outdir, libbpf_library
from tests.conftest import EXAMPLES, ROOT, needs_sandbox

DATA = ROOT / "tests" / "data" / "verify"


def _job(settings, text: str, timeout_s: float = 60) -> tuple[int | None, Path]:
    outdir = guest_outdir(settings, "job-")
    script = outdir / "run.sh"
    script.write_text("#!/bin/sh\n" + text + f"\ntouch {outdir}/done\n")
    return boot_guest(settings, outdir, script, timeout_s, lambda _m: None), outdir


def test_without_a_warm_guest_jobs_get_folders_of_their_own(settings, monkeypatch, tmp_path):
    monkeypatch.delenv("SCHEDC_WARM_SANDBOX", raising=False)
    assert warm_client.client_for(settings) is None
    outdir = guest_outdir(settings, "schedc-x-")
    try:
        assert "warm" not in str(outdir)
    finally:
        outdir.rmdir()
    # A pool nobody answers for (its owner is gone): the job asks, waits a moment, boots alone.
    set_warm_pool_dir(tmp_path)
    try:
        assert warm_client.client_for(settings) is None
        assert [p.suffix for p in tmp_path.iterdir()] == [".want"]
    finally:
        set_warm_pool_dir(None)


def test_the_agent_script_runs_the_agent_then_powers_off(tmp_path):
    text = warm.agent_script(tmp_path)
    assert "warm_agent.py" in text and str(tmp_path) in text
    assert text.rstrip().endswith("poweroff -f")


@pytest.fixture(scope="module")
def pool(settings):
    needs_sandbox(settings)
    with warm.WarmPool(settings) as kept:
        yield kept
    assert warm_pool_dir() is None


@pytest.mark.vm
def test_jobs_share_one_boot_and_start_clean(settings, pool):
    assert pool.guest_for(settings) is None  # nothing booted before a job asks
    # Job 1 leaves a process, a pin folder, a cgroup and a /tmp file behind.
    status, out1 = _job(
        settings,
        "setsid sleep 1000 > /dev/null 2>&1 &\n"
        "mkdir -p /sys/fs/bpf/schedc-left /sys/fs/cgroup/schedc-left\n"
        "touch /tmp/schedc-left",
    )
    assert status == 0 and (out1 / "done").exists()
    assert (out1 / warm.STATUS).read_text().strip() == "clean"
    guest = pool.guest_for(settings)
    assert guest is not None and guest.boots == 1
    pid = guest.pid
    # Job 2 sees none of it, in the same guest.
    status, out2 = _job(
        settings,
        "O=$(dirname $0)\n"
        "pgrep -f 'sleep 1000' > $O/sleepers; ls -d /sys/fs/bpf/schedc-* /sys/fs/cgroup/schedc-* "
        "/tmp/schedc-left > $O/left 2>/dev/null; cat /sys/kernel/sched_ext/state > $O/state",
    )
    assert status == 0
    assert (out2 / "sleepers").read_text() == ""
    assert (out2 / "left").read_text() == ""
    assert (out2 / "state").read_text().strip() == "disabled"
    assert guest.pid == pid and guest.boots == 1


@pytest.mark.vm
def test_verify_through_the_warm_guest(settings, pool):
    guest = pool.guest_for(settings)
    messages: list[str] = []
    results = verify_policies(
        [EXAMPLES[0], DATA / "null_lookup.bpf.c"],
        settings,
        mode="sandbox",
        run_seconds=2,
        workload="spin",
        progress=messages.append,
    )
    assert results[0].ok and results[0].stage == "run", results[0].diagnostics
    assert not results[1].ok and results[1].diagnostics[0].code == "V001"
    assert any("warm sandbox" in m for m in messages), messages
    assert not any("booting" in m for m in messages), messages
    assert guest.boots == 1
    left = list((guest.root / "jobs").glob("schedc-sandbox-*"))
    assert left == [], left  # verify's job folder is removed after it, as a boot's is


@pytest.mark.vm
def test_a_job_past_its_deadline_gets_a_new_guest(settings, pool):
    guest = pool.guest_for(settings)
    before = guest.boots
    status, _out = _job(settings, "sleep 1000", timeout_s=3)
    assert status is None
    status, out = _job(settings, "uname -r > $(dirname $0)/release")
    assert status == 0 and (out / "release").read_text().strip()
    assert guest.boots == before + 1


@pytest.mark.vm
def test_the_agent_runs_the_guest_loader_for_a_job(settings, pool, tmp_path):
    """A verify job's loader runs in a child of the agent, which imported it at boot, not in
    a Python of its own."""
    built = compile_policy(EXAMPLES[0], settings, out=tmp_path / "x.bpf.o")
    assert built.ok, built.diagnostics
    outdir = guest_outdir(settings, "load-")
    copy = outdir / "0" / "x.bpf.o"
    copy.parent.mkdir()
    shutil.copy(tmp_path / "x.bpf.o", copy)
    lines = _loader_lines(str(outdir), libbpf_library(settings), [copy])
    script = outdir / "run.sh"
    script.write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
    assert boot_guest(settings, outdir, script, 120, lambda _m: None) == 0
    assert (outdir / "loader.exit").read_text().strip() == "0"  # the agent's answer
    record = json.loads((outdir / "load" / "0.json").read_text())
    assert record["ok"] is True and record["programs"], record
