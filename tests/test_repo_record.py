"""`repo record`: performance records as commits, from options, from JSON files and from
`schedc bench` output; tied to the version they measured."""

from __future__ import annotations

import json

import pytest

from schedc.repo.gitstore import GitStore
from schedc.repo.perf import record_bench_result
from tests import test_repo_support as support
from tests.test_repo_support import (
    cli,
    commit_count,
    git,
    is_clean,
    record_args,
    synthetic,
)

repo_env = support.repo_env
store = support.store  # fixtures


def bench_result(name: str, source: str, values: list[float], base: list[float]) -> dict:
    """The shape `schedc bench --format json` prints for one policy and workload."""
    return {
        "workload": "hackbench",
        "metric": "time",
        "unit": "s",
        "direction": "lower",
        "baseline": {"scheduler": "eevdf", "values": base, "median": sorted(base)[len(base) // 2]},
        "policy": {"name": name, "source": source, "ops": name, "values": values},
        "ratio": {"ratio": 0.9},
        "environment": {
            "kernel": "6.12.117",
            "vcpus": 2,
            "accelerator": "tcg",
            "timing_note": "emulated: compare ratios, not absolute times",
            "where": "sandbox",
            "recipe": {"summary": "hackbench groups", "command": "hackbench -g 4"},
            "date": "2025-02-03T04:05:06Z",
        },
    }


def test_record_from_options_is_one_commit_with_one_file(store: GitStore):
    synthetic(store, "ljf", "longest job first", ("batch",))
    count = commit_count(store.root)
    ran = cli(
        *record_args("ljf", "kernel_build", "101,99", "110", direction="lower"),
        "--value",
        "100",
        "--tunable",
        "slice=15ms",
        "--agent",
        "bot",
        "--format",
        "json",
    )
    assert ran.code == 0, ran.err
    [rec] = ran.result()["records"]
    assert rec["values"] == [101.0, 99.0, 100.0] and rec["n"] == 3 and rec["median"] == 100.0
    assert rec["improvement"] == pytest.approx(10 / 110, rel=1e-5)
    assert rec["policy_version"] == 1 and rec["content_hash"].startswith("sha256:")
    assert rec["tunables"] == {"slice": "15ms"} and rec["agent"] == "bot"
    assert rec["machine"]["cores"] >= 1 and rec["kernel"]
    assert commit_count(store.root) == count + 1 and is_clean(store.root)
    files = list((store.root / "policies/ljf/perf").iterdir())
    assert [f.name for f in files] == [f"{rec['id']}.json"]
    message = git(store.root, "log", "-1", "--format=%B")
    assert message.startswith("record ljf: kernel_build time 100 s (n=3), +9.1% vs eevdf")
    assert f"Schedc-Record: {rec['id']}" in message
    shown = cli("show", "ljf", "--format", "json").result()
    assert shown["best"]["id"] == rec["id"] and shown["meta"]["version"] == 1


def test_record_from_a_file_with_several_records(store: GitStore, tmp_path):
    synthetic(store, "sjf", "shortest job first")
    bench = tmp_path / "bench.json"
    records = [
        {"workload": "web", "metric": "p99_latency", "unit": "ms", "direction": "lower",
         "values": [5, 6], "baseline_values": [8], "baseline_scheduler": "eevdf"},
        {"workload": "web", "metric": "requests", "unit": "req/s", "direction": "higher",
         "values": [1000]},
    ]  # fmt: skip
    bench.write_text(json.dumps({"records": records}))
    count = commit_count(store.root)
    ran = cli("record", "sjf", "--from", str(bench))
    assert ran.code == 0, ran.err
    assert "web p99_latency 5.5 ms (n=2), +31.2% vs eevdf" in ran.out
    assert commit_count(store.root) == count + 1
    assert len(list((store.root / "policies/sjf/perf").iterdir())) == 2
    bench.write_text(json.dumps(records[1]))
    assert cli("record", "sjf", "--from", str(bench)).code == 0


def test_record_from_bench_output_picks_the_named_policy(store: GitStore, tmp_path):
    synthetic(store, "fifo", "fifo")
    both = {"results": [bench_result("fifo", "fifo.sched", [9.0, 9.5], [10.0, 10.2]),
                        bench_result("other", "o.sched", [1.0], [2.0])]}  # fmt: skip
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(both))
    ran = cli("record", "fifo", "--from", str(bench), "--format", "json")
    assert ran.code == 0, ran.err
    [rec] = ran.result()["records"]
    assert (rec["workload"], rec["kernel"], rec["baseline_scheduler"]) == (
        "hackbench",
        "6.12.117",
        "eevdf",
    )
    assert rec["values"] == [9.0, 9.5] and rec["date"] == "2025-02-03T04:05:06Z"
    assert rec["machine"]["cores"] == 2 and "tcg" in rec["notes"]
    assert rec["workload_description"] == "hackbench groups — hackbench -g 4"
    wrong = cli("record", "nope", "--from", str(bench))
    assert wrong.code == 2 and "not 'nope'" in wrong.err


def test_record_from_the_bench_envelope_of_one_policy(store: GitStore, tmp_path):
    """`schedc bench --format json` keeps one result in a list of one too (docs/json.md)."""
    from schedc.cli.output import json_envelope

    synthetic(store, "fifo", "fifo")
    result = bench_result("fifo", "fifo.sched", [9.0, 9.5], [10.0, 10.2])
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(json_envelope("bench", ok=True, results=[result])))
    ran = cli("record", "fifo", "--from", str(bench), "--format", "json")
    assert ran.code == 0, ran.err
    assert ran.json()["command"] == "repo record" and ran.result()["name"] == "fifo"
    [rec] = ran.result()["records"]
    assert rec["workload"] == "hackbench" and rec["values"] == [9.0, 9.5]


