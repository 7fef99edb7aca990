"""Behaviour tests in the sandbox guest: every example on its own scenario, beside a mutant of
it that breaks the example's idea, all in ONE boot of the sandbox (CI time is budgeted).

Each example must pass every expectation of `examples/NAME.scenario.toml` (the claim of its
header), and each mutant must fail at least one, so that the scenario is shown to tell a policy
that does what it claims from one that does not. An expectation that fails because of the
compiler, not the example, is listed in KNOWN_FAILURES: that one case is a strict xfail, so it
turns red when the compiler is fixed and the entry must go.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from schedc.behaviour.expect import ExpectationResult
from schedc.behaviour.report import ScenarioResult, render_human
from schedc.behaviour.report import test_policies as run_behaviour_tests
from schedc.behaviour.run import Case
from schedc.behaviour.scenario import load_scenario
from schedc.bench.runner import compile_for_bench
from schedc.settings import Settings
from tests.conftest import needs_sandbox
from tests.test_profile_scenario import check_profile_result, profile_case

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Scenarios of language features that no example shows, run in the same boot with a mutant
# each (name -> the mutant: its idea removed).
FEATURES = ROOT / "tests" / "data" / "behaviour"


@dataclass(frozen=True)
class Mutant:
    """A text change to an example that breaks its idea: (old, new) pairs, each found once."""

    what: str
    edits: tuple[tuple[str, str], ...]


MUTANTS: dict[str, Mutant] = {
    "bounded_wait": Mutant(
        "per-task wait bound removed: only lag 5s bounds the hog's wait",
        ((" max_wait bound", ""),),
    ),
    "deadline": Mutant(
        "class condition negated: the niced batch tasks become normal (10 ms slices)",
        (("class batch when task.nice >= 10", "class batch when task.nice < 10"),),
    ),
    "fifo": Mutant(
        "500 ms slices instead of the default 20 ms",
        (("queue runq for all fifo", "queue runq for all fifo\n  slice all = 500ms"),),
    ),
    "interactive_boost": Mutant(
        "class condition negated: the batch work is 'interactive'",
        (
            (
                "task.wakeup_rate >= boost_rate and task.avg_runtime < short_run",
                "task.wakeup_rate < boost_rate or task.avg_runtime >= short_run",
            ),
        ),
    ),
    "layered": Mutant(
        "dispatch order reversed: build layer first, web last",
        (("dispatch web_q then other_q then build_q", "dispatch build_q then other_q then web_q"),),
    ),
    "ljf": Mutant(
        "dispatch order reversed: short jobs first",
        (("dispatch long_q then short_q", "dispatch short_q then long_q"),),
    ),
    "named_preempt": Mutant(
        "preempts the build instead of background work",
        (("preempts background", "preempts build"),),
    ),
    "pinned_latency": Mutant("CPU set changed to 2-3", (("on cpus 0-1", "on cpus 2-3"),)),
    "priority_aging": Mutant(
        "aging removed: strict priority",
        (("dispatch high then mid then low, aging max_wait", "dispatch high then mid then low"),),
    ),
    "sjf": Mutant(
        "longest first instead of shortest first",
        (("ordered by task.avg_runtime ascending", "ordered by task.avg_runtime descending"),),
    ),
    "tunables_counters": Mutant(
        "class conditions swapped: long runners are light",
        (
            (
                "class light when task.avg_runtime < heavy_runtime",
                "class light when task.avg_runtime >= heavy_runtime",
            ),
        ),
    ),
    "vtime_fair": Mutant(
        "FIFO queue instead of weighted virtual time",
        (("queue fair for all vtime lag slice", "queue fair for all fifo"),),
    ),
    "weighted_share": Mutant("weights swapped", (("fg: 3, bg: 1", "fg: 1, bg: 3"),)),
}

# (example, index of the [[expect]] in its scenario) -> why it fails today. The reason names
# what is wrong in the compiler; when that is fixed the strict xfail turns red.
KNOWN_FAILURES: dict[tuple[str, int], str] = {
    ("deadline", 0): (
        "issue 19: a waking task never preempts, so a waking mpv task waits for a 30 ms batch "
        "slice to end whatever its deadline; p99 passed in one boot and failed in another, "
        "p50 measured 39.6 ms against batch's 10.7 ms"
    ),
    ("ljf", 1): (
        "noisy under TCG: the long job ended at 0.55-0.94 x EEVDF's time in eight runs of nine "
        "and at 1.11 x in one (a boot slowed by the host's load); the reversed-dispatch "
        "mutant 0.75-1.89 x (above 1 in seven runs of nine)"
    ),
    ("ljf", 2): (
        "noisy under TCG: the batch's makespan was 0.62-1.04 x EEVDF's in six runs of nine "
        "and 1.11-1.30 x in three, while the long job hardly waited (longest wait 0-50 ms): "
        "the short jobs' share of the emulated CPUs varies from run to run"
    ),
    ("interactive_boost", 1): (
        "issue 19: before wake-up preemption a waking interactive task was not run at once "
        "(p50 wake-to-run 4-12 ms against EEVDF's 0.3-4.5 ms); with it, passed in the one boot "
        "measured so far: kept non-strict until it is seen stable"
    ),
    ("deadline", 1): (
        "wake-up preemption: a waking mpv task (earlier deadline) preempts a batch task, so "
        "batch's run intervals are cut to 8.0-8.3 ms (two boots) whatever its 30 ms slice; the "
        "slice expectation measures run intervals, so it needs a scenario where batch runs "
        "without media wake-ups"
    ),
}

# Known failures that pass in some boots (TCG noise): not strict, or they would be flaky.
UNSTABLE = {
    ("deadline", 0),
    ("deadline", 1),
    ("interactive_boost", 1),
    ("ljf", 1),
    ("ljf", 2),
}

# Examples whose mutant passes every expectation, and why (a strict xfail each, except the
# unstable ones).
UNSTABLE_MUTANTS = {"sjf", "tunables_counters"}
KNOWN_MUTANT_PASSES: dict[str, str] = {
    "tunables_counters": (
        "unstable: the light tasks wait less than the heavy ones whichever queue is served "
        "first (light p50 vs heavy p50: 8.9 vs 8.6 ms with the class conditions swapped, 7.6 "
        "vs 13.4 ms with the dispatch order reversed): a waking light task mostly finds a CPU "
        "through ops.select_cpu, not through the queues"
    ),
    "sjf": (
        "unstable: with longest first, the short tasks' p50 wait was above the long ones' in "
        "two boots (175 vs 42 ms, 40 vs 24 ms) and just below in a third (55 vs 57 ms)"
    ),
}

NAMES = sorted(p.name.removesuffix(".sched") for p in EXAMPLES.glob("*.sched"))

FEATURE_MUTANTS: dict[str, Mutant] = {
    "strict_start": Mutant(
        "short_q not strict: a short job that finds an idle CPU is dispatched to it directly",
        (("queue short_q for short fifo strict", "queue short_q for short fifo"),),
    ),
}


def test_every_example_has_a_scenario_and_a_mutant() -> None:
    assert NAMES == sorted(MUTANTS)
    for name in NAMES:
        scenario = load_scenario(EXAMPLES / f"{name}.scenario.toml")
        assert scenario.expect, name
        assert scenario.cpus == 4, f"{name}: one boot needs one CPU count for every scenario"
        for example, index in KNOWN_FAILURES:
            if example == name:
                assert index < len(scenario.expect)
    assert set(KNOWN_MUTANT_PASSES) <= set(NAMES)


def mutant_source(directory: Path, name: str, folder: Path = EXAMPLES) -> Path:
    text = (folder / f"{name}.sched").read_text()
    mutants = MUTANTS if folder == EXAMPLES else FEATURE_MUTANTS
    for old, new in mutants[name].edits:
        assert text.count(old) == 1, (name, old)
        text = text.replace(old, new)
    text = re.sub(r"^scheduler (\w+) ", r"scheduler \1_mutant ", text, count=1, flags=re.M)
    path = directory / f"{name}_mutant.sched"
    path.write_text(text)
    return path


@dataclass
class Boot:
    results: dict[tuple[str, str], ScenarioResult]  # (example, "example" | "mutant")
    progress: list[str]
    seconds: float
    traces: Path


@pytest.fixture(scope="module")
def boot(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Boot:
    needs_sandbox(settings)
    tmp = tmp_path_factory.mktemp("behaviour")
    (tmp / "mutants").mkdir()
    sources = []
    for name in NAMES:
        sources += [EXAMPLES / f"{name}.sched", mutant_source(tmp / "mutants", name)]
    compiled = compile_for_bench(sources, settings, tmp / "build")
    assert compiled.ok, [str(d) for d in compiled.diagnostics]
    cases = [
        Case(
            load_scenario(EXAMPLES / f"{name}.scenario.toml"), compiled.policies[2 * i : 2 * i + 2]
        )
        for i, name in enumerate(NAMES)
    ]
    for name in sorted(FEATURE_MUTANTS):
        pair = [FEATURES / f"{name}.sched", mutant_source(tmp / "mutants", name, FEATURES)]
        built = compile_for_bench(pair, settings, tmp / "build")
        assert built.ok, [str(d) for d in built.diagnostics]
        cases.append(Case(load_scenario(FEATURES / f"{name}.scenario.toml"), built.policies))
    # A scenario written from a profile, run against the draft written from the same profile
    # (schedc.profile; tests/test_profile_scenario.py): two more runs, no boot of its own.
    (tmp / "profile").mkdir()
    cases.append(profile_case(tmp / "profile", settings, cpus=4))
    said: list[str] = []
    started = time.monotonic()
    results = run_behaviour_tests(cases, settings, keep_trace=tmp / "traces", progress=said.append)
    seconds = time.monotonic() - started
    print(render_human(results))  # the figures, in the test log
    print(f"one boot, {len(cases)} scenarios, {len(results)} policies: {seconds:.0f} s")
    by = {}
    for r in results:
        example = r.scenario
        by[(example, "mutant" if r.policy.endswith("_mutant") else "example")] = r
    return Boot(by, said, seconds, tmp / "traces")


def expectation(result: ScenarioResult, index: int) -> ExpectationResult:
    """The scenario's index-th [[expect]] (the implicit checks come first in the results)."""
    explicit = [e for e in result.expectations if e.line is not None]
    return explicit[index]


