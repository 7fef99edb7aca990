"""The kernel matrix, for real: every example compiled once (against the first kernel's BTF)
and loaded into the verifier of every kernel of the configured matrix (6.12 and 7.2 in CI), one
boot per kernel, through the CLI; an object that only the old kernel accepts, so a verdict is
shown to be per kernel; a behaviour test (attached, under load) and the smallest bench on every
kernel. Run tests of every example are in test_behaviour_vm.py (6.12), not repeated here: CI
time is budgeted. Needs two kits (conftest MATRIX)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from schedc.settings import Settings, find_bpftool, find_clang, kernel_matrix, kernel_name
from tests.conftest import EXAMPLES, ROOT, needs_sandbox

STALL = ROOT / "tests" / "data" / "verify" / "stall.bpf.c"  # ejected by the watchdog in 1 s
OLD_NAMES = ROOT / "tests" / "data" / "sandbox" / "minimal.bpf.c"  # scx_bpf_dispatch, no fallback


def kernel_options(settings: Settings) -> list[str]:
    return [arg for entry in settings.kernels for arg in ("--kernel", entry)]


def old_names_object(settings: Settings, build: Path) -> Path:
    """minimal.bpf.c declares the 6.12 kfunc name as a strong __ksym: 7.2 has only the new one."""
    assert settings.btf and settings.libbpf_include
    (build / "vmlinux.h").write_text(
        subprocess.run(
            [find_bpftool(settings), "btf", "dump", "file", settings.btf, "format", "c"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    obj = build / "old_names.bpf.o"
    subprocess.run(
        [find_clang(settings), "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-D__TARGET_ARCH_x86"]
        + ["-I", str(build), "-I", settings.libbpf_include]
        + ["-c", str(OLD_NAMES), "-o", str(obj)],
        check=True,
    )
    return obj


@pytest.fixture(scope="module")
def matrix_run(matrix_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    kernels = kernel_matrix(matrix_settings, attach=False)
    for k in kernels:
        needs_sandbox(k)
    build = tmp_path_factory.mktemp("matrix")
    obj = old_names_object(kernels[0], build)
    cmd = [sys.executable, "-m", "schedc", "verify", "--sandbox", "--format", "json"]
    cmd += kernel_options(matrix_settings)
    done = subprocess.run(
        cmd + [str(p) for p in EXAMPLES] + [str(obj)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    assert done.returncode in (0, 1), done.stderr
    return {
        "releases": [kernel_name(k) for k in kernels],
        "results": {Path(r["policy"]).name: r for r in json.loads(done.stdout)["results"]},
        "stderr": done.stderr,
        "returncode": done.returncode,
    }


@pytest.mark.vm
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_every_example_loads_on_every_kernel(matrix_run: dict, example: Path) -> None:
    releases = matrix_run["releases"]
    assert len(releases) >= 2 and releases[0].startswith("6.12") and releases[-1].startswith("7.")
    r = matrix_run["results"][example.name]
    assert r["ok"] and r["stage"] == "verifier", (example.name, r["diagnostics"])
    assert [k["kernel"] for k in r["kernels"]] == releases
    for k in r["kernels"]:
        assert k["ok"] and k["programs"], (example.name, k)
        assert all(p["insns_processed"] for p in k["programs"]), (example.name, k)


@pytest.mark.vm
def test_one_boot_per_kernel_said_while_it_worked(matrix_run: dict) -> None:
    releases = matrix_run["releases"]
    stderr = matrix_run["stderr"]
    assert stderr.count("booting sandbox kernel") == len(releases), stderr
    for n, release in enumerate(releases, 1):
        assert f"kernel {n}/{len(releases)}: Linux {release}" in stderr


@pytest.mark.vm
def test_a_verdict_is_per_kernel(matrix_run: dict) -> None:
    """The 6.12-only kfunc name loads on 6.12 and is rejected on 7.2, which the finding names."""
    r = matrix_run["results"]["old_names.bpf.o"]
    assert matrix_run["returncode"] == 1 and not r["ok"]
    first, *later = r["kernels"]
    assert first["ok"] and first["programs"]
    assert later and not any(k["ok"] for k in later)
    errors = [d for d in r["diagnostics"] if d["severity"] == "error"]
    tag = f"[Linux {later[0]['kernel']}]"
    assert errors and all(d["message"].endswith(tag) for d in errors), errors
    assert not any(f"[Linux {first['kernel']}]" in d["message"] for d in errors)


@pytest.mark.vm
def test_a_behaviour_test_runs_on_every_kernel(matrix_settings: Settings, tmp_path: Path) -> None:
    """`schedc test --kernel A --kernel B`: each result names its kernel, its traces are kept
    per kernel, and the placement the example claims holds on both, for a thread matched by its
    process's name (task.process.comm) too."""
    for k in kernel_matrix(matrix_settings, attach=True):
        needs_sandbox(k)
    name = "pinned_latency"
    done = subprocess.run(
        [sys.executable, "-m", "schedc", "test", str(ROOT / "examples" / f"{name}.sched")]
        + ["--scenario", str(ROOT / "examples" / f"{name}.scenario.toml"), "--format", "json"]
        + ["--keep-trace", str(tmp_path / "traces"), *kernel_options(matrix_settings)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,
    )
    # Placement is the claim that holds under any load; the example's starvation bound is a
    # timing, which a loaded TCG host can stretch (exit 1), so it is not asserted here.
    assert done.returncode in (0, 1), done.stdout + done.stderr
    results = json.loads(done.stdout)["results"]
    releases = [kernel_name(k) for k in kernel_matrix(matrix_settings, attach=True)]
    assert [r["kernel"] for r in results] == releases
    for r in results:
        # the processes' main threads, and a thread named apart from its process
        placements = [e for e in r["expectations"] if e["kind"] == "placement"]
        assert [e["groups"] for e in placements] == [["critical"], ["critical_thread"]]
        for placement in placements:
            assert placement["ok"] and placement["measured"] >= 0.99, (r["kernel"], placement)
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == sorted(releases)


@pytest.mark.vm
def test_bench_runs_on_every_kernel(matrix_settings: Settings) -> None:
    """`schedc bench --kernel A --kernel B`, the smallest bench there is (one run of a tiny
    batch-makespan on one vCPU, no warm-up): per kernel a result for fifo and one for a policy
    that kernel ejects (tests/data/verify/stall.bpf.c), each naming its kernel's release; fifo
    holds a measured value on both sides, the ejected one a failed run with the kernel's reason
    (and exit status 1), the baseline unaffected; each kernel announced before its boot."""
    kernels = kernel_matrix(matrix_settings, attach=True)
    for k in kernels:
        needs_sandbox(k)
    releases = [kernel_name(k) for k in kernels]
    command = [
        sys.executable, "-m", "schedc", "bench", str(ROOT / "examples" / "fifo.sched"), str(STALL),
        "--workload", "batch-makespan", "--runs", "1", "--warmup", "0", "--scale", "0.1",
        "--cpus", "1", "--format", "json", *kernel_options(matrix_settings),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr  # the stall policy's runs failed
    data = json.loads(done.stdout)
    assert data["ok"] is False and data["error"] is None  # it ran to the end; a result failed
    results = data["results"]
    per_kernel = ("fifo", "stall")  # the policies' order on the command line
    assert [r["environment"]["kernel"] for r in results] == [
        k for k in releases for _policy in per_kernel
    ]
    assert releases[0].startswith("6.12") and releases[-1].startswith("7.")
    for r in results:
        kernel = r["environment"]["kernel"]
        assert r["workload"] == "batch-makespan" and r["environment"]["vcpus"] == 1
        assert len(r["baseline"]["values"]) == 1 and r["baseline"]["values"][0] > 0, kernel
        if r["policy"]["name"] == "fifo":
            values = r["policy"]["values"]
            assert len(values) == 1 and values[0] > 0, (kernel, r["policy"])
            continue
        assert r["policy"]["name"] == "stall" and r["policy"]["values"] == [], (kernel, r)
        [run] = r["policy"]["runs"]
        assert not run["ok"] and "runnable task stall" in (run["error"] or ""), (kernel, run)
        assert r["ratio"]["verdict"] == "failed", (kernel, r["ratio"])
    # Each "kernel N/M" line comes before that kernel's boot and after the previous one's.
    lines = done.stderr.splitlines()
    announced = [i for i, line in enumerate(lines) if line.startswith("schedc: kernel ")]
    boots = [i for i, line in enumerate(lines) if "booting sandbox kernel" in line]
    assert len(announced) == len(boots) == len(releases), done.stderr
    for n, release in enumerate(releases, 1):
        assert f"kernel {n}/{len(releases)}: Linux {release}" in lines[announced[n - 1]]
        assert f"[{release}]" in lines[boots[n - 1]]
    assert announced[0] < boots[0] < announced[1] < boots[1]
