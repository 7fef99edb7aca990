"""`schedc bench`: statistics, output parsers on captured tool output, the recipes run on the
host, the guest script and result reading on made-up guest files, the CLI's early refusals,
and one sandbox boot (marked `vm`) that runs every recipe once with fifo and with a policy the
kernel ejects.

Captured outputs in tests/data/bench/ (Debian 12: rt-tests 2.4, stress-ng 0.15.06):
- hackbench.txt: `hackbench -g 2 -l 100`; hackbench-threads.txt: `hackbench -T -g 1 -f 5 -l 50`
- stress-ng.txt: `stress-ng --cpu 4 --timeout 2s --metrics-brief`; stress-ng-two.txt: the same
  with `--cpu 2 --switch 1 --timeout 1s` (two stressors and a 'miscellaneous metrics' line)
- cyclictest.txt: `cyclictest -q -t 2 -i 1000 -D 2s -h 2000 --policy=other` (one overflow);
  cyclictest-overflow.txt: `-i 500 -h 60` against four CPU hogs (most samples overflow)
- wakebench.txt: the `wakebench` recipe's script on the host (`--cpus 2 --duration 2`: two CPU
  hogs against 2 message threads x 2 workers), schedc/bench/wakebench.c's own output
- *-guest.txt: the recipes' own output in the sandbox guest (Linux 6.12.117, TCG), the
  cyclictest one with fifo attached and its zero rows dropped as the recipe does
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schedc.bench.runner import (
    BASELINE,
    BenchPolicy,
    BenchResult,
    Measurement,
    RunOutcome,
    bench_objects,
    compile_for_bench,
    guest_script,
    plan_measurements,
    read_outcome,
    render_human,
    results_json,
)
from schedc.bench.stats import (
    bootstrap_ratio_interval,
    compare,
    median,
    quantile,
    spread,
)
from schedc.cli import main as schedc_main
from schedc.settings import EnvironmentProblem, find_bpftool
from schedc.verifier.sandbox import boot_guest
from schedc.workloads import (
    RECIPES,
    WAKEBENCH_CFLAGS,
    WAKEBENCH_SOURCE,
    ParseError,
    WorkloadParams,
    _compile_count,
    parse_cyclictest,
    parse_elapsed,
    parse_hackbench,
    parse_stress_ng,
    parse_stress_ng_rows,
    parse_wakebench,
    workload_problems,
)
from tests.conftest import ROOT, needs_sandbox, require_module, skip_or_fail


def bench_main(argv: list[str]) -> int:
    """`schedc bench ARGV` in this process."""
    return schedc_main(["bench", *argv])


DATA = Path(__file__).parent / "data" / "bench"
JSON_KEYS = {
    "workload",
    "metric",
    "unit",
    "direction",
    "baseline",
    "policy",
    "ratio",
    "environment",
}


def captured(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# --- statistics ------------------------------------------------------------------------------


def test_median_and_quantiles():
    assert median([3.0]) == 3.0
    assert median([4.0, 1.0, 3.0]) == 3.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.75) == 3.25  # numpy's 'linear'
    s = spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.minimum, s.maximum, s.q1, s.q3, s.iqr) == (1.0, 5.0, 2.0, 4.0, 2.0)
    with pytest.raises(ValueError):
        median([])


def test_bootstrap_interval_is_deterministic_and_brackets_the_ratio():
    base = [10.0, 10.4, 9.8, 10.1, 10.2]
    pol = [8.0, 8.3, 7.9, 8.1, 8.2]
    lo, hi = bootstrap_ratio_interval(base, pol)
    assert (lo, hi) == bootstrap_ratio_interval(base, pol)
    assert lo <= median(pol) / median(base) <= hi
    assert 0.75 < lo < hi < 0.85


def test_a_clear_difference_is_better_or_worse_by_direction():
    base = [10.0, 10.4, 9.8, 10.1, 10.2]
    faster = [8.0, 8.3, 7.9, 8.1, 8.2]
    lower = compare(base, faster, "lower", policy_name="ljf", baseline_name="EEVDF")
    assert lower.verdict == "better" and lower.ci95 is not None and lower.ci95[1] < 1
    assert lower.value == pytest.approx(8.1 / 10.1)
    assert "ljf is better than EEVDF" in lower.statement and "20% lower" in lower.statement
    assert compare(base, faster, "higher").verdict == "worse"


def test_overlapping_runs_are_within_noise():
    result = compare([10.0, 12.0, 9.0, 11.0], [10.5, 9.5, 11.5, 10.0], "lower")
    assert result.verdict == "within noise"
    assert result.ci95 is not None and result.ci95[0] <= 1 <= result.ci95[1]
    assert "contains 1" in result.statement


def test_too_few_runs_give_a_ratio_without_an_interval():
    result = compare([10.0], [9.0], "lower")
    assert result.value == pytest.approx(0.9) and result.ci95 is None
    assert result.verdict == "inconclusive" and "--runs" in result.statement


def test_no_policy_values_is_a_failure():
    result = compare([1.0, 2.0, 3.0], [], "lower", policy_name="stall")
    assert result.verdict == "failed" and result.value is None
    assert result.to_json() == {
        "value": None,
        "ci95": None,
        "verdict": "failed",
        "statement": "stall completed no run",
    }


# --- parsers, on captured output -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "tasks"),
    [
        ("hackbench.txt", 0.178, 80),
        ("hackbench-threads.txt", 0.003, 10),
        ("hackbench-guest.txt", 0.46, 80),
    ],
)
def test_hackbench_time(name, value, tasks):
    sample = parse_hackbench(captured(name))
    assert sample.value == value and sample.extra["tasks"] == tasks


def test_stress_ng_cpu_rate_of_wall_clock_time():
    sample = parse_stress_ng(captured("stress-ng.txt"))
    assert sample.value == 2023.69
    assert sample.extra == {"bogo_ops": 4054, "real_s": 2.0}
    assert parse_stress_ng(captured("stress-ng-guest.txt")).value == 361.82


def test_stress_ng_rows_skip_headers_and_miscellaneous_metrics():
    rows = parse_stress_ng_rows(captured("stress-ng-two.txt"))
    assert list(rows) == ["cpu", "switch"]
    assert rows["switch"]["ops_per_s"] == 189777.72 and rows["switch"]["bogo_ops"] == 189815
    assert parse_stress_ng(captured("stress-ng-two.txt"), "switch").value == 189777.72


def test_cyclictest_p99_from_the_histogram():
    # 3994 samples in the histogram and 1 overflow: the 3956th smallest is 86 us.
    sample = parse_cyclictest(captured("cyclictest.txt"))
    assert sample.value == 86.0
    assert sample.extra == {
        "samples": 3995,
        "max_us": 3452,
        "overflows": 1,
        "overflow": False,
        "avg_us": 73.5,
    }
    assert parse_cyclictest(captured("cyclictest.txt"), 0.5).value < 86.0


def test_cyclictest_p99_among_overflows_is_the_maximum():
    sample = parse_cyclictest(captured("cyclictest-overflow.txt"))
    assert sample.value == 7865.0 and sample.extra["overflow"] is True
    assert sample.extra["overflows"] == 3457 + 2948


def test_cyclictest_with_zero_rows_dropped():
    sample = parse_cyclictest(captured("cyclictest-guest.txt"))
    assert sample.value == 37056.0 and sample.extra["samples"] == 91
    assert sample.extra["overflow"] is False


def test_wakebench_p99_and_throughput():
    sample = parse_wakebench(captured("wakebench.txt"))
    assert sample.value == 1411.0
    assert sample.extra == {
        "p50_us": 15,
        "p90_us": 72,
        "max_us": 3906,
        "samples": 3658,
        "requests": 3658,
        "threads": 6,
        "requests_per_s": 1828.9,
    }


def test_wakebench_without_wakeups_is_a_parse_error():
    with pytest.raises(ParseError, match="no wake-ups"):
        parse_wakebench("samples 0\nrequests 0\nrequests_per_s 0.0\n")


@pytest.fixture(scope="module")
def wakebench(tmp_path_factory) -> Path:
    """schedc/bench/wakebench.c built as the recipe builds it (one build for the module)."""
    if shutil.which("cc") is None:
        skip_or_fail("wakebench needs cc (apt-get install gcc)")
    binary = tmp_path_factory.mktemp("wakebench") / "wakebench"
    subprocess.run(
        ["cc", *WAKEBENCH_CFLAGS.split(), "-o", str(binary), str(WAKEBENCH_SOURCE)], check=True
    )
    return binary


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-m", "0"], "-m: expected a whole number from 1 to 1024, got '0'"),
        (["-w", "2x"], "-w: expected a whole number from 1 to 1024, got '2x'"),
        (["-d", "0"], "-d: expected seconds from 0.1 to 3600, got '0'"),
        (["-i"], "this option needs a value: '-i'"),
        (["-q"], "unknown option '-q'"),
        (["extra"], "unexpected argument 'extra'"),
        (["-m", "600", "-w", "2"], "-m 600 with -w 2 is 1800 threads; at most 1024"),
    ],
)
def test_wakebench_rejects_bad_arguments(wakebench, args, words):
    proc = subprocess.run([str(wakebench), *args], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"wakebench: {words}"), proc.stderr


def test_wakebench_percentiles_are_ordered_and_count_every_request(wakebench):
    proc = subprocess.run(
        [str(wakebench), "-m", "1", "-w", "3", "-d", "0.3", "-i", "500", "-r", "0"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert proc.returncode == 0, proc.stderr
    sample = parse_wakebench(proc.stdout)
    extra = sample.extra
    assert extra["p50_us"] <= extra["p90_us"] <= sample.value <= extra["max_us"]
    assert extra["threads"] == 4 and extra["samples"] == extra["requests"] > 0
    # one message thread posts to at most its 3 workers per 0.5 ms round
    assert extra["requests_per_s"] <= 3 * 2000


def test_elapsed_between_time_stamps():
    sample = parse_elapsed("start 1700000000.250000000\nnoise\nend 1700000002.750000000\n")
    assert sample.value == pytest.approx(2.5)


@pytest.mark.parametrize(
    "parse", [parse_hackbench, parse_stress_ng, parse_cyclictest, parse_elapsed, parse_wakebench]
)
def test_output_without_the_metric_is_a_parse_error(parse):
    with pytest.raises(ParseError):
        parse("sh: 1: tool: not found\n")


def test_cyclictest_without_wakeups_is_a_parse_error():
    with pytest.raises(ParseError, match="no wakeups"):
        parse_cyclictest("# Max Latencies: 00000\n# Histogram Overflows: 00000\n")


# --- the recipes -----------------------------------------------------------------------------


def test_every_recipe_is_documented_with_metric_unit_and_direction():
    doc = (ROOT / "docs" / "bench.md").read_text()
    for name, recipe in RECIPES.items():
        assert recipe.direction in ("lower", "higher") and recipe.unit and recipe.metric
        assert f"`{name}`" in doc, f"docs/bench.md does not describe {name}"
        script = recipe.script(WorkloadParams())
        for text in (script, recipe.command_line(WorkloadParams())):
            proc = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr


def test_the_cyclictest_recipe_prints_its_histogram_without_the_hogs(tmp_path):
    """Run on this host (SCHED_OTHER threads and two 1 s CPU hogs, nothing attached): the
    histogram is parsed, no hog or watcher outlives the script, and no file is left behind.
    The hogs are killed once cyclictest starts writing: printing 100,000 rows behind them,
    under ljf, waited for the aging bound at every slice."""
    script = RECIPES["cyclictest"].script(WorkloadParams(duration=1, cpus=2))
    lines = script.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("cyclictest "))
    assert any("kill $p" in x for x in lines[:start])  # the watcher, started before it
    run = tmp_path / "run.sh"
    run.write_text(script)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["sh", str(run)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    sample = parse_cyclictest(proc.stdout)
    assert sample.value > 0
    leftover = subprocess.run(["pgrep", "-f", str(run)], capture_output=True, text=True)
    assert leftover.stdout == "", leftover.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.sh"]  # the histogram is gone


def test_recipes_scale_with_their_parameters():
    small, big = WorkloadParams(duration=1, scale=0.5, cpus=2), WorkloadParams(4, 2.0, 4)
    for recipe in RECIPES.values():
        assert recipe.expected_seconds(small) < recipe.expected_seconds(big)
    assert "--timeout 4s" in RECIPES["stress-ng"].script(big)
    assert "--cpu 8" in RECIPES["stress-ng"].script(big)
    assert "-D 4 " in RECIPES["cyclictest"].script(big)
    assert "$b -m 4 -w 2 -d 4 " in RECIPES["wakebench"].script(big)
    assert len(RECIPES["compile"].files(big)) == 24 + 1  # sources and the Makefile


def write_recipe(recipe, params: WorkloadParams, folder: Path) -> Path:
    """The recipe's files and its script in `folder`, as the guest gets them; the script."""
    for rel, text in (recipe.files(params) if recipe.files else {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    script = folder / "run.sh"
    script.write_text(recipe.script(params))
    return script


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_runs_on_this_host_and_parses(name, tmp_path):
    """The same script the guest runs, on the host, tiny: the recipe and its parser agree."""
    recipe = RECIPES[name]
    missing = [
        f"{prog} (apt-get install {pkg})"
        for prog, pkg in recipe.needs
        if shutil.which(prog) is None
    ]
    if missing:
        skip_or_fail(f"workload '{name}' needs {', '.join(missing)}")
    params = WorkloadParams(duration=1, scale=0.2, cpus=2)
    script = write_recipe(recipe, params, tmp_path)
    proc = subprocess.run(
        ["timeout", "60", "sh", str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    sample = recipe.parse(proc.stdout + proc.stderr)
    assert sample.value > 0


def test_compile_warms_the_compiler_before_its_timed_build(tmp_path):
    """A boot's first cc reads cc1 and as from the host over 9p (13 s under TCG): the recipe
    compiles one file before `start`, so the first measured build is not also a cold start."""
    params = WorkloadParams(duration=1, scale=0.2, cpus=2)
    script = write_recipe(RECIPES["compile"], params, tmp_path)
    shim = tmp_path / "bin" / "cc"
    shim.parent.mkdir()
    real = shutil.which("cc")
    if real is None:
        skip_or_fail("workload 'compile' needs cc (apt-get install gcc)")
    shim.write_text(f'#!/bin/sh\necho cc "$@"\nexec {real} "$@"\n')
    shim.chmod(0o755)
    proc = subprocess.run(
        ["timeout", "60", "sh", str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}"},
    )
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("start "))
    assert [line for line in lines[:start] if line.startswith("cc ")] == [
        "cc -O2 -c u0.c -o warm.o"
    ], proc.stdout
    built = [line for line in lines[start:] if line.startswith("cc ")]
    assert len(built) == _compile_count(params), proc.stdout


def test_missing_workload_tools_name_the_package(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _prog: None)
    problems = workload_problems(["hackbench", "batch-makespan", "compile", "nope"])
    assert "workload 'hackbench' needs hackbench: apt-get install rt-tests" in problems
    assert any("apt-get install gcc" in p for p in problems)
    assert any(p.startswith("unknown workload 'nope'") for p in problems)
    assert not any("workload 'batch-makespan'" in p for p in problems)  # a shell is enough


# --- the plan and the guest script -----------------------------------------------------------


def test_plan_interleaves_baseline_and_policies_per_run():
    plan = plan_measurements(["hackbench", "cyclictest"], policies=2, runs=2, warmup=1)
    order = [(m.workload, m.run, m.policy) for m in plan]
    assert order[:7] == [
        ("hackbench", -1, None),  # warm-up
        ("hackbench", 0, None),
        ("hackbench", 0, 0),
        ("hackbench", 0, 1),
        ("hackbench", 1, None),
        ("hackbench", 1, 0),
        ("hackbench", 1, 1),
    ]
    assert [m.index for m in plan] == list(range(14))
    assert plan[0].warmup and not plan[1].warmup


def test_guest_script_attaches_runs_and_detaches(tmp_path):
    plan = plan_measurements(["hackbench"], policies=1, runs=1, warmup=0)
    objects = [tmp_path / "fifo.bpf.o"]
    scripts = {"hackbench": tmp_path / "w" / "run.sh"}
    text = guest_script(tmp_path, "/kit/bpftool", plan, objects, scripts, {"hackbench": 99})
    assert subprocess.run(["sh", "-n", "-c", text]).returncode == 0
    baseline, policy = text.index("measure 0 "), text.index("measure 1 ")
    register = text.index(
        f"/kit/bpftool struct_ops register {objects[0]} /sys/fs/bpf/schedc-bench-1"
    )
    assert baseline < register < policy < text.index("rm -rf /sys/fs/bpf/schedc-bench-1")
    assert f"measure 1 {scripts['hackbench']} 99" in text
    assert text.index("touch $O/1.done") > text.index("$O/1.dmesg")


# --- reading what the guest wrote ------------------------------------------------------------


def _write(outdir: Path, n: int, **files: str) -> None:
    for name, text in files.items():
        (outdir / f"{n}.{name.replace('_', '.')}").write_text(text)


HACKBENCH_OUT = "Running in process mode with 2 groups\nTime: 1.25\n"
ENABLED = "enabled\nenabled\nenabled\n"
STALL_DMESG = (
    '[ 9.4] sched_ext: BPF scheduler "stall" enabled\n'
    '[ 11.0] sched_ext: BPF scheduler "stall" disabled (runnable task stall)\n'
    "[ 11.0] sched_ext: stall: cat[152] failed to run for 1.246s\n"
)
RECIPE = RECIPES["hackbench"]


def test_a_good_policy_run(tmp_path):
    _write(
        tmp_path,
        1,
        done="",
        wall="10.0 12.5",
        rc="0\n",
        out=HACKBENCH_OUT,
        states=ENABLED,
        attach_rc="0\n",
        ops="fifo\n",
        dmesg='sched_ext: BPF scheduler "fifo" disabled (unregistered from user space)\n',
    )
    outcome = read_outcome(tmp_path, Measurement(1, "hackbench", 0, 0), RECIPE, 60, True)
    assert outcome.ok and outcome.value == 1.25 and outcome.seconds == 2.5 and outcome.run == 1


def test_a_policy_ejected_mid_run_fails_with_the_kernels_reason(tmp_path):
    _write(
        tmp_path,
        3,
        done="",
        wall="1 2",
        rc="0\n",
        out=HACKBENCH_OUT,
        states="enabled\nenabled\ndisabled\n",
        attach_rc="0\n",
        dmesg=STALL_DMESG,
    )
    outcome = read_outcome(tmp_path, Measurement(3, "hackbench", 0, 0), RECIPE, 60, True)
    assert not outcome.ok and outcome.value is None
    assert outcome.error == (
        "the kernel ejected the scheduler during the run (runnable task stall): "
        "cat[152] failed to run for 1.246s"
    )
    assert outcome.extra["value_after_ejection"] == 1.25


def test_a_policy_ejected_before_the_run_started(tmp_path):
    _write(
        tmp_path,
        3,
        done="",
        wall="1 2",
        rc="0\n",
        out=HACKBENCH_OUT,
        states="disabled\ndisabled\n",
        attach_rc="0\n",
        dmesg=STALL_DMESG,
    )
    outcome = read_outcome(tmp_path, Measurement(3, "hackbench", 0, 0), RECIPE, 60, True)
    assert outcome.error.startswith("the kernel ejected the scheduler before the run")


def test_a_policy_that_does_not_attach(tmp_path):
    _write(
        tmp_path,
        2,
        done="",
        attach_rc="255\n",
        attach_log="libbpf: struct_ops init_kern: unsupported member\n",
    )
    outcome = read_outcome(tmp_path, Measurement(2, "hackbench", 0, 0), RECIPE, 60, True)
    assert outcome.error == "the scheduler did not attach: struct_ops init_kern: unsupported member"


def test_timeouts_parse_failures_and_unfinished_runs(tmp_path):
    _write(tmp_path, 0, done="", rc="124\n", out="", states="disabled\n")
    outcome = read_outcome(tmp_path, Measurement(0, "hackbench", 0, None), RECIPE, 77, True)
    assert outcome.error == "the run did not finish within 77 s"
    _write(tmp_path, 4, done="", rc="127\n", out="sh: 1: hackbench: not found\n")
    outcome = read_outcome(tmp_path, Measurement(4, "hackbench", 0, None), RECIPE, 77, True)
    assert outcome.error == (
        "hackbench printed no 'Time:' line (exit status 127; sh: 1: hackbench: not found)"
    )
    (tmp_path / "kernel.log").write_text("BUG: kernel NULL pointer dereference\n")
    outcome = read_outcome(tmp_path, Measurement(5, "hackbench", 1, 0), RECIPE, 77, True)
    assert outcome.error == (
        "not measured: the guest stopped before this run ended "
        "(kernel log: BUG: kernel NULL pointer dereference)"
    )


# --- results ---------------------------------------------------------------------------------


def _result(
    name: str = "fifo", policy_values: tuple[float | None, ...] = (1.0, 1.1, 0.9)
) -> BenchResult:
    base = [RunOutcome(i + 1, v) for i, v in enumerate((1.2, 1.3, 1.25))]
    pol = [
        RunOutcome(i + 1, v, None if v is not None else "the kernel ejected the scheduler")
        for i, v in enumerate(policy_values)
    ]
    env = {"kernel": "6.12.117", "vcpus": 2, "accelerator": "tcg", "emulated": True}
    policy = BenchPolicy(name, f"examples/{name}.sched", Path(f"/x/{name}.bpf.o"))
    return BenchResult(RECIPE, policy, base, pol, env, ops=name)


def test_json_shape():
    [data] = results_json([_result()])
    assert set(data) == JSON_KEYS
    assert (data["workload"], data["metric"], data["unit"], data["direction"]) == (
        "hackbench",
        "time",
        "s",
        "lower",
    )
    assert data["baseline"]["scheduler"] == BASELINE == "EEVDF"
    assert data["baseline"]["values"] == [1.2, 1.3, 1.25] and data["baseline"]["median"] == 1.25
    assert data["policy"]["name"] == "fifo" and data["policy"]["median"] == 1.0
    assert data["policy"]["spread"]["min"] == 0.9 and data["policy"]["spread"]["max"] == 1.1
    assert data["ratio"]["value"] == pytest.approx(0.8) and data["ratio"]["verdict"] == "better"
    assert data["environment"]["kernel"] == "6.12.117"
    json.dumps(data)  # serializable as it is


def test_one_result_and_several_have_the_same_shape():
    """`results` is a list also for one policy on one workload (docs/json.md)."""
    from schedc.cli.bench import envelope

    one = envelope([_result("fifo")])
    several = envelope([_result("fifo"), _result("ljf")])
    for data in (one, several):
        assert list(data) == ["schedc", "command", "ok", "error", "diagnostics", "results"]
        assert data["command"] == "bench" and data["ok"] is True and data["error"] is None
        assert data["diagnostics"] == [] and all(set(r) == JSON_KEYS for r in data["results"])
    assert [r["policy"]["name"] for r in one["results"]] == ["fifo"]
    assert [r["policy"]["name"] for r in several["results"]] == ["fifo", "ljf"]
    assert envelope([_result("fifo", (1.0, None, 0.9))])["ok"] is False  # a failed run


def test_failed_runs_are_kept_and_not_counted():
    result = _result(policy_values=(1.0, None, 0.9))
    data = result.to_json()
    assert data["policy"]["values"] == [1.0, 0.9] and data["policy"]["failed_runs"] == 1
    assert data["policy"]["runs"][1]["ok"] is False
    assert not result.ok
    text = render_human([result])
    assert "FAILED" in text and "run 2 failed: the kernel ejected the scheduler" in text
    assert "emulated" in text and "TCG" in text


def test_plot_writes_a_png(tmp_path):
    require_module("matplotlib", "scripts/setup.sh installs it (pip install -e '.[plot]')")
    from schedc.bench.plot import plot_results

    out = plot_results([_result(), _result("ljf", (1.0, None, 1.3))], tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_an_environment_problem(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    from schedc.bench.plot import plot_results

    with pytest.raises(EnvironmentProblem, match="matplotlib"):
        plot_results([_result()], tmp_path / "p.png")
    code = bench_main(["x.sched", "--workload", "hackbench", "--plot", str(tmp_path / "p.png")])
    assert code == 2 and not (tmp_path / "p.png").exists()


# --- the command line, before any boot -------------------------------------------------------


def test_unknown_workload_is_a_usage_error(capsys):
    assert bench_main(["examples/fifo.sched", "--workload", "nope"]) == 2
    assert "unknown workload nope" in capsys.readouterr().err


def test_record_without_a_repository_refuses_before_compiling(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SCHEDC_REPO", str(tmp_path / "empty-repo"))
    policy = tmp_path / "unrecorded.sched"
    policy.write_text((ROOT / "examples" / "fifo.sched").read_text())
    import schedc.cli.bench as cli

    def no_compile(*_args, **_kwargs):
        raise AssertionError("compiled a policy whose results could not be recorded")

    monkeypatch.setattr(cli, "compile_for_bench", no_compile)
    assert bench_main([str(policy), "--workload", "hackbench", "--record"]) == 2
    err = capsys.readouterr().err
    assert "no policy repository at" in err and "empty-repo" in err
    assert not (tmp_path / "empty-repo").exists()  # asking created nothing


def test_policy_that_does_not_compile_is_not_benchmarked(tmp_path, capsys, toolchain, monkeypatch):
    bad = tmp_path / "bad.sched"
    bad.write_text('scheduler bad "x" {\n  class a when task.avg_runtime < 5\n}\n')
    import schedc.cli.bench as cli

    def no_boot(*_args, **_kwargs):
        raise AssertionError("booted for a policy that did not compile")

    monkeypatch.setattr(cli, "check_environment", lambda *_a: None)
    monkeypatch.setattr(cli, "bench_objects", no_boot)
    assert bench_main([str(bad), "--workload", "hackbench"]) == 1
    assert "did not compile" in capsys.readouterr().err
    assert bench_main([str(bad), "--workload", "hackbench", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["results"] == []
    assert data["error"] == {"message": f"not benchmarked: {bad} did not compile", "hint": None}
    assert [d["code"] for d in data["diagnostics"] if d["severity"] == "error"]


def test_missing_sandbox_stops_the_command_before_compiling(monkeypatch, capsys):
    monkeypatch.setenv("SCHEDC_KERNEL", "/nonexistent")
    assert bench_main(["examples/fifo.sched", "--workload", "hackbench", "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert "compiling" not in err
    data = json.loads(out)
    assert data["ok"] is False and data["command"] == "bench" and data["results"] == []
    assert "/nonexistent" in data["error"]["message"] and "SCHEDC_KERNEL" in data["error"]["hint"]


def test_missing_sandbox_is_an_environment_problem(tmp_path, settings, toolchain):
    compiled = compile_for_bench([ROOT / "examples" / "fifo.sched"], settings, tmp_path)
    assert compiled.ok and compiled.policies[0].name == "fifo"
    with pytest.raises(EnvironmentProblem, match="SCHEDC_KERNEL|does not exist"):
        bench_objects(
            compiled.policies, ["hackbench"], settings.with_overrides(kernel="/nonexistent")
        )


# --- one boot: every recipe, fifo and the baseline (a policy the kernel ejects: test_matrix) ---


@pytest.fixture(scope="module")
def benched(settings, toolchain, tmp_path_factory) -> tuple[list[BenchResult], list[str]]:
    needs_sandbox(settings)
    trouble = workload_problems(list(RECIPES))
    if trouble:
        skip_or_fail("; ".join(trouble))
    build = tmp_path_factory.mktemp("bench-build")
    compiled = compile_for_bench([ROOT / "examples" / "fifo.sched"], settings, build)
    assert compiled.ok, compiled.diagnostics
    messages: list[str] = []
    results = bench_objects(
        compiled.policies,
        list(RECIPES),
        settings,
        runs=1,
        warmup=0,
        params=WorkloadParams(duration=1, scale=0.25, cpus=settings.vm_cpus),
        progress=messages.append,
    )
    return results, messages


@pytest.mark.vm
def test_vm_every_recipe_measures_fifo_and_the_baseline(benched):
    results, _ = benched
    fifo = [r for r in results if r.policy.name == "fifo"]
    assert [r.workload.name for r in fifo] == list(RECIPES)
    for r in fifo:
        data = json.loads(json.dumps(r.to_json()))
        assert set(data) == JSON_KEYS
        assert data["workload"] == r.workload.name
        assert data["baseline"]["scheduler"] == "EEVDF" and data["policy"]["name"] == "fifo"
        for side in ("baseline", "policy"):
            assert len(data[side]["values"]) == 1 and data[side]["values"][0] > 0, (
                r.workload.name, side, data[side].get("runs")
            )
            assert data[side]["median"] == data[side]["values"][0]
        assert data["policy"]["ops"] == "fifo"
        assert data["ratio"]["value"] > 0 and data["ratio"]["verdict"] == "inconclusive"
        env = data["environment"]
        assert env["kernel"].startswith("6.") and env["vcpus"] >= 1
        assert env["accelerator"] in ("tcg", "kvm") and "timing_note" in env


@pytest.mark.vm
def test_vm_progress_is_reported_per_run(benched):
    _, messages = benched
    assert messages[0].startswith("booting sandbox kernel")
    runs = [m for m in messages if m.startswith("[")]
    assert len(runs) == 2 * len(RECIPES) and runs[-1].startswith(f"[{len(runs)}/{len(runs)}]")


def test_bench_registers_as_a_subcommand():
    import argparse

    from schedc.cli import add_command
    from schedc.cli.bench import run

    parser = argparse.ArgumentParser(prog="schedc")
    add_command(parser.add_subparsers(dest="command"), "bench")
    args = parser.parse_args(
        [
            "bench",
            "a.sched",
            "b.bpf.o",
            "--workload",
            "hackbench,cyclictest",
            "--workload",
            "stress-ng",
            "--runs",
            "3",
            "--cpus",
            "4",
            "--plot",
            "o.png",
            "--format",
            "json",
        ]
    )
    assert args.func is run
    assert [str(p) for p in args.policies] == ["a.sched", "b.bpf.o"]
    assert args.workload == ["hackbench,cyclictest", "stress-ng"]
    assert (args.runs, args.cpus, args.warmup, args.record) == (3, 4, 1, False)


def test_workload_lists_and_all():
    from schedc.cli.bench import workload_names as _workloads

    assert _workloads(["hackbench, cyclictest", "hackbench"]) == ["hackbench", "cyclictest"]
    assert _workloads(["all"]) == list(RECIPES)


def test_host_mode_refuses_a_host_without_sched_ext(tmp_path, settings, toolchain, monkeypatch):
    import schedc.bench.runner as bench_module  # noqa: PLC0415

    monkeypatch.setattr(
        bench_module,
        "host_kernel_problem",
        lambda settings, attach: "this host's kernel has no sched_ext",
    )
    compiled = compile_for_bench([ROOT / "examples" / "fifo.sched"], settings, tmp_path)
    with pytest.raises(EnvironmentProblem, match="cannot bench on this host") as info:
        bench_objects(compiled.policies, ["hackbench"], settings, where="host")
    assert "leave out --host" in info.value.remedy


def test_host_mode_script_keeps_an_existing_bpffs_and_uses_its_own_pins(tmp_path):
    plan = plan_measurements(["hackbench"], 1, 1, 0)
    script = guest_script(
        tmp_path,
        "bpftool",
        plan,
        [tmp_path / "fifo.bpf.o"],
        {"hackbench": tmp_path / "run.sh"},
        {"hackbench": 60},
        "/sys/fs/bpf/schedc-bench-4242-",
    )
    assert "grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf" in script
    assert "/sys/fs/bpf/schedc-bench-4242-1" in script
    assert "/sys/fs/bpf/schedc-bench-1" not in script


@pytest.mark.vm
def test_vm_bench_host_mode_runs_inside_the_sandbox_guest(settings, toolchain, tmp_path):
    """`schedc bench --host` must attach to the kernel it runs on, and tests never attach to
    this machine: so the command runs inside the sandbox guest, whose kernel has sched_ext.
    The guest sees this checkout and its virtualenv read-only."""
    needs_sandbox(settings)
    if workload_problems(["hackbench"]):
        skip_or_fail("; ".join(workload_problems(["hackbench"])))
    compiled = compile_for_bench([ROOT / "examples" / "fifo.sched"], settings, tmp_path / "b")
    assert compiled.ok
    obj = compiled.policies[0].object_path
    out = tmp_path / "out"
    out.mkdir()
    script = out / "guest.sh"
    env = {
        "PYTHONPATH": str(ROOT),
        "HOME": "/tmp",
        "SCHEDC_CACHE": "/tmp/schedc-cache",
        "SCHEDC_BPFTOOL": find_bpftool(settings),
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = [
        sys.executable, "-m", "schedc", "bench", "--host", str(obj), "--workload", "hackbench",
        "--runs", "1", "--warmup", "0", "--scale", "0.1", "--format", "json",
    ]  # fmt: skip
    script.write_text(
        "#!/bin/sh\n"
        f"O={shlex.quote(str(out))}\n"
        f"cd {shlex.quote(str(ROOT))}\n"
        f"export {exports}\n"
        f"{shlex.join(command)} > $O/bench.json 2> $O/bench.err; echo $? > $O/bench.rc\n"
        "ls /sys/fs/bpf > $O/pins.after; cat /sys/kernel/sched_ext/state > $O/state.after\n"
    )
    status = boot_guest(settings, out, script, 900, lambda _m: None)
    assert status is not None, "the guest did not power off in time"
    err = (out / "bench.err").read_text()
    assert (out / "bench.rc").read_text().strip() == "0", err
    data = json.loads((out / "bench.json").read_text())
    assert data["ok"] is True and data["error"] is None
    [result] = data["results"]  # one result: a list of one, as for several
    assert result["policy"]["name"] == "fifo" and result["policy"]["ops"] == "fifo"
    assert result["baseline"]["values"][0] > 0 and result["policy"]["values"][0] > 0
    env_facts = result["environment"]
    assert env_facts["where"].startswith("host") and env_facts["accelerator"] == "none"
    assert env_facts["emulated"] is False
    assert "attaching each policy" in err and "--host" in err
    # Everything was detached and unpinned when it finished.
    assert (out / "state.after").read_text().strip() == "disabled"
    assert "schedc-bench" not in (out / "pins.after").read_text()