@pytest.mark.vm
def test_a_profiles_scenario_runs_against_its_draft(boot: Boot) -> None:
    check_profile_result(boot.results[("profiled", "example")])


@pytest.mark.vm
def test_one_boot_and_implicit_checks(boot: Boot) -> None:
    assert sum("booting" in m for m in boot.progress) == 1, boot.progress
    assert len(boot.results) == 2 * (len(NAMES) + len(FEATURE_MUTANTS)) + 1  # and the draft
    for (name, which), r in boot.results.items():
        assert r.kernel and r.kernel.startswith("6.12")
        for implicit in ("enabled", "exited", "trace"):
            [e] = [e for e in r.expectations if e.kind == implicit]
            assert e.ok, (name, which, implicit, e.detail)
    # every run's trace is kept, the baseline's once per scenario
    assert {p.name for p in (boot.traces / "weighted_share").iterdir()} == {
        "baseline-run1.trace",
        "weighted_share-run1.trace",
        "weighted_share_mutant-run1.trace",
    }


CASES = [
    pytest.param(
        name,
        index,
        id=f"{name}-{index}",
        marks=[pytest.mark.vm]
        + (
            [
                pytest.mark.xfail(
                    strict=(name, index) not in UNSTABLE, reason=KNOWN_FAILURES[(name, index)]
                )
            ]
            if (name, index) in KNOWN_FAILURES
            else []
        ),
    )
    for name in NAMES
    for index in range(len(load_scenario(EXAMPLES / f"{name}.scenario.toml").expect))
]


