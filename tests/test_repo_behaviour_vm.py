"""`schedc repo add --scenario` in the sandbox guest: ONE boot runs both scenarios (the policy
and the baseline each), and the repository keeps both reports beside the verification — the
passing one, and the failing one marked failed (the add exits 1 and says where), each with the
policy's counters read in the guest. Short scenarios (1 s, one run per side): CI time is
budgeted."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedc.repo.gitstore import GitStore
from tests import test_repo_support as support
from tests.conftest import ROOT, needs_sandbox
from tests.test_repo_support import cli

repo_env = support.repo_env
store = support.store  # fixtures

FIFO = ROOT / "examples" / "fifo.sched"
# A policy with counters (`counter NAME counts EVENT`): the reports carry them.
TUNABLES = ROOT / "examples" / "tunables_counters.sched"
COUNTERS = ("light_enqueued", "heavy_enqueued", "direct_dispatches", "aged", "wakeups")

# Released 100 ms apart on 2 CPUs: the early spinner starts first, under any scheduler.
ORDER_OK = """\
description = "the early spinner starts before the late one"
cpus = 2
duration = "1s"

[start]
mode = "ordered"
order = ["early", "late"]
delay = "100ms"

[[group]]
name = "early"
comm = "early"
spin = {}

[[group]]
name = "late"
comm = "late"
spin = {}

[[expect]]
kind = "order"
group = "early"
before = "late"
"""

# Two spinners on 2 CPUs: the policy does not pin them, so CPU 0 has about half their time.
PINNED_FAILS = """\
description = "claims the spinners stay on CPU 0, which the policy does not do"
cpus = 2
duration = "1s"

[[group]]
name = "spin"
comm = "spinner"
count = 2
spin = {}

[[expect]]
kind = "placement"
group = "spin"
cpus = "0"
"""


@pytest.mark.vm
def test_repo_add_with_scenarios_stores_passing_and_failing_reports(
    toolchain, settings, store: GitStore, tmp_path: Path
):
    needs_sandbox(settings)
    passing = tmp_path / "orderok.scenario.toml"
    passing.write_text(ORDER_OK)
    failing = tmp_path / "pinfail.scenario.toml"
    failing.write_text(PINNED_FAILS)
    ran = cli(
        "add",
        str(TUNABLES),
        "--unverified",
        "--scenario",
        str(passing),
        "--scenario",
        str(failing),
        "--runs",
        "1",
        "--format",
        "json",
    )
    assert ran.code == 1, ran.err  # an expectation failed: said, and stored
    data = ran.json()
    out = ran.result()
    assert out["status"] == "added" and data["ok"] is False and out["behaviour_ok"] is False
    assert data["error"] is None  # added; the failed expectation is in the result
    reports = {r["scenario"]: r for r in out["behaviour"]}
    assert set(reports) == {"orderok", "pinfail"}
    assert reports["orderok"]["ok"] is True
    assert reports["pinfail"]["ok"] is False
    placement = next(e for e in reports["pinfail"]["expectations"] if e["kind"] == "placement")
    assert placement["ok"] is False and 0.2 < placement["measured"] < 0.8, placement
    assert placement["baseline"] is not None
    implicit = {e["kind"]: e["ok"] for e in reports["orderok"]["expectations"]}
    assert implicit["enabled"] is True and implicit["exited"] is True
    diag = next(d for d in data["diagnostics"] if d["code"] == "T101")
    assert diag["file"] == str(failing)
    assert diag["line"] == PINNED_FAILS.splitlines().index("[[expect]]") + 1
    kernel = reports["orderok"]["kernel"]
    assert kernel and kernel == reports["pinfail"]["kernel"]
    for r in reports.values():  # read from the policy's map at the end of its run
        counters = r["counters"]
        assert list(counters) == list(COUNTERS), counters
        assert all(isinstance(v, int) and v >= 0 for v in counters.values()), counters
        assert counters["light_enqueued"] + counters["heavy_enqueued"] > 0, counters

    shown = cli("show", "tunables", "--format", "json").result()
    stored = {r["scenario"]: r for r in shown["verification"]["behaviour"]}
    assert stored["pinfail"]["ok"] is False and stored["orderok"]["ok"] is True
    assert stored["orderok"]["scenario_text"] == ORDER_OK
    assert stored["orderok"]["counters"] == reports["orderok"]["counters"]
    human = cli("show", "tunables").out
    assert f"orderok on {kernel}" in human and "FAIL placement" in human
    assert "counters (sum of 1 run(s)): light_enqueued " in human, human
    found = cli("search", "--behaviour-passing", "--format", "json").json()
    assert found["results"] == []  # one failing report keeps it out
