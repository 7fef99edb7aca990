"""The sched_ext sandbox: log parsing without a VM, and one real boot (marked `vm`) that verifies a
good, a rejected and an unloadable object together.

The VM tests need SCHEDC_KERNEL, SCHEDC_BPFTOOL, SCHEDC_BTF and SCHEDC_LIBBPF_INCLUDE (a sandbox
kit provides all four), clang >= 16, QEMU and virtme-ng; they skip with the reason otherwise.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from schedc.settings import (
    EnvironmentProblem,
    Settings,
    find_bpftool,
    find_clang,
    load_settings,
)
from schedc.verifier.sandbox import (
    LoadReport,
    _guest_script,
    _run_lines,
    load_in_sandbox,
    parse_load_log,
    parse_phases,
    parse_prog_show,
    sampling_lines,
    sandbox_problem,
)
from tests.conftest import needs_sandbox, skip_or_fail

DATA = Path(__file__).parent / "data" / "sandbox"
# Each .log was captured from `bpftool -d prog loadall` on the .bpf.c of the same name, in the
# sandbox kit's guest (Linux 6.12.117, bpftool 7.5).
OBJECTS = ("minimal", "null_deref", "missing_kfunc")


def captured(name: str) -> str:
    return (DATA / f"{name}.log").read_text(encoding="utf-8")


# --- the log parser, on captured logs ----------------------------------------------------------


def test_parse_accepted_object_reports_every_program():
    report = parse_load_log("minimal.bpf.o", captured("minimal"), 0)
    assert report.ok and report.error is None
    assert [p.name for p in report.programs] == ["minimal_select_cpu", "minimal_enqueue"]
    select_cpu, enqueue = report.programs
    assert (select_cpu.insns_processed, select_cpu.states, select_cpu.peak_states) == (20, 1, 1)
    assert (enqueue.insns_processed, enqueue.states, enqueue.peak_states) == (6, 0, 0)
    assert all(p.verification_time_us and p.verification_time_us > 0 for p in report.programs)


def test_parse_rejected_object_gives_the_kernels_message():
    report = parse_load_log("null_deref.bpf.o", captured("null_deref"), 255)
    assert not report.ok
    assert report.error == "R0 invalid mem access 'map_value_or_null'"
    # The program verified before the rejected one is reported too; the rejected one has stats.
    assert [(p.name, p.insns_processed) for p in report.programs] == [
        ("null_deref_select_cpu", 2),
        ("null_deref_enqueue", 9),
    ]


def test_parse_loader_failure_gives_libbpfs_message():
    report = parse_load_log("missing_kfunc.bpf.o", captured("missing_kfunc"), 255)
    assert not report.ok and report.programs == []
    assert report.error == (
        "extern (func ksym) 'scx_bpf_no_such_kfunc': not found in kernel or module BTFs"
    )
    assert report.stage == "prepare"


def test_parse_failure_without_output_still_has_an_error():
    report = parse_load_log("x.bpf.o", "", 1)
    assert not report.ok and report.error == "bpftool exited with status 1"


def test_parse_program_log_without_stats_has_none():
    log = (
        "libbpf: prog 'p': BPF program load failed: Invalid argument\n"
        "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n"
        "unknown func bpf_foo#999\n"
        "-- END PROG LOAD LOG --\n"
    )
    report = parse_load_log("p.bpf.o", log, 255)
    assert report.error == "unknown func bpf_foo#999"
    assert report.programs[0].insns_processed is None and report.programs[0].states is None


# --- telling the user how to get a sandbox -----------------------------------------------------


def test_a_run_window_lasts_the_seconds_asked_not_whole_seconds(tmp_path):
    """The run test samples the scheduler's state for its seconds of guest uptime. With a
    clock at 100.99 s, a 2 s window must take 8 samples 0.25 s apart (to 102.99 s), not end
    at 102 s after 5 (the whole-second window, too short to see a stall ejected). The clock
    here is a file that each sample moves on by 0.25 s."""
    clock = tmp_path / "uptime"
    clock.write_text("100.99 0.00\n")
    samples = tmp_path / "samples"
    tick = (
        f"echo s >> {samples}; read -r t _ < {clock}; c=$(( ${{t%.*}}${{t#*.}} + 25 ));"
        f" printf '%d.%02d 0.00\\n' $((c / 100)) $((c % 100)) > {clock}"
    )
    script = "\n".join(sampling_lines(2, tick, uptime=str(clock))) + "\n"
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert samples.read_text().count("s") == 8  # at 100.99, 101.24, ... 102.74: 2 s
    assert clock.read_text().startswith("102.99")


def test_run_phases_come_from_the_guests_stamps():
    stamps = "start 10.50\nattached 12.75\nran 23.00\ndetached 23.40\n"
    assert parse_phases(stamps) == {"attach": 2.25, "run": 10.25, "detach": 0.4, "total": 12.9}
    # A run whose workload never ended (the guest died): what was stamped, up to the last.
    assert parse_phases("start 10.50\nattached 12.75\n") == {"attach": 2.25, "total": 2.25}
    # Nothing to measure from: no start, only a start, or garbage; the first stamp counts.
    assert parse_phases("attached 12.75\nran 23.00\n") is None
    assert parse_phases("start 10.50\n") is None
    assert parse_phases("start x\nattached\n\n") is None
    assert parse_phases("start 1\nstart 5\nattached 2\n") == {"attach": 1.0, "total": 1.0}


def test_the_run_script_stamps_each_phase_with_the_guests_uptime(tmp_path):
    """The run test's script (not run here: it attaches) stamps each phase, in order, around
    the attach, the workload's end and the detach, with the guest's uptime."""
    script = _run_lines(0, "x.bpf.o", str(tmp_path), "bpftool", 0.5, "spin")
    stamps = [n for n, ln in enumerate(script) if f"{tmp_path}/0.times" in ln]
    names = [script[n].split('echo "', 1)[1].split(" ", 1)[0] for n in stamps]
    assert names == ["start", "attached", "ran", "detached"]
    register = next(n for n, ln in enumerate(script) if "struct_ops register" in ln)
    killed = next(n for n, ln in enumerate(script) if ln.strip().startswith("kill $wl"))
    gone = next(n for n, ln in enumerate(script) if "done" in ln and n > killed)
    assert stamps[0] < register < stamps[1] < killed < stamps[2] < gone < stamps[3]
    lines = [script[n] for n in stamps]
    assert all("< /proc/uptime" in line for line in lines)
    # Builtins only (read and echo): no process start inside the measured phases.
    for line in lines:
        assert "$(" not in line and "cat " not in line


def test_sandbox_problem_names_the_missing_kernel_and_the_remedy(tmp_path):
    missing = tmp_path / "no-such-bzImage"
    settings = Settings(kernel=str(missing), sources={"kernel": "SCHEDC_KERNEL"})
    problem = sandbox_problem(settings)
    assert problem is not None
    assert str(missing) in problem and "SCHEDC_KERNEL" in problem
    for remedy in ("CONFIG_SCHED_CLASS_EXT", "SCHEDC_BPFTOOL", "qemu-system-x86", "virtme-ng"):
        assert remedy in problem
    assert "\n" not in problem


def test_sandbox_problem_without_any_kernel_setting():
    problem = sandbox_problem(Settings())
    assert problem is not None and "SCHEDC_KERNEL is unset" in problem


def test_load_in_sandbox_refuses_before_booting(tmp_path):
    settings = Settings(kernel=str(tmp_path / "missing"))
    with pytest.raises(EnvironmentProblem) as info:
        load_in_sandbox([tmp_path / "x.bpf.o"], settings)
    assert "SCHEDC_KERNEL" in info.value.remedy


@pytest.mark.parametrize("libbpf", [None, "/kit/lib/libbpf.so.1"])
def test_run_only_attaches_just_the_objects_it_names(tmp_path, libbpf):
    copies = [tmp_path / str(n) / f"p{n}.bpf.o" for n in range(3)]
    script = _guest_script(tmp_path, "bpftool", copies, (3, "spin"), libbpf, run_only={1})
    registered = [ln for ln in script.splitlines() if "struct_ops register" in ln]
    assert len(registered) == 1 and str(copies[1]) in registered[0]
    loads = [ln for ln in script.splitlines() if "prog loadall" in ln or "guest_loader" in ln]
    assert all(any(str(c) in ln for ln in loads) for c in copies)  # every one still loads
    every = _guest_script(tmp_path, "bpftool", copies, (3, "spin"), libbpf)
    assert sum("struct_ops register" in ln for ln in every.splitlines()) == 3


# --- one real boot ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def booted(tmp_path_factory) -> tuple[dict[str, LoadReport], list[str]]:
    """Compiles the test objects and verifies all of them in a single boot of the sandbox."""
    settings = load_settings()
    needs_sandbox(settings)
    if not settings.libbpf_include or not settings.btf:
        skip_or_fail("set SCHEDC_LIBBPF_INCLUDE and SCHEDC_BTF (e.g. from the sandbox kit)")
    try:
        clang = find_clang(settings)
    except EnvironmentProblem as exc:
        skip_or_fail(str(exc))
    build = tmp_path_factory.mktemp("sandbox")
    vmlinux_h = subprocess.run(
        [find_bpftool(settings), "btf", "dump", "file", settings.btf, "format", "c"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (build / "vmlinux.h").write_text(vmlinux_h)
    objects = []
    for name in OBJECTS:
        obj = build / f"{name}.bpf.o"
        subprocess.run(
            [clang, "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-D__TARGET_ARCH_x86"]
            + ["-I", str(build), "-I", settings.libbpf_include]
            + ["-c", str(DATA / f"{name}.bpf.c"), "-o", str(obj)],
            check=True,
        )
        objects.append(obj)
    messages: list[str] = []
    reports = load_in_sandbox(objects, settings, progress=messages.append)
    assert [r.object for r in reports] == [str(o) for o in objects]
    return dict(zip(OBJECTS, reports, strict=True)), messages


@pytest.mark.vm
def test_vm_accepts_the_minimal_scheduler(booted):
    good = booted[0]["minimal"]
    assert good.ok, good.log[-3000:]
    assert good.error is None
    assert {p.name for p in good.programs} == {"minimal_select_cpu", "minimal_enqueue"}
    assert all(p.insns_processed and p.insns_processed > 0 for p in good.programs)


@pytest.mark.vm
def test_vm_rejects_the_null_dereference(booted):
    bad = booted[0]["null_deref"]
    assert not bad.ok
    assert bad.error is not None and "map_value_or_null" in bad.error
    # The rejected program's own verifier log is kept (from bpftool -d or the libbpf loader).
    assert "invalid mem access 'map_value_or_null'" in bad.log


@pytest.mark.vm
def test_vm_reports_an_unloadable_object(booted):
    missing = booted[0]["missing_kfunc"]
    assert not missing.ok
    assert missing.error is not None and "scx_bpf_no_such_kfunc" in missing.error


@pytest.mark.vm
def test_vm_reports_progress(booted):
    messages = booted[1]
    assert messages[0].startswith("booting sandbox kernel")
    assert sum(m.startswith("verified ") for m in messages) == len(OBJECTS)


def test_parse_prog_show_gives_verified_instructions():
    text = (
        '@@ fifo_select_cpu\n{"id":5,"type":"struct_ops","name":"fifo_select_cp",'
        '"verified_insns":42}\n'
        "@@ fifo_enqueue\n{\"id\":6,\"name\":\"fifo_enqueue\",\"verified_insns\":17}\n"
        "@@ broken\nError: not a program\n"
    )
    programs = parse_prog_show(text)
    assert [(p.name, p.insns_processed) for p in programs] == [
        ("fifo_select_cpu", 42),  # the pin's full name, not the kernel's 15-character one
        ("fifo_enqueue", 17),
        ("broken", None),
    ]
    report = parse_load_log("fifo.bpf.o", "", 0, text)
    assert report.ok and len(report.programs) == 3