@pytest.mark.parametrize(("name", "index"), CASES)
def test_example_meets_expectation(boot: Boot, name: str, index: int) -> None:
    e = expectation(boot.results[(name, "example")], index)
    assert e.ok, f"{name}: {e.kind} expected {e.expected}, measured {e.measured} ({e.detail})"
    assert e.baseline is not None or e.kind == "order", e  # the baseline is measured too


MUTANT_CASES = [
    pytest.param(
        name,
        id=name,
        marks=[pytest.mark.vm]
        + (
            [
                pytest.mark.xfail(
                    strict=name not in UNSTABLE_MUTANTS, reason=KNOWN_MUTANT_PASSES[name]
                )
            ]
            if name in KNOWN_MUTANT_PASSES
            else []
        ),
    )
    for name in NAMES
]


@pytest.mark.parametrize("name", MUTANT_CASES)
def test_mutant_fails_an_expectation(boot: Boot, name: str) -> None:
    mutant = boot.results[(name, "mutant")]
    failed = [e for e in mutant.expectations if e.line is not None and not e.ok]
    assert failed, f"{name} mutant ({MUTANTS[name].what}) passed every expectation"
    # ... at the scenario's lines, as error diagnostics
    lines = {d.line for d in mutant.diagnostics}
    assert {e.line for e in failed} <= lines
    # and an expectation the example itself passes, unless the example's only failures are known
    example = boot.results[(name, "example")]
    passed = {e.line for e in example.expectations if e.line is not None and e.ok}
    known = any(n == name for n, _i in KNOWN_FAILURES)
    assert known or {e.line for e in failed} & passed, (name, failed)


