"""`verify --run` fails when a workload process crashes or is killed by the kernel while the
scheduler runs: the guest traces signal deliveries during the run test, and the result names the
process's comm, pid and signal (diagnostic V005)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from schedc import workloads
from schedc.compiler.pipeline import verify_policies
from schedc.verifier.sandbox import parse_signal_trace
from schedc.workloads import Workload
from tests.conftest import needs_sandbox, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent

# A workload program of our own: `crash` spins a little, then writes through a NULL pointer
# (a real fault, SIGSEGV with its default action); `handled` raises SIGSEGV and SIGABRT into
# handlers and exits 0 (not a failure); `spin` just spins.
WORKER_C = r"""
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t caught;
static void on_signal(int sig) { caught += sig; }

static void spin(double seconds) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < seconds);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "crash") == 0) {
        spin(0.5);
        *(volatile int *)0 = 1;
    }
    if (argc > 1 && strcmp(argv[1], "handled") == 0) {
        signal(SIGSEGV, on_signal);
        signal(SIGABRT, on_signal);
        raise(SIGSEGV);
        raise(SIGABRT);
        return caught == SIGSEGV + SIGABRT ? 0 : 1;
    }
    spin(1.0);
    return 0;
}
"""


def build_worker(directory: Path) -> Path:
    """The program, compiled by the host's clang (the guest runs the host's binaries)."""
    src = directory / "segv-worker.c"
    src.write_text(WORKER_C)
    exe = directory / "segv-worker"
    for cc in ("clang-19", "clang", "cc"):
        try:
            subprocess.run([cc, "-O1", "-o", str(exe), str(src)], check=True, capture_output=True)
            return exe
        except (OSError, subprocess.CalledProcessError):
            continue
    skip_or_fail("no C compiler for the host builds the crashing workload")
    raise AssertionError("unreachable")


def test_signal_trace_names_crashes_not_handled_or_requested_signals() -> None:
    # ftrace's text for the two events, as the 6.12 guest writes it
    trace = "\n".join(
        [
            "# tracer: nop",
            "     segv-worker-214     [002] d..1.    12.500100: signal_deliver: sig=11 errno=0 "
            "code=1 sa_handler=0 sa_flags=0",
            "  stress-ng-cpu-230     [000] d..1.    12.600000: signal_deliver: sig=15 errno=0 "
            "code=0 sa_handler=0 sa_flags=0",
            "          <idle>-0       [001] d.h2.    12.700000: signal_generate: sig=9 errno=0 "
            "code=128 comm=stress-ng-vm pid=231 grp=1 res=0",
            "     segv-worker-214     [002] d..1.    12.500200: signal_deliver: sig=11 errno=0 "
            "code=1 sa_handler=0 sa_flags=0",
        ]
    )
    exits = parse_signal_trace(trace)
    assert [(e.comm, e.pid, e.signal, e.how) for e in exits] == [
        ("segv-worker", 214, "SIGSEGV", "crashed"),
        ("stress-ng-vm", 231, "SIGKILL", "killed by the kernel"),
    ]
    assert parse_signal_trace("") == []


@pytest.mark.vm
def test_verify_run_fails_when_a_workload_process_crashes(
    settings, toolchain, tmp_path, monkeypatch
) -> None:
    needs_sandbox(settings)
    exe = build_worker(tmp_path)
    # The run test's workload: one process that really segfaults, one that handles SIGSEGV
    # and SIGABRT and exits 0, one that spins; the run test kills the `sleep` at the end.
    monkeypatch.setitem(
        workloads.WORKLOADS,
        "segv",
        Workload(
            name="segv",
            summary="a crash, a handled signal and a spinner",
            run_test=lambda seconds: f"{exe} spin & {exe} handled & {exe} crash & sleep {seconds}",
        ),
    )
    policy = ROOT / "examples" / "fifo.sched"
    [result] = verify_policies([policy], settings, mode="sandbox", run_seconds=4, workload="segv")

    assert result.run is not None and result.run.enabled_throughout  # the policy was fine
    # only the crash: not the handled signals, not the run test's own SIGTERM at the end
    assert [(c.comm, c.signal, c.how) for c in result.run.crashed or []] == [
        ("segv-worker", "SIGSEGV", "crashed")
    ]
    assert not result.ok
    [diag] = [d for d in result.diagnostics if d.code == "V005"]
    assert "segv-worker" in diag.message and "SIGSEGV" in diag.message, diag.message
    assert result.to_json()["run"]["crashed"][0]["signal"] == "SIGSEGV"
