"""Behaviour tests in the sandbox guest: ONE boot runs two scenarios, each under the default
scheduler, the example policy and a mutant of it. The example must pass and the mutant fail,
so that the measurement is shown to tell a policy that does what it claims from one that
does not (and from the baseline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedc.behaviour.report import render_human
from schedc.behaviour.report import test_policies as run_behaviour_tests
from schedc.behaviour.run import Case
from schedc.behaviour.scenario import load_scenario
from schedc.bench.runner import compile_for_bench
from schedc.compiler.toolchain import Toolchain
from schedc.settings import Settings
from tests.conftest import needs_sandbox

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def mutant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (EXAMPLES / f"{name}.sched").read_text()
    assert old in text
    path = tmp_path / "mutants" / f"{name}_mutant.sched"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        text.replace(old, new).replace(f"scheduler {name} ", f"scheduler {name}_mutant ")
    )
    return path


@pytest.mark.vm
def test_examples_pass_and_mutants_fail(settings: Settings, toolchain: Toolchain, tmp_path: Path):
    needs_sandbox(settings)
    sources = [
        EXAMPLES / "pinned_latency.sched",
        mutant(tmp_path, "pinned_latency", "on cpus 0-1", "on cpus 2-3"),
        EXAMPLES / "weighted_share.sched",
        mutant(tmp_path, "weighted_share", "fg: 3, bg: 1", "fg: 1, bg: 3"),
    ]
    compiled = compile_for_bench(sources, settings, tmp_path / "build")
    assert compiled.ok, compiled.diagnostics
    pinned, pinned_mut, share, share_mut = compiled.policies
    pinned_scenario = load_scenario(EXAMPLES / "pinned_latency.scenario.toml")
    share_scenario = load_scenario(
        ROOT / "tests" / "data" / "behaviour" / "share_turns.scenario.toml"
    )
    said: list[str] = []
    results = run_behaviour_tests(
        [Case(pinned_scenario, [pinned, pinned_mut]), Case(share_scenario, [share, share_mut])],
        settings,
        keep_trace=tmp_path / "traces",
        progress=said.append,
    )
    print(render_human(results))  # the figures, in the test log
    assert sum("booting" in m for m in said) == 1, said  # one boot for everything
    by = {(r.scenario, r.policy): r for r in results}
    assert len(by) == 4

    def kind(r: object, name: str) -> object:
        return next(e for e in r.expectations if e.kind == name)  # type: ignore[attr-defined]

    for r in results:
        assert r.kernel and r.kernel.startswith("6.12")
        for implicit in ("enabled", "exited", "trace"):
            assert kind(r, implicit).ok, (r.policy, implicit, kind(r, implicit).detail)

    good = by[("pinned_latency", "pinned_latency")]
    place = kind(good, "placement")
    assert place.ok and place.measured >= 0.99, place
    # measured under the default scheduler too (which spreads redis-server over all four
    # CPUs, 28-86 % on 0-1 in three boots: too variable to assert on)
    assert place.baseline is not None and place.runs and place.baseline_runs
    bad = kind(by[("pinned_latency", "pinned_latency_mutant")], "placement")
    assert not bad.ok and bad.measured < 0.5
    [diag] = [
        d for d in by[("pinned_latency", "pinned_latency_mutant")].diagnostics if d.code == "T101"
    ]
    assert diag.file == pinned_scenario.path and diag.line == pinned_scenario.expect[0].line

    turns = kind(by[("share_turns", "weighted_share")], "share")
    assert turns.ok, turns
    assert turns.baseline is not None and 0.8 < turns.baseline < 1.2  # EEVDF: 1:1
    swapped = kind(by[("share_turns", "weighted_share_mutant")], "share")
    assert not swapped.ok and swapped.measured < 1.0, swapped
    assert {p.name for p in (tmp_path / "traces" / "share_turns").iterdir()} == {
        "baseline-run1.trace",
        "weighted_share-run1.trace",
        "weighted_share_mutant-run1.trace",
    }
