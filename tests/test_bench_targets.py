"""benchmarks/targets.toml and `benchmarks/report.py --check` (issue 19's regression guard), on
results files in the shape report.py keeps with --json (tests/data/bench/report/, written by
make_results.py there from real BenchResult objects). Host only: nothing boots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from schedc.bench.targets import (
    TargetsError,
    check,
    example_names,
    exit_status,
    line_of,
    load_targets,
    parse_targets,
)
from schedc.workloads import RECIPES

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "benchmarks" / "report.py"
TARGETS = ROOT / "benchmarks" / "targets.toml"
DATA = ROOT / "tests" / "data" / "bench" / "report"
MET = DATA / "results-met.json"
MISSED = DATA / "results-missed.json"
# kept by a real `report.py --check --workload cyclictest --runs 1 --json` on a loaded host
# (2026-12-02, 6.12.117 under TCG): EEVDF's run timed out, some policies' too, one was ejected
REAL = DATA / "results-cyclictest-1run.json"
# The judging tests read this copy of benchmarks/targets.toml as it was when the results above
# were kept (fifo bounded like the others), so a change of the real targets does not move them.
JUDGED = DATA / "targets.toml"
EXAMPLES = example_names(ROOT / "examples")


def report(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPORT), *map(str, args)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )


def targets_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(text: str) -> list[str]:
    with pytest.raises(TargetsError) as caught:
        parse_targets(text, "t.toml", EXAMPLES, list(RECIPES))
    return caught.value.problems


# --- the real file ---------------------------------------------------------------------------


def test_the_real_targets_file_names_existing_examples_and_workloads_and_states_issue_19():
    targets = load_targets(TARGETS, EXAMPLES, list(RECIPES))  # raises on any unknown name
    by = {(t.example, t.workload): t for t in targets.targets}
    assert {t.example for t in targets.targets} == set(EXAMPLES)
    # every example is bounded on cyclictest, or exempt with the trade-off it states
    for example in EXAMPLES:
        t = by[(example, "cyclictest")]
        assert (t.kind, t.bound) == ("within", 1.5) or t.kind in ("better", "exempt"), t
        if t.kind == "exempt":
            assert f"examples/{example}.sched" in (t.reason or "")
    assert by[("ljf", "batch-makespan")].kind == "better"
    assert by[("interactive_boost", "cyclictest")].kind == "better"
    assert by[("vtime_fair", "cyclictest")].from_default


# --- exit status and lines -------------------------------------------------------------------


def test_all_measured_targets_met_exits_0_and_shows_exempt_with_its_reason():
    done = report("--check", "--from-json", MET, "--targets", JUDGED)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "met: vtime_fair on cyclictest (within 1.5x of EEVDF): ratio 1.14, 95% interval " \
           "1.02–1.31; bound ≤ 1.5" in lines
    assert "met: ljf on batch-makespan (better than EEVDF): ratio 0.8, 95% interval " \
           "0.782–0.829, wholly below 1 (lower is better)" in lines
    # a ratio below the bound whose interval reaches past it: the benefit of the doubt, said
    assert any(ln.startswith("met: weighted_share on cyclictest") and
               ln.endswith("(the interval reaches past it: within noise of the bound)")
               for ln in lines)
    exempt = [ln for ln in lines if ln.startswith("exempt: ljf on cyclictest: ratio 81.1")]
    assert len(exempt) == 1 and "not bounded: longest job first on purpose" in exempt[0]
    assert "not measured: fifo on cyclictest (within 1.5x of EEVDF): not in the results" in lines
    assert not any(ln.startswith("MISSED") for ln in lines)
    assert lines[-1] == "27 targets: 4 met, 1 exempt, 22 not measured"


def test_a_miss_exits_1_and_its_line_names_the_example_ratio_interval_and_bound():
    done = report("--check", "--from-json", MISSED, "--targets", JUDGED)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    missed = [ln for ln in lines if ln.startswith("MISSED: ")]
    assert [ln.split(" (")[0] for ln in missed] == [
        "MISSED: deadline on cyclictest",
        "MISSED: fifo on cyclictest",
        "MISSED: interactive_boost on cyclictest",
        "MISSED: ljf on batch-makespan",
    ]
    assert "MISSED: fifo on cyclictest (within 1.5x of EEVDF): ratio 12.9, 95% interval " \
           "11.6–14.4: the whole interval is above the bound 1.5, certainly more than 1.5x " \
           "worse (lower is better)" in lines
    # an ejected run is a miss, with the kernel's reason
    assert missed[0].startswith("MISSED: deadline on cyclictest (within 1.5x of EEVDF): FAILED: "
                                "1 of 5 runs failed (the kernel ejected the scheduler during")
    assert "within noise, not better (the interval must lie below 1" in missed[2]
    assert any(ln.startswith("inconclusive: sjf on cyclictest") and "2 run(s) per side" in ln
               for ln in lines)
    assert lines[-1] == "27 targets: 1 met, 4 missed, 1 inconclusive, 1 exempt, 20 not measured"


def test_direction_higher_is_better_bounds_the_ratio_from_below(tmp_path):
    path = targets_file(tmp_path, "[default]\nstress-ng = { within = 1.5 }\n")
    targets = load_targets(path, EXAMPLES, list(RECIPES))
    met = {j.target.example: j for j in check(targets, json.loads(MET.read_text()))}
    assert met["vtime_fair"].status == "met" and "bound ≥ 0.667" in met["vtime_fair"].detail
    missed = {j.target.example: j for j in check(targets, json.loads(MISSED.read_text()))}
    fifo = missed["fifo"]  # about half EEVDF's bogo ops/s: 2x worse
    assert fifo.status == "missed" and fifo.ratio is not None and fifo.ratio < 0.55
    assert "the whole interval is below the bound 0.667" in fifo.detail
    assert exit_status(list(missed.values())) == 1


def test_an_exempt_example_that_the_kernel_ejected_is_still_a_miss(tmp_path):
    path = targets_file(tmp_path, '[examples.deadline]\ncyclictest = { exempt = "because" }\n')
    judged = check(load_targets(path, EXAMPLES, list(RECIPES)), json.loads(MISSED.read_text()))
    assert [(j.target.example, j.status) for j in judged] == [("deadline", "missed")]
    assert judged[0].detail.startswith("FAILED: 1 of 5 runs failed")
    assert judged[0].detail.endswith("(exempt from the bound, not from working)")
    assert judged[0].line().endswith("(exempt from the bound, not from working)")


def test_results_kept_by_a_real_measurement_are_judged():
    done = report("--check", "--from-json", REAL, "--targets", JUDGED)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "MISSED: vtime_fair on cyclictest (within 1.5x of EEVDF): FAILED: 1 of 1 runs failed " \
           "(the kernel ejected the scheduler during the run (runnable task stall): " \
           "kworker/1:1[358] failed to run for 37.134s)" in lines
    assert "MISSED: ljf on cyclictest: FAILED: 1 of 1 runs failed (the run did not finish " \
           "within 44 s) (exempt from the bound, not from working)" in lines
    assert "inconclusive: fifo on cyclictest (within 1.5x of EEVDF): EEVDF completed no run; a " \
           "target needs an interval to be judged" in lines
    assert "not measured: ljf on batch-makespan (better than EEVDF): not in the results" in lines
    assert lines[-1] == "27 targets: 4 missed, 7 inconclusive, 16 not measured"


def test_bench_json_is_read_in_the_envelope_and_in_the_kept_shapes_before_it(tmp_path):
    """`schedc bench --format json` output: the envelope (docs/json.md), judged as report.py's
    own file with the same results; a lone result object, which schedc printed for one policy
    before the envelope (benchmarks/measured/), as a list of one; a bench that stopped is 2."""
    from schedc.cli.output import json_envelope

    kept = json.loads(MET.read_text())
    envelope = tmp_path / "bench.json"
    envelope.write_text(json.dumps(json_envelope("bench", ok=True, results=kept["results"])))
    own = report("--check", "--from-json", MET, "--targets", JUDGED)
    same = report("--check", "--from-json", envelope, "--targets", JUDGED)
    assert same.returncode == own.returncode == 0 and same.stdout == own.stdout, same.stderr
    lone = tmp_path / "lone.json"
    first = kept["results"][0]
    assert (first["policy"]["name"], first["workload"]) == ("interactive_boost", "cyclictest")
    lone.write_text(json.dumps(first))
    done = report("--check", "--from-json", lone, "--targets", JUDGED)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "met: interactive_boost on cyclictest (better than EEVDF)" in done.stdout
    assert done.stdout.splitlines()[-1] == "27 targets: 1 met, 26 not measured"
    for measured in sorted((ROOT / "benchmarks" / "measured").glob("*.json")):
        done = report("--check", "--from-json", measured, "--targets", JUDGED)
        assert done.returncode in (0, 1) and done.stderr == "", (measured, done.stderr)
    stopped = tmp_path / "stopped.json"
    stopped.write_text(json.dumps(json_envelope("bench", ok=False, error="not benchmarked: x")))
    done = report("--check", "--from-json", stopped, "--targets", JUDGED)
    assert done.returncode == 2
    assert done.stderr == f"{stopped}: the bench did not run: not benchmarked: x\n"


def test_too_few_runs_count_against_the_check_and_a_workload_that_could_not_run_is_2(tmp_path):
    path = targets_file(tmp_path, "[examples.sjf]\ncyclictest = { within = 1.5 }\n")
    judged = check(load_targets(path, EXAMPLES, list(RECIPES)), json.loads(MISSED.read_text()))
    assert [j.status for j in judged] == ["inconclusive"] and exit_status(judged) == 1
    path = targets_file(tmp_path, "[default]\nhackbench = { within = 1.5 }\n")
    done = report("--check", "--from-json", MET, "--targets", path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not measured: fifo on hackbench (within 1.5x of EEVDF): the workload could not run: " \
           "hackbench needs rt-tests (hackbench): apt-get install rt-tests" in done.stdout


# --- bad input -------------------------------------------------------------------------------


def test_a_malformed_targets_file_is_2_with_its_line_and_writes_nothing(tmp_path):
    path = targets_file(tmp_path, "[default]\ncyclictest = { within = 1.5 }\n\n"
                                  "[examples.ljf]\nbatch-makespan = { better = \n")
    out = tmp_path / "README.md"
    done = report("--from-json", MET, "--targets", path, "--out", out)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{path}:5:")
    assert "not valid TOML" in done.stderr
    assert not out.exists() and done.stdout == ""
    assert report("--check", "--from-json", MET, "--targets", path).returncode == 2


def test_an_unknown_example_in_the_targets_is_2_and_names_the_line(tmp_path):
    path = targets_file(tmp_path, "# targets\n[default]\ncyclictest = { within = 1.5 }\n\n"
                                  "[examples.nosuch]\ncyclictest = { better = true }\n")
    done = report("--check", "--from-json", MET, "--targets", path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(
        f"{path}:5: unknown example 'nosuch' (no examples/nosuch.sched); "
        "choose one of: bounded_wait, deadline, "
    )


def test_every_problem_is_reported_at_the_line_of_its_key():
    text = (
        "[default]\n"  # 1
        "cyclictest = { within = -1 }\n"  # 2
        "schbench = { within = 1.5 }\n"  # 3: not a workload (wakebench is ours)
        "stress-ng = { exempt = \"x\" }\n"  # 4: an exemption belongs to an example
        "\n"
        "[examples.ljf]\n"  # 6
        "batch-makespan = { better = false }\n"  # 7
        "cyclictest = { exempt = \"\" }\n"  # 8
        "hackbench = { within = 2, better = true }\n"  # 9
        "compile = { within = 2, because = \"y\" }\n"  # 10
        "\n"
        "[examples.fifo]\n"  # 12
        "cyclictest = 1.5\n"  # 13
        "stress-ng = { exempt = \"z\", reason = \"z\" }\n"  # 14
        "[oops]\n"  # 15
    )
    got = problems(text)
    assert got == [
        "t.toml:15: unknown table or key 'oops'; the file has [default] and [examples.NAME] "
        "tables",
        "t.toml:2: default.cyclictest.within: the bound is a number above 0 (the factor by "
        "which the example may be worse than EEVDF, e.g. 1.5), not -1",
        f"t.toml:3: unknown workload 'schbench'; choose one of: {', '.join(RECIPES)}",
        "t.toml:4: default.stress-ng: an exemption belongs to an example ([examples.NAME]), "
        "with the trade-off its documentation states",
        "t.toml:7: examples.ljf.batch-makespan.better: must be true (for no bound, use "
        "exempt = \"why\"), not False",
        "t.toml:8: examples.ljf.cyclictest.exempt: the reason is a non-empty string: the "
        "trade-off the example makes on purpose, as its documentation states it",
        "t.toml:9: examples.ljf.hackbench: a target has exactly one of within, better, exempt, "
        "not within and better",
        "t.toml:10: examples.ljf.compile: unknown key 'because'; a target has one of within, "
        "better, exempt (and, with within or better, a reason)",
        "t.toml:13: examples.fifo.cyclictest: a target is a table, e.g. { within = 1.5 }, "
        "{ better = true } or { exempt = \"the trade-off it makes on purpose\" }",
        "t.toml:14: examples.fifo.stress-ng: an exemption's text is its reason; drop 'reason'",
    ]


def test_overrides_replace_the_default_for_their_example_only():
    targets = parse_targets(
        "[default]\ncyclictest = { within = 1.5 }\n"
        "[examples.fifo]\ncyclictest = { within = 4, reason = \"arrival order\" }\n"
        "[examples]\nsjf.cyclictest = { better = true }\n",
        "t.toml", ["fifo", "sjf", "vtime_fair"], list(RECIPES),
    )
    assert [(t.example, t.kind, t.bound, t.reason, t.line) for t in targets.targets] == [
        ("fifo", "within", 4.0, "arrival order", 4),
        ("sjf", "better", None, None, 6),
        ("vtime_fair", "within", 1.5, None, 2),
    ]


def test_line_of_finds_tables_keys_and_quoted_names():
    text = '[default]\ncyclictest = { within = 1.5 }\n[examples."ljf"]\n\n"cyclictest" = {}\n'
    assert line_of(text, ["default"]) == 1
    assert line_of(text, ["default", "cyclictest", "within"]) == 2
    assert line_of(text, ["examples", "ljf"]) == 3
    assert line_of(text, ["examples", "ljf", "cyclictest"]) == 5
    assert line_of(text, ["nowhere"]) == 1


def test_a_results_file_that_is_not_report_json_is_2(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text('{"results": [\n  {"workload": "cyclictest"\n')
    done = report("--check", "--from-json", bad)
    assert done.returncode == 2 and done.stderr.startswith(f"{bad}:3:1: not JSON: ")
    bad.write_text(json.dumps({"results": [{"workload": "cyclictest", "policy": {"name": "x"}}]}))
    done = report("--check", "--from-json", bad)
    assert done.returncode == 2
    assert done.stderr == f"{bad}: result 1 is not a bench result: it has no 'direction'\n"
    data = json.loads(MET.read_text())
    data["results"][2]["ratio"]["ci95"] = ["1.0", 2]
    bad.write_text(json.dumps(data))
    done = report("--check", "--from-json", bad)
    assert done.returncode == 2 and done.stderr == (
        f"{bad}: result 3 is not a bench result: its ratio's value or ci95 is not a number "
        "(or a pair of them)\n"
    )


# --- the README's section --------------------------------------------------------------------


def test_the_generated_readme_shows_each_targets_status(tmp_path):
    out = tmp_path / "README.md"
    done = report("--from-json", MISSED, "--out", out, "--targets", JUDGED)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "## Targets (`tests/data/bench/report/targets.toml`)" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| fifo | cyclictest |")]
    assert rows == ["| fifo | cyclictest | within 1.5x of EEVDF | **MISSED** | ratio 12.9, 95% "
                    "interval 11.6–14.4: the whole interval is above the bound 1.5, certainly "
                    "more than 1.5x worse (lower is better) |  |"]
    assert "| ljf | cyclictest | exempt | exempt | ratio 81.1, 95% interval 72.8–90.5; not " \
           "bounded | longest job first on purpose: " in text
    assert "| ljf | batch-makespan | better than EEVDF | **MISSED** |" in text
    assert "27 targets: 1 met, 4 missed, 1 inconclusive, 1 exempt, 20 not measured." in text
    # the section sits between the summary table and the per-workload sections
    assert text.index("## Summary") < text.index("## Targets") < text.index("## cyclictest")


def test_regenerating_the_readme_keeps_the_other_benchmarks_sections(tmp_path):
    out = tmp_path / "README.md"
    marker = "<!-- report.py keeps what follows: figures of the other benchmarks -->"
    tail = f"{marker}\n\n## CLI start-up\n\nfigures measured by another script\n"
    out.write_text("# Policy benchmarks\n\nstale figures: 1.5 of something\n\n" + tail)
    assert report("--from-json", MISSED, "--out", out, "--targets", JUDGED).returncode == 0
    text = out.read_text()
    assert "stale figures" not in text and "## Summary" in text
    assert text.endswith(tail) and text.count(marker) == 1
    out.write_text("no marker: nothing is kept\n")
    assert report("--from-json", MISSED, "--out", out, "--targets", JUDGED).returncode == 0
    assert "nothing is kept" not in out.read_text()


def _report_module():
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("report_script", REPORT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_measures_the_kernels_scx_simple_as_a_reference(settings, toolchain, tmp_path):
    """The reference row: the kit's kernel examples' scx_simple, compiled with their headers;
    without the kernel_examples setting the report goes on without it."""
    import dataclasses  # noqa: PLC0415

    from tests.conftest import KERNEL_EXAMPLES_REMEDY, kernel_examples_dir, skip_or_fail

    folder = kernel_examples_dir()
    if folder is None:
        skip_or_fail(KERNEL_EXAMPLES_REMEDY)
    report_script = _report_module()
    with_examples = dataclasses.replace(settings, kernel_examples=str(folder))
    policy = report_script.reference_policy(with_examples, tmp_path / "ref")
    assert policy.name == "scx_simple" and policy.source == str(folder / "scx_simple.bpf.c")
    assert Path(policy.object_path).read_bytes()[:4] == b"\x7fELF"
    without = dataclasses.replace(settings, kernel_examples=str(tmp_path / "none"))
    assert report_script.reference_policy(without, tmp_path / "ref2") is None