def test_bench_metrics_with_spaces_are_accepted(store: GitStore, tmp_path):
    synthetic(store, "fifo", "fifo")
    result = bench_result("fifo", "fifo.sched", [900.0, 950.0], [1000.0])
    result.update(workload="stress-ng", metric="cpu bogo ops/s", unit="bogo ops/s",
                  direction="higher")  # fmt: skip
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(result))
    ran = cli("record", "fifo", "--from", str(bench), "--format", "json")
    assert ran.code == 0, ran.err
    [rec] = ran.result()["records"]
    assert rec["metric"] == "cpu bogo ops/s" and rec["improvement"] == pytest.approx(-0.075)
    found = cli("search", "bogo", "--format", "json").json()
    assert [r["name"] for r in found["results"]] == ["fifo"]


def test_bench_record_hook_files_the_result_under_the_policy_with_that_source(
    store: GitStore, tmp_path
):
    source = "# the measured policy\n"
    synthetic(store, "measured", "a policy", source=source)
    path = tmp_path / "renamed_on_disk.sched"
    path.write_text(source)
    where = record_bench_result(
        str(path), bench_result("whatever", str(path), [1.0, 1.2], [2.0])
    )
    assert "/policies/measured/perf/" in where
    assert len(list((store.root / "policies/measured/perf").iterdir())) == 1
    from schedc.settings import EnvironmentProblem

    missing = tmp_path / "unknown.sched"
    missing.write_text("# not in the repo\n")
    with pytest.raises(EnvironmentProblem, match="not in the policy repository"):
        record_bench_result(str(missing), bench_result("x", "y", [1.0], [1.0]))


def test_record_on_a_missing_policy_commits_nothing(store: GitStore):
    count = commit_count(store.root)
    ran = cli(*record_args("ghost", "w", "1", "2"))
    assert ran.code == 1 and "no policy named 'ghost'" in ran.err
    assert commit_count(store.root) == count and is_clean(store.root)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"workload": "w", "metric": "m", "direction": "lower", "values": [1], "speed": 3},
         "unknown record field(s): speed"),
        ({"workload": "W W", "metric": "m", "direction": "lower", "values": [1]}, "workload id"),
        ({"workload": "w", "metric": "m", "values": [1]}, "direction"),
        ([], "holds no records"),
    ],
)  # fmt: skip
def test_invalid_record_files_are_usage_errors(store: GitStore, tmp_path, content, message):
    synthetic(store, "fifo", "fifo")
    bench = tmp_path / "bad.json"
    bench.write_text(json.dumps(content))
    ran = cli("record", "fifo", "--from", str(bench))
    assert ran.code == 2 and message in ran.err, ran.err
    assert is_clean(store.root)
