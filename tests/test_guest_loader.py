"""The guest loader (libbpf through ctypes, small verifier logs): parsing without a VM, the
two-pass logic with a stand-in libbpf, libbpf on the host for objects that cannot even be
opened, and one real boot (marked `vm`) that loads a good, a rejected and an unloadable object.

The VM test needs SCHEDC_KERNEL, SCHEDC_BPFTOOL, SCHEDC_BTF, SCHEDC_LIBBPF_INCLUDE and
SCHEDC_LIBBPF (the kit's lib/libbpf.so.1.5.0), clang >= 16, QEMU and virtme-ng; it skips with the
reason otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from schedc.settings import EnvironmentProblem, find_bpftool, find_clang, load_settings
from schedc.verifier import guest_loader
from schedc.verifier.guest_loader import (
    Attempt,
    ProgramLoad,
    failed_program,
    load_object,
    loader_message,
    parse_stats,
    verifier_message,
)
from schedc.verifier.sandbox import vng_command, vng_environment
from tests.conftest import ROOT, needs_sandbox, skip_or_fail

# Captured in the sandbox kit's guest (Linux 6.12.117, libbpf 1.5) from the guest loader.
STATS_LOG = (  # examples/ljf.sched, ljf_enqueue, log level 4
    "verification time 2106 usec\n"
    "stack depth 24\n"
    "processed 248 insns (limit 1000000) max_states_per_insn 2 total_states 23 peak_states 23 "
    "mark_read 5\n"
)
REJECTED_STATS_LOG = (  # tests/data/verify/null_lookup.bpf.c, log level 4
    "func 'enqueue' arg0 has btf_id 62 type STRUCT 'task_struct'\n"
    "R0 invalid mem access 'map_value_or_null'\n"
    "verification time 973 usec\n"
    "stack depth 8\n"
    "processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 "
    "mark_read 0\n"
)
REJECTED_TRACE_LOG = (  # the same, log level 1|4
    "0: R1=ctx() R10=fp0\n"
    '; s32 SEC("struct_ops/null_lookup_enqueue") null_lookup_enqueue(unsigned long long *ctx)'
    " @ null_lookup.bpf.c:13\n"
    "0: (bf) r7 = r1                       ; R1=ctx() R7_w=ctx()\n"
    "; u64 *count = bpf_map_lookup_elem(&enqueues, &key); @ null_lookup.bpf.c:17\n"
    "8: (85) call bpf_map_lookup_elem#1    ; R0_w=map_value_or_null(id=1,map=enqueues,ks=4,vs=8)\n"
    "; *count += 1; @ null_lookup.bpf.c:19\n"
    "9: (79) r1 = *(u64 *)(r0 +0)\n"
    "R0 invalid mem access 'map_value_or_null'\n"
    "verification time 3843 usec\n"
    "stack depth 8\n"
    "processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 "
    "mark_read 0\n"
)
REJECTED_7_2_LOG = (  # Linux 7.2.13's scx_qmap (arena code built by clang 19), log level 1|4
    "96: (b7) r1 = 0                       ; R1=0\n"
    "; taskc->q_prev = NULL; @ scx_qmap.bpf.c:324\n"
    "97: (7b) *(u64 *)(r7 +16) = r1\n"
    "R7 invalid mem access 'scalar'\n"
    "verification time 13587 usec\n"
    "stack depth 16 max 0\n"
    "insns processed 71\n"
    "processed 71 insns (limit 1000000) max_states_per_insn 1 total_states 5 peak_states 5 "
    "mark_read 0\n"
)
REJECTED_MESSAGES = [
    "libbpf: prog 'null_lookup_enqueue': BPF program load failed: Permission denied\n",
    "libbpf: prog 'null_lookup_enqueue': failed to load: -13\n",
    "libbpf: failed to load object '/tmp/x/null_lookup.bpf.o'\n",
]
MISSING_KFUNC_MESSAGES = [
    "libbpf: extern (func ksym) 'scx_bpf_no_such_kfunc': not found in kernel or module BTFs\n",
    "libbpf: failed to load object '/tmp/x/missing_kfunc.bpf.o'\n",
]


# --- parsing ------------------------------------------------------------------------------------


def test_stats_of_an_accepted_program():
    stats = parse_stats(STATS_LOG)
    assert (stats.insns_processed, stats.states, stats.verification_time_us) == (248, 23, 2106)
    assert stats.peak_states == 23
    assert parse_stats(REJECTED_7_2_LOG).peak_states == 5


def test_stats_of_a_rejected_program_and_of_no_log():
    assert parse_stats(REJECTED_TRACE_LOG).insns_processed == 9
    assert parse_stats(REJECTED_TRACE_LOG).verification_time_us == 3843
    empty = parse_stats("")
    assert (empty.insns_processed, empty.states, empty.verification_time_us) == (None,) * 3


def test_the_kernels_message_is_the_last_line_before_the_stats():
    expected = "R0 invalid mem access 'map_value_or_null'"
    assert verifier_message(REJECTED_TRACE_LOG) == expected
    assert verifier_message(REJECTED_STATS_LOG) == expected
    assert verifier_message(STATS_LOG) is None
    assert verifier_message("") is None
    # 7.x closes the log with two more stats lines; the message is still the one before them.
    assert verifier_message(REJECTED_7_2_LOG) == "R7 invalid mem access 'scalar'"
    assert parse_stats(REJECTED_7_2_LOG).insns_processed == 71


def test_libbpfs_complaint_skips_the_generic_summary():
    assert loader_message(MISSING_KFUNC_MESSAGES) == (
        "extern (func ksym) 'scx_bpf_no_such_kfunc': not found in kernel or module BTFs"
    )
    assert loader_message(REJECTED_MESSAGES) == (
        "prog 'null_lookup_enqueue': BPF program load failed: Permission denied"
    )
    assert loader_message([]) is None


def test_libbpf_names_the_rejected_program():
    assert failed_program(REJECTED_MESSAGES) == "null_lookup_enqueue"
    assert failed_program(MISSING_KFUNC_MESSAGES) is None


# --- the two passes, with a stand-in for libbpf --------------------------------------------------


class FakeLibbpf:
    """Answers attempt() with canned results, and records the traced program of each call."""

    def __init__(self, *attempts: Attempt) -> None:
        self.attempts = list(attempts)
        self.traced: list[str | None] = []
        self.messages: list[str] = []

    def attempt(self, path: str, trace: str | None = None) -> Attempt:
        self.traced.append(trace)
        return self.attempts.pop(0)

    def strerror(self, err: int) -> str:
        return os.strerror(abs(err))


def prog(name: str, log: str = "", fd: int = -2, autoload: bool = True) -> ProgramLoad:
    return ProgramLoad(name=name, autoload=autoload, fd=fd, log=log)


def test_an_accepted_object_is_loaded_once_and_lists_the_loaded_programs():
    fake = FakeLibbpf(
        Attempt(0, [prog("a", STATS_LOG, fd=7), prog("unused", autoload=False, fd=-22)])
    )
    record = load_object(fake, "x.bpf.o")  # type: ignore[arg-type]
    assert fake.traced == [None]
    assert record["ok"] is True and record["error"] is None and record["log"] == ""
    assert record["programs"] == [
        {
            "name": "a",
            "loaded": True,
            "insns_processed": 248,
            "states": 23,
            "verification_time_us": 2106,
            "peak_states": 23,
        }
    ]


def test_a_rejected_object_is_loaded_again_tracing_only_the_rejected_program():
    fake = FakeLibbpf(
        Attempt(
            -13,
            [prog("a", STATS_LOG), prog("null_lookup_enqueue", REJECTED_STATS_LOG), prog("c")],
            REJECTED_MESSAGES,
        ),
        Attempt(
            -13,
            [prog("a", STATS_LOG), prog("null_lookup_enqueue", REJECTED_TRACE_LOG), prog("c")],
            REJECTED_MESSAGES,
        ),
    )
    record = load_object(fake, "x.bpf.o")  # type: ignore[arg-type]
    assert fake.traced == [None, "null_lookup_enqueue"]
    assert record["ok"] is False
    assert record["error"] == "R0 invalid mem access 'map_value_or_null'"
    assert [(p["name"], p["loaded"]) for p in record["programs"]] == [  # type: ignore[union-attr, index]
        ("a", True),
        ("null_lookup_enqueue", False),
    ]
    log = str(record["log"])
    assert log.startswith(REJECTED_TRACE_LOG) and log.endswith("".join(REJECTED_MESSAGES))


def test_a_loader_failure_is_not_retried_and_gives_libbpfs_message():
    fake = FakeLibbpf(Attempt(-2, [prog("missing_kfunc_enqueue")], MISSING_KFUNC_MESSAGES))
    record = load_object(fake, "x.bpf.o")  # type: ignore[arg-type]
    assert fake.traced == [None]
    assert record["programs"] == [] and record["log"] == "".join(MISSING_KFUNC_MESSAGES)
    assert "not found in kernel" in str(record["error"])
    assert record["stage"] == "prepare"


def test_a_failure_without_any_message_still_has_an_error():
    record = load_object(FakeLibbpf(Attempt(-22, [])), "x.bpf.o")  # type: ignore[arg-type]
    assert record["ok"] is False and "Invalid argument" in str(record["error"])


def test_every_object_gets_a_record_even_without_libbpf(tmp_path):
    status = guest_loader.main(
        ["--libbpf", str(tmp_path / "no-libbpf.so"), "--out", str(tmp_path), "a.o", "b.o"]
    )
    assert status == 1
    for n, name in enumerate(["a.o", "b.o"]):
        record = json.loads((tmp_path / f"{n}.json").read_text())
        assert record["object"] == name and record["ok"] is False
        assert "cannot load libbpf" in record["error"]
        assert (tmp_path / f"{n}.rc").read_text().strip() == "1"
    assert not list(tmp_path.glob("*.tmp"))


def libbpf_library() -> str:
    path = load_settings().libbpf
    if not path:
        skip_or_fail(
            "set SCHEDC_LIBBPF (or `libbpf` in schedc.toml, which scripts/setup.sh --kit writes) "
            "to libbpf >= 1.2, e.g. the sandbox kit's lib/libbpf.so.1.5.0"
        )
    elif not Path(path).is_file():
        skip_or_fail(f"SCHEDC_LIBBPF is '{path}', which does not exist")
    return str(path)


def test_objects_that_cannot_be_opened_do_not_stop_the_others(tmp_path):
    """On the host: opening needs no sched_ext kernel (nor any BPF permission)."""
    library = libbpf_library()
    garbage = tmp_path / "garbage.bpf.o"
    garbage.write_bytes(b"not an ELF file")
    out = tmp_path / "out"
    out.mkdir()
    status = guest_loader.main(
        ["--libbpf", library, "--out", str(out), str(garbage), str(tmp_path / "missing.bpf.o")]
    )
    assert status == 1
    first, second = (json.loads((out / f"{n}.json").read_text()) for n in (0, 1))
    assert not first["ok"] and "not a proper ELF object" in first["error"]
    assert "libbpf: " in first["log"]
    assert not second["ok"] and "No such file or directory" in second["error"]
    assert [(out / f"{n}.rc").read_text() for n in (0, 1)] == ["1\n", "1\n"]


# --- one real boot ------------------------------------------------------------------------------

OBJECTS = ("ljf", "null_lookup", "missing_kfunc")
BOOT_TIMEOUT_S = 900


def _compile_objects(build: Path, settings_clang: str, bpftool: str, btf: str, include: str):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    objects = {}
    for name, source in (
        ("ljf", ROOT / "examples" / "ljf.sched"),
        ("null_lookup", ROOT / "tests" / "data" / "verify" / "null_lookup.bpf.c"),
    ):
        objects[name] = build / f"{name}.bpf.o"
        subprocess.run(
            [sys.executable, "-m", "schedc", "compile", str(source), "-o", str(objects[name])],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    vmlinux_h = subprocess.run(
        [bpftool, "btf", "dump", "file", btf, "format", "c"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (build / "vmlinux.h").write_text(vmlinux_h)
    objects["missing_kfunc"] = build / "missing_kfunc.bpf.o"
    subprocess.run(
        [settings_clang, "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-D__TARGET_ARCH_x86"]
        + ["-I", str(build), "-I", include]
        + ["-c", str(ROOT / "tests" / "data" / "sandbox" / "missing_kfunc.bpf.c")]
        + ["-o", str(objects["missing_kfunc"])],
        check=True,
    )
    return objects


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> dict[str, Any]:
    """Compiles the test objects and loads them with the guest loader in one boot."""
    settings = load_settings()
    needs_sandbox(settings)
    library = libbpf_library()
    if not settings.libbpf_include or not settings.btf:
        skip_or_fail("set SCHEDC_LIBBPF_INCLUDE and SCHEDC_BTF (e.g. from the sandbox kit)")
    try:
        clang = find_clang(settings)
    except EnvironmentProblem as exc:
        skip_or_fail(str(exc))
    build = tmp_path_factory.mktemp("guest-loader-build")
    objects = _compile_objects(
        build, clang, find_bpftool(settings), str(settings.btf), str(settings.libbpf_include)
    )
    # The guest surely sees the rwdir (not necessarily every host mount): objects go there too.
    outdir = tmp_path_factory.mktemp("guest-loader")
    copies = []
    for name in OBJECTS:
        copy = outdir / name / objects[name].name
        copy.parent.mkdir()
        shutil.copyfile(objects[name], copy)
        copies.append(str(copy))
    q = shlex.quote
    loader = (
        f"cd {q(str(ROOT))} && PYTHONPATH={q(str(ROOT))} {q(sys.executable)} "
        f"-m schedc.verifier.guest_loader --libbpf {q(library)} --out {q(str(outdir))} "
        + " ".join(q(c) for c in copies)
        + f" > {q(str(outdir / 'loader.out'))} 2>&1"
    )
    script = outdir / "run.sh"
    cmdline = f"cat /proc/cmdline > {q(str(outdir / 'cmdline'))}"
    script.write_text(f"#!/bin/sh\n{cmdline}\n{loader}\ntouch {q(str(outdir / 'done'))}\n")
    cmd = vng_command(settings, outdir, script)  # the project's own vng command line
    # vng's exit status and output are unreliable under TCG: only the guest's files count.
    with open(outdir / "vng.out", "ab") as sink:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True,
            env=vng_environment(cmd[0]),
        )
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    results = {}
    for n, name in enumerate(OBJECTS):
        if not (outdir / f"{n}.rc").exists():
            tail = (outdir / "vng.out").read_text(errors="replace")[-3000:]
            loader_out = outdir / "loader.out"
            said = loader_out.read_text(errors="replace") if loader_out.exists() else ""
            pytest.fail(f"the guest wrote no {n}.rc ({name}); loader: {said}\nvng: {tail}")
        results[name] = json.loads((outdir / f"{n}.json").read_text())
        results[name]["rc"] = (outdir / f"{n}.rc").read_text().strip()
    results["cmdline"] = (outdir / "cmdline").read_text()
    return results


@pytest.mark.vm
def test_vm_loads_the_good_object_with_small_logs(loaded):
    good = loaded["ljf"]
    assert good["ok"], good["error"]
    assert good["rc"] == "0" and good["error"] is None
    programs = good["programs"]
    assert programs and all(p["name"].startswith("ljf_") and p["loaded"] for p in programs)
    assert all(p["insns_processed"] > 0 for p in programs)
    assert all(p["verification_time_us"] > 0 for p in programs)
    assert all(p["states"] is not None for p in programs)
    assert len(json.dumps(good)) < 100_000


@pytest.mark.vm
def test_vm_guest_kernel_boots_without_speculation_mitigations(loaded):
    """Emulated, they only cost time (schedc.verifier.sandbox.vng_command)."""
    assert "mitigations=off" in loaded["cmdline"].split(), loaded["cmdline"]


@pytest.mark.vm
def test_vm_rejects_the_null_lookup_at_its_line(loaded):
    bad = loaded["null_lookup"]
    assert not bad["ok"] and bad["rc"] == "1"
    assert "map_value_or_null" in bad["error"]
    assert re.search(r"^; .* @ null_lookup\.bpf\.c:19$", bad["log"], re.M), bad["log"][-3000:]
    assert "libbpf: prog 'null_lookup_enqueue': BPF program load failed" in bad["log"]
    assert [(p["name"], p["loaded"]) for p in bad["programs"]] == [("null_lookup_enqueue", False)]
    assert bad["programs"][0]["insns_processed"] > 0


@pytest.mark.vm
def test_vm_reports_libbpfs_message_for_a_missing_kfunc(loaded):
    missing = loaded["missing_kfunc"]
    assert not missing["ok"] and missing["rc"] == "1"
    assert "not found in kernel" in missing["error"]
    assert "scx_bpf_no_such_kfunc" in missing["error"]
    assert missing["programs"] == []
    assert missing["stage"] == "prepare"  # libbpf, before the verifier: V008
