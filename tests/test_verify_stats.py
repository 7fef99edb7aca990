"""`schedc verify --stats` and `--compare`: the verifier's figures per program, like veristat,
rendered from the verdicts the sandbox returns (the VM run of both: test_verify.py's CLI test).
"""

from __future__ import annotations

import json

import pytest

from schedc.cli import main as schedc_main
from schedc.cli.verify import compare, compare_table, phases_line, stats_table
from schedc.verifier.sandbox import ProgramReport
from schedc.verifier.verify import KernelVerdict, VerifyResult


def _verdict(kernel: str, *programs: ProgramReport) -> KernelVerdict:
    return KernelVerdict(kernel, True, list(programs), None, None)


def _result(policy: str, *kernels: KernelVerdict) -> VerifyResult:
    return VerifyResult(policy, ok=True, stage="verifier", kernels=list(kernels))


FIFO = _verdict(
    "6.12.117",
    ProgramReport("fifo_enqueue", 120, 10, 50, 8),
    ProgramReport("fifo_dispatch", 80, 8, 40, 6),
)
LJF = _verdict(
    "6.12.117",
    ProgramReport("ljf_enqueue", 180, 16, 70, 12),
    ProgramReport("ljf_dispatch", 80, 8, 41, 6),
    ProgramReport("ljf_running", 30, 2, 9, None),
)


def test_stats_table_lists_every_program_and_the_totals():
    lines = stats_table(FIFO)
    assert lines[0].strip() == "verifier statistics on 6.12.117:"
    header, *rows = (line.split() for line in lines[1:])
    assert header == ["program", "insns", "states", "peak", "time_us"]
    assert rows == [
        ["fifo_enqueue", "120", "10", "8", "50"],
        ["fifo_dispatch", "80", "8", "6", "40"],
        ["total", "200", "18", "14", "90"],
    ]
    widths = {len(line) for line in lines[1:]}
    assert len(widths) == 1  # right-aligned columns: every row as wide as the header


def test_compare_matches_programs_by_callback_and_shows_the_difference():
    [c] = compare(_result("fifo.sched", FIFO), _result("ljf.sched", LJF))
    assert [row[0] for row in c.rows] == ["enqueue", "dispatch", "running"]
    lines = compare_table(c, "fifo.sched", "ljf.sched")
    assert lines[0].strip() == "A = fifo.sched, B = ljf.sched, on 6.12.117:"
    table = {line.split()[0]: line for line in lines[2:]}
    assert table["enqueue"].split() == ["enqueue", "120", "180", "+60", "(+50%)", "8", "12",
                                        "+4", "(+50%)"]
    assert table["dispatch"].split()[1:4] == ["80", "80", "+0"]
    assert table["running"].split() == ["running", "-", "30", "-", "-", "-", "-"]
    assert table["total"].split()[1:3] == ["200", "290"]


def test_compare_covers_the_kernels_both_were_loaded_on():
    other = _verdict("7.2.13", ProgramReport("fifo_enqueue", 130, 11, 55, 9))
    a = _result("a.sched", FIFO, other)
    b = _result("b.sched", LJF)
    assert [c.kernel for c in compare(a, b)] == ["6.12.117"]
    data = compare(a, b)[0].to_json()
    assert data["programs"][0] == {
        "callback": "enqueue",
        "a": {"name": "fifo_enqueue", "insns": 120, "states": 10, "peak": 8, "time_us": 50},
        "b": {"name": "ljf_enqueue", "insns": 180, "states": 16, "peak": 12, "time_us": 70},
    }
    json.dumps(data)  # plain JSON


def test_compare_needs_exactly_two_policies(capsys, tmp_path):
    one = tmp_path / "a.sched"
    one.write_text("")
    assert schedc_main(["verify", "--compare", str(one)]) == 2
    assert "--compare needs exactly two policies, got 1" in capsys.readouterr().err


def test_options_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        schedc_main(["verify", "--help"])
    out = capsys.readouterr().out
    assert "--stats" in out and "--compare" in out


def test_stats_says_where_a_run_tests_guest_time_went():
    line = phases_line({"attach": 1.24, "run": 10.51, "detach": 0.6, "total": 12.35})
    assert line.strip() == (
        "run test: attach 1.2 s, run 10.5 s, detach 0.6 s (12.3 s of guest time)"
    )
    # A run cut short (the guest stopped before the workload ended): only what was stamped.
    assert phases_line({"attach": 2.0, "total": 2.0}).strip() == (
        "run test: attach 2.0 s (2.0 s of guest time)"
    )
