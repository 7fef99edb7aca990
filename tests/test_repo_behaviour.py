"""Behaviour evidence in the repository, without a VM: the stored report model refuses a
hand edit that would turn failing evidence into passing evidence, `repo add` stores reports
per scenario and kernel beside the verification (here the reports of an earlier test, the path
MCP submit_policy takes after test_policy; tests/test_repo_behaviour_vm.py runs a real one),
`repo show` prints them, `repo search --behaviour-passing` finds only passing ones, and a bad
scenario is refused before anything is compiled or committed.

The reports below are what `schedc test` returns (ScenarioResult, ExpectationResult), built
as data: this file tests storing and showing them, not measuring them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from schedc.behaviour.expect import ExpectationResult
from schedc.behaviour.report import ScenarioResult
from schedc.repo import layout
from schedc.repo.add import AddOptions, add_policy
from schedc.repo.entries import load_entry, verification_of
from schedc.repo.evidence import ScenarioInput, load_scenario_file, report_of
from schedc.repo.fsck import fsck
from schedc.repo.gitstore import GitStore
from schedc.repo.models import (
    MAX_BEHAVIOUR_REPORTS,
    BehaviourReport,
    VerificationReport,
    merge_behaviour,
)
from tests import test_repo_support as support
from tests.conftest import ROOT
from tests.test_repo_support import cli, commit_count, git, is_clean

repo_env = support.repo_env
store = support.store  # fixtures

EXAMPLES = ROOT / "examples"
FIFO = EXAMPLES / "fifo.sched"
LJF = EXAMPLES / "ljf.sched"


def content_hash(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def scenario(name: str = "fifo") -> ScenarioInput:
    return load_scenario_file(EXAMPLES / f"{name}.scenario.toml")


def report(
    policy: Path,
    given: ScenarioInput,
    *,
    failing: bool = False,
    kernel: str = "6.12.3",
) -> BehaviourReport:
    """A `schedc test` result for `policy` on `given`, as the behaviour runner returns it."""
    explicit = [
        ExpectationResult(
            e.kind,
            e.groups(),
            f"the expectation at line {e.line}",
            0.25 if not failing or i else 0.75,
            0.5,
            not failing or i > 0,
            e.line,
            "fraction",
            "a late spinner waited 750 ms" if failing and i == 0 else "",
        )
        for i, e in enumerate(given.scenario.expect)
    ]
    implicit = [
        ExpectationResult("enabled", [], "stays enabled", 1.0, None, True, None, "runs"),
        ExpectationResult("exited", [], "exit 0", 0.0, 0.0, True, None, "failed processes"),
    ]
    result = ScenarioResult(
        policy=policy.stem,
        policy_source=str(policy),
        scenario=given.scenario.name,
        scenario_path=given.scenario.path,
        kernel=kernel,
        accel="tcg",
        expectations=implicit + explicit,
        processes={"count": 8, "failed": [], "runs": [[{"pid": 1}] * 8]},
        baseline_processes={},
        runs=[],
    )
    return report_of(result, given, content_hash(policy), runs=1)


def add(store: GitStore, settings, policy: Path, reports: list[BehaviourReport], **more):
    scenarios = more.pop("scenarios", None) or [scenario(r.scenario) for r in reports]
    options = AddOptions(verify="never", scenarios=scenarios, tested=reports, **more)
    return add_policy(store, policy, settings, options)


def stored(store: GitStore, name: str) -> VerificationReport:
    entry = load_entry(store, name)
    assert entry is not None
    found, problem = verification_of(entry)
    assert found is not None, problem
    return found


# -- the model ---------------------------------------------------------------------------------
def test_a_report_is_passing_only_when_every_expectation_held():
    good = report(FIFO, scenario())
    bad = report(FIFO, scenario(), failing=True)
    assert good.ok is True and bad.ok is False
    assert [e.kind for e in bad.failed] == ["starvation"]
    assert bad.failed[0].line == scenario().scenario.expect[0].line  # the scenario's line
    # The stored form keeps only the failed processes, not every process of every run.
    assert good.processes == {"count": 8, "failed": []}


def test_a_hand_edit_cannot_turn_failing_evidence_into_passing_evidence():
    data = report(FIFO, scenario(), failing=True).model_dump(mode="json")
    data["ok"] = True
    with pytest.raises(ValidationError, match="an expectation failed"):
        BehaviourReport.model_validate(data)
    data["ok"] = False
    data["scenario_text"] += "\n# edited"
    with pytest.raises(ValidationError, match="scenario_hash is not the hash"):
        BehaviourReport.model_validate(data)


def test_one_report_per_scenario_and_kernel_and_merging_replaces_only_that_one():
    a = report(FIFO, scenario(), kernel="6.12.3")
    b = report(FIFO, scenario(), kernel="6.13.0")
    a2 = report(FIFO, scenario(), kernel="6.12.3", failing=True)
    merged = merge_behaviour([a, b], [a2])
    assert [(r.kernel, r.ok) for r in merged] == [("6.13.0", True), ("6.12.3", False)]
    base = stored_report_data()
    with pytest.raises(ValidationError, match="two behaviour reports for scenario 'fifo'"):
        VerificationReport.model_validate({**base, "behaviour": [a.model_dump(), a2.model_dump()]})
    many = [a.model_copy(update={"kernel": f"6.{i}.0"}) for i in range(MAX_BEHAVIOUR_REPORTS)]
    with pytest.raises(ValueError, match=f"at most {MAX_BEHAVIOUR_REPORTS} behaviour reports"):
        merge_behaviour(many, [a.model_copy(update={"kernel": "7.0.0"})])


def stored_report_data() -> dict[str, object]:
    return {
        "summary": {"status": "unverified", "stage": "check", "date": "2026-01-01T00:00:00Z"},
        "target_kernel": "6.12",
    }


# -- repo add, show ----------------------------------------------------------------------------
def test_add_stores_the_report_beside_the_verification_and_show_prints_it(
    toolchain, settings, store
):
    result = add(store, settings, FIFO, [report(FIFO, scenario())])
    assert result.status == "added" and result.ok and result.behaviour_ok is True
    kept = stored(store, "fifo")
    assert kept.summary.status == "unverified"
    assert [(r.scenario, r.kernel, r.ok) for r in kept.behaviour] == [("fifo", "6.12.3", True)]
    assert kept.behaviour[0].scenario_text == (EXAMPLES / "fifo.scenario.toml").read_text()
    log = git(store.root, "log", "-1", "--format=%B")
    assert "Schedc-Behaviour: fifo passing on 6.12.3" in log
    payload = result.to_json()
    assert payload["ok"] is True and payload["behaviour_ok"] is True
    first = payload["behaviour"][0]["expectations"][0]  # type: ignore[index]
    assert set(first) >= {"kind", "groups", "expected", "measured", "baseline", "ok"}

    shown = cli("show", "fifo")
    assert shown.code == 0, shown.err
    assert "behaviour" in shown.out
    assert "fifo on 6.12.3 (tcg, emulated timings): passing, 4/4 expectations held" in shown.out
    assert "ok   starvation  late" in shown.out
    as_json = cli("show", "fifo", "--format", "json").result()
    behaviour = as_json["verification"]["behaviour"]
    assert behaviour[0]["scenario_hash"] == scenario().hash
    assert behaviour[0]["scenario_text"].startswith("# fifo.sched claims")


def test_a_failing_report_is_stored_marked_failed_and_the_add_says_so(toolchain, settings, store):
    result = add(store, settings, FIFO, [report(FIFO, scenario(), failing=True)])
    assert result.status == "added"
    assert result.ok is False and result.behaviour_ok is False
    kept = stored(store, "fifo")
    assert kept.behaviour[0].ok is False
    assert "Schedc-Behaviour: fifo failing on 6.12.3" in git(store.root, "log", "-1", "--format=%B")
    shown = cli("show", "fifo")
    assert "FAILING, 3/4 expectations held" in shown.out
    assert "FAIL starvation  late" in shown.out
    listed = cli("search", "--behaviour-passing", "--format", "json").json()
    assert listed["results"] == []


def test_reports_of_the_same_source_stay_per_kernel_and_a_new_source_drops_them(
    toolchain, settings, store, tmp_path
):
    add(store, settings, FIFO, [report(FIFO, scenario(), kernel="6.12.3")])
    add(store, settings, FIFO, [report(FIFO, scenario(), kernel="6.13.1", failing=True)])
    kept = stored(store, "fifo")
    assert sorted((r.kernel, r.ok) for r in kept.behaviour) == [
        ("6.12.3", True),
        ("6.13.1", False),
    ]
    changed = tmp_path / "fifo.sched"
    changed.write_text(FIFO.read_text().replace("scheduler fifo", "# changed\nscheduler fifo"))
    result = add_policy(store, changed, settings, AddOptions(verify="never"))
    assert result.status == "added"
    assert stored(store, "fifo").behaviour == []  # measured on other code


def test_a_report_of_another_source_is_not_reused(toolchain, settings, store, monkeypatch):
    """submit_policy's reuse is for the very source tested: LJF's report does not count for
    FIFO. Without a sandbox the add must then stop, before anything is committed."""
    monkeypatch.setenv("SCHEDC_KERNEL", str(Path("/nonexistent/bzImage")))
    before = commit_count(store.root)
    from schedc.settings import EnvironmentProblem, load_settings  # noqa: PLC0415

    with pytest.raises(EnvironmentProblem, match="sandbox"):
        add(store, load_settings(cache_dir=settings.cache_dir), FIFO, [report(LJF, scenario())])
    assert commit_count(store.root) == before and is_clean(store.root)


def test_fsck_reports_a_hand_edited_report(toolchain, settings, store):
    add(store, settings, FIFO, [report(FIFO, scenario(), failing=True)])
    path = store.root / layout.policy_file("fifo", layout.VERIFICATION)
    data = json.loads(path.read_text())
    data["behaviour"][0]["ok"] = True
    path.write_text(json.dumps(data, indent=2) + "\n")
    git(store.root, "commit", "-qam", "hand edit: claim it passes")
    found, _count = fsck(store)
    assert any(d.code == "R110" and "an expectation failed" in d.message for d in found), found


# -- search ------------------------------------------------------------------------------------
def test_search_behaviour_passing_finds_only_policies_with_a_passing_report(
    toolchain, settings, store
):
    add(store, settings, FIFO, [report(FIFO, scenario(), kernel="6.12.3")])
    add(store, settings, LJF, [report(LJF, scenario("ljf"), failing=True)])
    add_policy(store, EXAMPLES / "sjf.sched", settings, AddOptions(verify="never"))

    def names(*args: str) -> list[str]:
        ran = cli("search", *args, "--format", "json")
        assert ran.code == 0, ran.err
        return sorted(r["name"] for r in ran.json()["results"])

    assert names() == ["fifo", "ljf", "sjf"]
    assert names("--behaviour-passing") == ["fifo"]
    assert names("--behaviour-passing", "--kernel", "6.12") == ["fifo"]
    assert names("--behaviour-passing", "--kernel", "6.13") == []
    # A failing report on another kernel: no longer passing overall, still passing on 6.12.
    add(store, settings, FIFO, [report(FIFO, scenario(), kernel="6.13.1", failing=True)])
    assert names("--behaviour-passing") == []
    assert names("--behaviour-passing", "--kernel", "6.12") == ["fifo"]
    assert names("--behaviour-passing", "--kernel", "6.13") == []
    add(store, settings, FIFO, [report(FIFO, scenario(), kernel="6.13.1")])  # fixed there
    assert names("--behaviour-passing") == ["fifo"]
    found = cli("search", "--format", "json").json()
    by_name = {r["name"]: r for r in found["results"]}
    assert by_name["ljf"]["behaviour"] == [
        {"scenario": "ljf", "kernel": "6.12.3", "ok": False, "held": 4, "expectations": 5}
    ]
    assert by_name["sjf"]["behaviour"] == []
    human = cli("search", "fifo")
    assert "behaviour: fifo passing on 6.12.3" in human.out


# -- bad scenarios -----------------------------------------------------------------------------
def test_a_bad_scenario_is_refused_at_its_line_before_anything_happens(toolchain, store, tmp_path):
    bad = tmp_path / "bad.scenario.toml"
    bad.write_text('duration = "1s"\n\n[[group]]\nname = "a"\ncomm = "a"\nspin = {}\nnice = 40\n')
    before = commit_count(store.root)
    ran = cli("add", str(FIFO), "--scenario", str(bad), "--format", "json")
    assert ran.code == 2, ran.out
    assert ran.json()["ok"] is False and ran.json()["results"] == []
    assert ran.json()["error"]["message"] == "not added: a scenario file has errors"
    diag = ran.json()["diagnostics"][0]
    assert (diag["code"], diag["line"]) == ("T002", 7)
    assert "nice" in diag["message"]
    missing = cli("add", str(FIFO), "--scenario", str(tmp_path / "none.toml"))
    assert missing.code == 2 and "cannot read the scenario" in missing.err
    one = tmp_path / "one" / "fifo.scenario.toml"
    other = tmp_path / "two" / "fifo.scenario.toml"
    for p in (one, other):
        p.parent.mkdir()
        p.write_text((EXAMPLES / "fifo.scenario.toml").read_text())
    clash = cli("add", str(FIFO), "--scenario", str(one), "--scenario", str(other))
    assert clash.code == 2 and "would both be stored as 'fifo'" in clash.err
    huge = tmp_path / "huge.scenario.toml"
    huge.write_text((EXAMPLES / "fifo.scenario.toml").read_text() + "#" * 20000 + "\n")
    too_big = cli("add", str(FIFO), "--scenario", str(huge))
    assert too_big.code == 2 and "a stored scenario has at most" in too_big.err
    assert commit_count(store.root) == before and is_clean(store.root)