@pytest.mark.vm
@pytest.mark.parametrize("name", sorted(FEATURE_MUTANTS))
def test_feature_scenario_tells_the_feature_from_its_mutant(boot: Boot, name: str) -> None:
    """A language feature's scenario: the policy meets every expectation, the mutant without
    the feature misses one."""
    good, bad = boot.results[(name, "example")], boot.results[(name, "mutant")]
    explicit = [e for e in good.expectations if e.line is not None]
    assert explicit and all(e.ok for e in explicit), [(e.measured, e.detail) for e in explicit]
    missed = [e for e in bad.expectations if e.line is not None and not e.ok]
    assert missed, f"{name} mutant ({FEATURE_MUTANTS[name].what}) passed every expectation"


@pytest.mark.vm
def test_strict_start_figures(boot: Boot) -> None:
    """Without `strict`, the three short jobs that wake first take the three idle CPUs
    directly, so the long job starts fourth (third in one boot of six: a direct-dispatched
    short job started after it, and first in one CI boot); with it, first or second. The
    scenario has `runs = 3`: these are the medians of three runs."""
    good = expectation(boot.results[("strict_start", "example")], 0)
    bad = expectation(boot.results[("strict_start", "mutant")], 0)
    assert good.kind == "order" and good.measured is not None and good.measured <= 2
    assert bad.measured is not None and bad.measured >= 3, bad
    assert len(good.runs) == len(bad.runs) == 3  # the scenario's own `runs`


@pytest.mark.vm
def test_pinned_latency_figures(boot: Boot) -> None:
    """The measured figures themselves, beside the verdicts."""
    good = expectation(boot.results[("pinned_latency", "example")], 0)
    bad = expectation(boot.results[("pinned_latency", "mutant")], 0)
    assert good.kind == "placement" and good.measured >= 0.99
    assert bad.measured is not None and bad.measured < 0.5  # on CPUs 2-3 instead
    share = expectation(boot.results[("weighted_share", "example")], 0)
    assert share.baseline is not None and 0.8 < share.baseline < 1.25  # EEVDF shares 1:1 here
    swapped = expectation(boot.results[("weighted_share", "mutant")], 0)
    assert swapped.measured is not None and swapped.measured < 1.0
