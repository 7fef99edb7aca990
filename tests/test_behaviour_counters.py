"""The policy's counters in behaviour reports, without a VM: the names by index (from the DSL
policy and from the C schedc generates), the per-CPU totals of a map dump that the sandbox
guest's bpftool wrote (tests/data/behaviour/tunables_counters.counters.json, a real dump of
examples/tunables_counters.sched after a run), the guest script that dumps the map only for an
object that has it, and the report's JSON, human and stored forms. tests/test_repo_behaviour_vm.py
reads them on a real boot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from schedc.behaviour.counters import (
    has_counter_map,
    named,
    names_of_c,
    names_of_policy,
    totals,
)
from schedc.behaviour.expect import ExpectationResult
from schedc.behaviour.report import ScenarioResult, render_human, results_json, total_counters
from schedc.behaviour.run import Case, RunInfo, Step, guest_script, plan_steps, read_counters
from schedc.behaviour.scenario import load_scenario
from schedc.bench.runner import BenchPolicy
from schedc.compiler.pipeline import translate
from schedc.repo.evidence import load_scenario_file, report_of
from schedc.repo.models import BehaviourReport

ROOT = Path(__file__).resolve().parent.parent
DUMP = ROOT / "tests" / "data" / "behaviour" / "tunables_counters.counters.json"
TUNABLES = ROOT / "examples" / "tunables_counters.sched"
NAMES = ("light_enqueued", "heavy_enqueued", "direct_dispatches", "aged", "wakeups")


def test_names_by_index_from_the_policy_and_from_its_generated_c():
    translated = translate(TUNABLES)
    assert names_of_policy(translated.policy) == NAMES
    assert names_of_c(translated.c_text) == NAMES
    fifo = translate(ROOT / "examples" / "fifo.sched")
    assert names_of_policy(fifo.policy) == () and names_of_c(fifo.c_text) == ()
    assert names_of_c("/* Counters (per-CPU map schedc_counters, key = index): */") == ()


def test_totals_sum_the_cpus_of_a_real_dump_formatted_or_raw():
    text = DUMP.read_text()
    got = totals(text)
    entries = json.loads(text)
    assert sorted(got) == list(range(len(NAMES)))
    for entry in entries:
        per_cpu = [v["value"] for v in entry["formatted"]["values"]]
        assert len(per_cpu) == 4 and got[entry["formatted"]["key"]] == sum(per_cpu)
    raw = json.dumps([{k: v for k, v in e.items() if k != "formatted"} for e in entries])
    assert totals(raw) == got  # without BTF: little-endian bytes
    assert got[0] > 0 and got[1] > 0  # light and heavy tasks were enqueued
    for bad in ("", "{}", '[{"key": 0}]', '[{"key": 0, "values": [{"cpu": 0, "value": "x"}]}]'):
        with pytest.raises(ValueError):
            totals(bad)


def test_names_and_unknown_keys():
    assert named({1: 5, 0: 2}, ("a", "b")) == {"a": 2, "b": 5}
    assert named({0: 1, 2: 3}, ("a",)) == {"a": 1, "#2": 3}
    assert total_counters([{"a": 1, "b": 2}, {"a": 10, "b": 0}]) == {"a": 11, "b": 2}
    assert total_counters([]) == {}


def test_the_guest_dumps_the_map_of_an_object_that_has_one(tmp_path: Path):
    with_map = tmp_path / "t.bpf.o"
    with_map.write_bytes(b"\x7fELF\0...schedc_counters\0...")
    without = tmp_path / "f.bpf.o"
    without.write_bytes(b"\x7fELF\0...schedc_tasks\0...")
    assert has_counter_map(with_map) and not has_counter_map(without)
    assert not has_counter_map(tmp_path / "missing.bpf.o")
    s = load_scenario(ROOT / "examples" / "tunables_counters.scenario.toml")
    cases = [
        Case(s, [BenchPolicy("t", "t.sched", with_map, NAMES), BenchPolicy("f", "f", without)])
    ]
    steps = plan_steps(cases, 1)
    objects = {(0, 0): with_map, (0, 1): without}
    text = guest_script(
        tmp_path, "/bpftool", steps, cases, objects, {0: tmp_path / "0.json"}, tmp_path / "r.py"
    )
    runs = text.split("touch $O/")
    [dumping] = [r for r in runs if "map dump" in r]
    assert "/bpftool -j map dump id" in dumping and "$O/1/counters.json" in dumping
    # dumped while attached: before the end state is read and the pin removed
    assert dumping.index("map dump") < dumping.index("$O/1.end") < dumping.index("rm -rf")


def test_reading_a_run_s_dump(tmp_path: Path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "counters.json").write_text(DUMP.read_text())
    (tmp_path / "1.counters.err").write_text("")
    info = RunInfo(Step(1, 0, 0, 0))
    read_counters(tmp_path, 1, info)
    assert info.counters == totals(DUMP.read_text()) and info.counters_error is None
    assert info.to_json(NAMES)["counters"] == named(info.counters, NAMES)
    (tmp_path / "2.counters.err").write_text("no schedc_counters map was loaded\n")
    broken = RunInfo(Step(2, 0, 0, 0))
    read_counters(tmp_path, 2, broken)
    assert broken.counters == {} and "no schedc_counters map" in str(broken.counters_error)
    none = RunInfo(Step(3, 0, 0, 0))
    read_counters(tmp_path, 3, none)  # an object without the map: nothing was dumped
    assert none.counters is None and none.to_json(NAMES)["counters"] == {}
    assert "counters" not in RunInfo(Step(0, 0, 0, None)).to_json()  # the baseline


def _result(counters: dict[str, int]) -> ScenarioResult:
    s = load_scenario(ROOT / "examples" / "tunables_counters.scenario.toml")
    enabled = ExpectationResult("enabled", [], "stays enabled", 1.0, None, True, None, "runs")
    return ScenarioResult(
        "tunables_counters",
        str(TUNABLES),
        s.name,
        s.path,
        "6.12.117",
        "tcg",
        [enabled],
        {"count": 8, "failed": []},
        {},
        [{}, {}],
        counters=counters,
    )


def test_the_report_shows_and_stores_the_counters():
    counts = named(totals(DUMP.read_text()), NAMES)
    result = _result(counts)
    [item] = results_json([result])
    assert item["counters"] == counts and list(item["counters"]) == list(NAMES)
    assert "counters (sum of 2 runs): light_enqueued " in render_human([result])
    assert results_json([_result({})])[0]["counters"] == {}
    assert "\n  counters" not in render_human([_result({})])
    given = load_scenario_file(ROOT / "examples" / "tunables_counters.scenario.toml")
    stored = report_of(result, given, "sha256:" + "0" * 64, runs=2)
    assert stored.counters == counts
    again = BehaviourReport.model_validate_json(stored.model_dump_json())
    assert again.counters == counts


def test_stored_counters_are_validated_and_old_reports_still_read():
    given = load_scenario_file(ROOT / "examples" / "tunables_counters.scenario.toml")
    data = report_of(_result({"a": 1}), given, "sha256:" + "0" * 64, runs=1).model_dump(mode="json")
    del data["counters"]  # a report stored before counters were
    assert BehaviourReport.model_validate(data).counters == {}
    for bad in ({"a": -1}, {"no spaces": 1}, {"a": 1.5}, {f"c{i}": 1 for i in range(65)}):
        with pytest.raises(ValidationError):
            BehaviourReport.model_validate({**data, "counters": bad})
    assert BehaviourReport.model_validate({**data, "counters": {"#3": 4}}).counters == {"#3": 4}
