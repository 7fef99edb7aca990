"""Host-only: V008 for a libbpf failure before the verifier ran, with a hint per cause, and
the V003 hints keyed on sched_ext's exit message (texts from libbpf 1.5 and 6.12 ext.c)."""

from __future__ import annotations

import pytest

from schedc.verifier.guest_loader import Attempt, OpenOptions, ProgramLoad, load_stage
from schedc.verifier.sandbox import LoadReport, RunReport, parse_loader_json
from schedc.verifier.verify import apply_report, run_diagnostic


def ejected(message: str, reason: str = "runtime error") -> RunReport:
    return RunReport(1.0, "mixed", True, None, False, 4, "x", reason, message, "")


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ("invalid DSQ ID 0x8000000000000001", "SCX_DSQ_GLOBAL"),
        ("DSQ ID 0x0000000000000005 already had FIFO-enqueued tasks", "vtime"),
        ("non-existent DSQ 0x7 for stress-ng[120]", "scx_bpf_create_dsq"),
        ("invalid DSQ ID 0x0000000000000007", "scx_bpf_create_dsq"),
        ("invalid CPU 64 from dispatch", "nr_cpu_ids"),
    ],
)
def test_ejection_hints_follow_the_exit_message(message: str, needle: str) -> None:
    found = run_diagnostic(ejected(message), "p.bpf.c")
    assert found is not None and found.code == "V003"
    assert found.hint is not None and needle in found.hint


def test_a_stall_keeps_its_hint() -> None:
    found = run_diagnostic(
        ejected("dmesg[76] failed to run for 1.499s", "runnable task stall"), "p.bpf.c"
    )
    assert found is not None and found.hint is not None and "ops.dispatch" in found.hint


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        ("failed to open system Kconfig", "SCHEDC_KCONFIG"),
        ("extern (func ksym) 'scx_bpf_nope': not found in kernel or module BTFs", "__weak"),
        ("extern 'nope' (strong): not resolved", "bpf_ksym_exists"),
        ("map 'big': failed to create: Invalid argument(-22)", "map"),
        ("prog 'f': no BTF-based attach target is specified, use bpf_program__set_attach_target()",
         'SEC("fentry/FUNC")'),
    ],
)
def test_a_failure_before_the_verifier_is_v008(error: str, needle: str) -> None:
    report = LoadReport("p.bpf.o", False, f"libbpf: {error}\n", [], error, stage="prepare")
    (found,) = apply_report(report, "p.bpf.c")
    assert found.code == "V008" and error in found.message
    assert "before the kernel verifier ran" in found.message
    assert found.hint is not None and needle in found.hint


def test_a_verifier_rejection_stays_v001_and_co_re_is_v008() -> None:
    rejected = LoadReport("p.bpf.o", False, "", [], "R0 invalid mem access", stage="verifier")
    assert apply_report(rejected, "p.bpf.c")[0].code == "V001"
    core = "failed to resolve CO-RE relocation [4] struct task_struct.nope (0:99 @ offset 0)"
    (found,) = apply_report(LoadReport("p.bpf.o", False, "", [], core, stage="verifier"), "p")
    assert found.code == "V008" and found.hint is not None and "BTF" in found.hint


def test_the_loader_records_the_stage() -> None:
    assert load_stage(Attempt(-2, [], [], opened=False), None) == "open"
    assert load_stage(Attempt(-3, [ProgramLoad("a", True, -1, "")], []), None) == "prepare"
    prog = ProgramLoad("a", True, -1, "R0 !read_ok\n")
    assert load_stage(Attempt(-13, [prog], []), prog) == "verifier"
    data = {"ok": False, "error": "x", "stage": "prepare", "programs": [], "log": ""}
    assert parse_loader_json("o", data).stage == "prepare"


def test_the_open_options_reach_kconfig() -> None:
    # struct bpf_object_open_opts: sz, object_name, relaxed_maps, pin_root_path, a u32, kconfig
    assert OpenOptions.kconfig.offset == 40 and OpenOptions.sz.offset == 0


def test_an_unreadable_kconfig_is_every_objects_error(tmp_path) -> None:
    from schedc.verifier import guest_loader

    status = guest_loader.main(
        ["--libbpf", "/nonexistent/libbpf.so", "--kconfig", str(tmp_path / "missing.config"),
         "--out", str(tmp_path), "a.o"]
    )
    assert status == 1
    record = (tmp_path / "0.json").read_text()
    assert "missing.config" in record and '"stage": "open"' in record


def test_the_guest_script_gives_bpftool_the_kconfig(tmp_path) -> None:
    from schedc.verifier.sandbox import _guest_script

    config = tmp_path / "kernel.config"
    script = _guest_script(tmp_path, "bpftool", [tmp_path / "a.o"], (1.0, "mixed"), "lib.so",
                           None, str(config))
    assert f"--kconfig {config}" in script
    assert "mount -t tmpfs" in script and '/boot/config-$(uname -r)' in script
    assert "--kconfig" not in _guest_script(tmp_path, "bpftool", [tmp_path / "a.o"], None, "l")


def test_the_cause_beats_libbpfs_summary_after_it() -> None:
    from schedc.verifier.guest_loader import loader_message

    # Like libbpf 1.5 in the 6.12 guest for SEC("fentry") without a function (the first two
    # lines were seen there).
    messages = [
        "libbpf: prog 'no_target': no BTF-based attach target is specified, use "
        "bpf_program__set_attach_target()\n",
        "libbpf: prog 'no_target': failed to prepare load attributes: -22\n",
        "libbpf: prog 'no_target': failed to load: -22\n",
        "libbpf: failed to load object '/tmp/x/fentry_notarget.bpf.o'\n",
    ]
    assert loader_message(messages) == (
        "prog 'no_target': no BTF-based attach target is specified, use "
        "bpf_program__set_attach_target()"
    )
