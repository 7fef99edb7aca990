"""From a profile to a sandbox scenario and a DSL draft (schedc/profile/scenario.py, draft.py).

Profiles are built by hand (and by hypothesis, hostile strings included): every scenario must
parse with the behaviour tests' own parser, with counts, cycles and expectations as documented;
every draft must go through the real front end, and several through real clang and the host
classifier (the policy's compiled class conditions). One VM test runs a scenario written from a
profile against the draft of the same profile in ONE boot of the sandbox.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from schedc.agent.classify import HostTask, classify
from schedc.behaviour.report import ScenarioResult
from schedc.behaviour.run import Case
from schedc.behaviour.scenario import Cycle, Scenario, Spin, Starvation, Wait, parse_scenario
from schedc.compiler.pipeline import Source, compile_policy, translate
from schedc.dsl.language import MAX_CLASSES
from schedc.profile.draft import DSL_WORDS, DraftError, draft_policy
from schedc.profile.model import (
    LABELS,
    Classification,
    Distribution,
    Machine,
    Overhead,
    Profile,
    Target,
    TaskGroup,
    Topology,
)
from schedc.profile.scenario import (
    MAX_GROUPS,
    MAX_TOTAL_TASKS,
    ProfileScenarioError,
    scenario_from_profile,
)

# --- building profiles ----------------------------------------------------------------------


def dist(p50: float, p90: float | None = None, samples: int = 100) -> Distribution:
    p90 = p50 * 2 if p90 is None else p90
    return Distribution(samples=samples, mean=p50, p50=p50, p90=p90, p99=p90 * 2)


def group(
    name: str,
    *,
    comm: str | None = None,
    leader: str | None = None,
    threads: int = 1,
    parallelism: float = 1.0,
    run_us: float = 3000.0,
    wakeups: float = 0.0,
    preempted: float = 50.0,
    nice: tuple[int, ...] = (0,),
    cgroup: str = "/",
    labels: tuple[str, ...] = (),
    affinity: str | None = None,
    host_cpus: int = 8,
    evidence: str = "",
) -> TaskGroup:
    comm = name if comm is None else comm
    return TaskGroup(
        name=name,
        leader_comm=comm if leader is None else leader,
        comm=comm,
        cgroup=cgroup,
        threads=threads,
        processes=threads,
        cpu_share=parallelism / host_cpus,
        parallelism=parallelism,
        runtime_per_run_us=dist(run_us),
        run_delay_us=dist(200.0),
        wakeups_per_s=wakeups,
        involuntary_per_s=preempted,
        nice=list(nice),
        policy=["SCHED_OTHER"],
        affinity=affinity,
        classification=[
            Classification(label=lab, evidence=[evidence or f"measured as {lab}"]) for lab in labels
        ],
    )


def profile(groups: list[TaskGroup], cpus: int = 8, seconds: float = 10.0) -> Profile:
    return Profile(
        created=datetime(2026, 12, 1, 23, 0, tzinfo=UTC),
        target=Target(mode="command", command=["make", "-j8"]),
        seconds=seconds,
        interval_ms=100,
        samples=100,
        machine=Machine(
            cpus=cpus,
            online=f"0-{cpus - 1}",
            topology=Topology(sockets=1, cores=cpus, threads_per_core=1, llcs=1),
            kernel="6.12.0",
            scheduler="EEVDF",
        ),
        groups=groups,
        overhead=Overhead(cpu_seconds=0.1, fraction_of_one_cpu=0.01),
    )


def build_workload(host_cpus: int = 8) -> Profile:
    """A build next to a database and a browser: batch spinners, a latency-critical sleeper,
    interactive threads named apart from their process."""
    return profile(
        [
            group(
                "cc1",
                threads=8,
                parallelism=7.5,
                run_us=4000,
                wakeups=0.05,
                preempted=250,
                labels=("batch",),
                nice=(5,),
                host_cpus=host_cpus,
            ),
            group(
                "postgres",
                threads=4,
                parallelism=0.2,
                run_us=300,
                wakeups=180,
                preempted=1,
                labels=("latency-critical",),
                cgroup="/system.slice/postgresql.service",
                host_cpus=host_cpus,
            ),
            group(
                "firefox/Renderer",
                comm="Renderer",
                leader="firefox",
                threads=3,
                parallelism=0.6,
                run_us=2000,
                wakeups=40,
                preempted=60,
                labels=("interactive",),
                host_cpus=host_cpus,
            ),
        ],
        cpus=host_cpus,
    )


def parsed(p: Profile, **kw: object) -> tuple[str, Scenario]:
    text = scenario_from_profile(p, **kw)  # type: ignore[arg-type]
    return text, parse_scenario(text, "profile.scenario.toml")


def us(seconds: float) -> int:
    return round(seconds * 1e6)


# --- scenarios ------------------------------------------------------------------------------


def test_a_scenario_reproduces_each_group():
    text, s = parsed(build_workload())
    assert s.cpus == 4 and s.duration == 3.0  # min(8, 4) CPUs, the default duration
    assert [g.name for g in s.group] == ["cc1", "firefox_Renderer", "postgres"]  # by CPU share
    cc1, renderer, pg = s.group
    assert (cc1.comm, cc1.count, cc1.nice, cc1.cgroup) == ("cc1", 4, 5, None)
    assert cc1.spin == Spin()  # 0.5 wake-ups per thread in 10 s: it never sleeps
    assert (pg.comm, pg.count, pg.cgroup) == ("postgres", 2, "/system.slice/postgresql.service")
    assert renderer.comm == "Renderer" and renderer.count == 2  # 3 * 4/8 = 1.5, rounded up
    # postgres: runs its p50 (300us), sleeps so each task uses 0.2 / 4 = 5 % of a CPU
    assert pg.cycle is not None
    assert (us(pg.cycle.run), us(pg.cycle.sleep)) == (300, 5700)
    # Renderer: preempted 60/s > woken 40/s, so the run is the CPU time between sleeps:
    # 0.2 of a CPU / 40 wake-ups = 5 ms, and a share of 0.2 gives a sleep of 20 ms
    assert renderer.cycle is not None
    assert (us(renderer.cycle.run), us(renderer.cycle.sleep)) == (5000, 20000)
    # the header says where it came from, and each group how it was derived
    head = text.split("\n\n")[0]
    for needle in (
        "generated",
        "2026-12-01T23:00:00",
        "command make -j8",
        "8 CPUs",
        "6.12.0",
        "EEVDF",
        "4/8",
    ):
        assert needle in head, needle
    assert "8 threads -> 4 tasks" in text and "never slept in the window: spins" in text
    assert "most runs ended by preemption" in text


@pytest.mark.parametrize(
    ("host", "guest", "threads", "count"),
    [
        (8, 4, 8, 4),
        (8, 2, 8, 2),
        (8, 8, 8, 8),
        (8, 4, 1, 1),
        (16, 2, 3, 1),
        (4, 4, 6, 6),
        (2, 4, 3, 6),
        (64, 8, 100, 13),
        (1, 8, 20, 64),
    ],
)
def test_counts_scale_with_guest_over_host_cpus(host, guest, threads, count):
    p = profile([group("work", threads=threads, parallelism=threads / 2, wakeups=50)], cpus=host)
    _, s = parsed(p, cpus=guest)
    assert s.cpus == guest and s.group[0].count == count


def test_default_guest_is_the_host_up_to_four_cpus():
    for host, guest in ((1, 1), (2, 2), (3, 3), (4, 4), (6, 4), (128, 4)):
        _, s = parsed(profile([group("w", wakeups=5, parallelism=0.5)], cpus=host))
        assert s.cpus == guest


def test_total_tasks_are_capped_and_the_comment_says_so():
    groups = [group(f"w{i}", threads=60, parallelism=6, wakeups=20) for i in range(4)]
    text, s = parsed(profile(groups, cpus=4), cpus=4)
    assert sum(g.count for g in s.group) <= MAX_TOTAL_TASKS
    assert all(g.count >= 1 for g in s.group)
    assert f"more than {MAX_TOTAL_TASKS} in all" in text


@pytest.mark.parametrize(
    ("threads", "parallelism", "run_us", "wakeups", "preempted"),
    [
        (1, 0.1, 1000, 90, 1),
        (2, 1.0, 30000, 16, 2),
        (4, 0.04, 250, 40, 0),
        (1, 0.6, 2000, 100, 5),
        (3, 0.3, 8000, 10, 30),
        (1, 0.9, 4000, 50, 20),
    ],
)
def test_cycles_match_the_profile(threads, parallelism, run_us, wakeups, preempted):
    p = profile(
        [
            group(
                "w",
                threads=threads,
                parallelism=parallelism,
                run_us=run_us,
                wakeups=wakeups,
                preempted=preempted,
            )
        ]
    )
    _, s = parsed(p)
    cycle = s.group[0].cycle
    assert isinstance(cycle, Cycle)
    share = parallelism / threads
    expected_run = run_us if preempted <= wakeups else share * 1e6 / wakeups
    assert abs(us(cycle.run) - expected_run) <= 1  # whole microseconds
    assert math.isclose(cycle.run / (cycle.run + cycle.sleep), share, rel_tol=0.01)


@pytest.mark.parametrize(
    ("parallelism", "wakeups", "why"),
    [(1.0, 0.0, "never slept"), (0.5, 0.05, "never slept"), (0.97, 200.0, "busy 97%")],
)
def test_spinners(parallelism, wakeups, why):
    text, s = parsed(profile([group("hog", parallelism=parallelism, wakeups=wakeups)]))
    assert s.group[0].spin == Spin() and s.group[0].cycle is None
    assert why in text


def test_expectations_from_the_labels():
    # a batch group that wakes (so it has wake-to-run delays to compare with)
    p = profile(
        [
            group(
                "make",
                threads=6,
                parallelism=5.4,
                run_us=30000,
                wakeups=30,
                preempted=5,
                labels=("batch",),
            ),
            group(
                "redis-server",
                threads=2,
                parallelism=0.1,
                run_us=500,
                wakeups=100,
                preempted=1,
                labels=("latency-critical",),
            ),
            group(
                "ui",
                threads=1,
                parallelism=0.05,
                run_us=500,
                wakeups=100,
                preempted=1,
                labels=("interactive",),
            ),
        ],
        cpus=4,
    )
    _, s = parsed(p)
    waits = [e for e in s.expect if isinstance(e, Wait)]
    assert [(e.group, e.percentile, e.vs_baseline, e.below) for e in waits] == [
        ("redis-server", 99, 1.0, None),
        ("redis-server", 50, None, "make"),
    ]  # the latency-critical group; the interactive one only when there is none
    starving = [e for e in s.expect if isinstance(e, Starvation)]
    assert sorted(e.group for e in starving) == ["make", "redis-server", "ui"]
    assert all(e.max_wait == 1.0 for e in starving)
    # without a latency-critical group the interactive one is compared; a batch group that
    # spins has no wake-ups, so nothing is compared with it
    p2 = profile(
        [
            group("cc1", threads=4, parallelism=4, labels=("batch",)),
            group("ui", parallelism=0.05, run_us=500, wakeups=100, labels=("interactive",)),
        ]
    )
    _, s2 = parsed(p2, duration="1s")
    assert [(e.group, e.vs_baseline) for e in s2.expect if isinstance(e, Wait)] == [("ui", 1.0)]
    assert {e.max_wait for e in s2.expect if isinstance(e, Starvation)} == {0.5}  # half of 1 s
    # no labels: only starvation
    _, s3 = parsed(profile([group("a", wakeups=10, parallelism=0.5)]))
    assert [e.kind for e in s3.expect] == ["starvation"]


def test_more_groups_than_the_limit_merge_into_others():
    groups = [group(f"g{i}", parallelism=1.0 - i * 0.05, wakeups=10 + i) for i in range(12)]
    text, s = parsed(profile(groups))
    assert len(s.group) == MAX_GROUPS
    assert [g.name for g in s.group[:-1]] == [f"g{i}" for i in range(MAX_GROUPS - 1)]
    assert s.group[-1].name == "others" and s.group[-1].comm == "others"
    assert "the 5 smallest by CPU share merged into 'others' (g7, g8, g9, g10, g11)" in text


def test_idle_groups_are_left_out_and_nothing_to_reproduce_is_an_error():
    idle = group("idle", parallelism=0.0, wakeups=0.0)
    text, s = parsed(profile([group("busy", wakeups=3, parallelism=0.5), idle]))
    assert [g.name for g in s.group] == ["busy"] and "left out 1 group(s)" in text
    for groups in ([], [idle]):
        with pytest.raises(ProfileScenarioError, match="no task group that used CPU"):
            scenario_from_profile(profile(groups))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cpus": 0}, "cpus: 0"),
        ({"cpus": 9}, "cpus: 9"),
        ({"duration": "fast"}, "duration"),
        ({"duration": "90s"}, "duration: '90s'"),
        ({"duration": 2}, "duration"),
    ],
)
def test_bad_options_name_the_option(kw, message):
    with pytest.raises(ProfileScenarioError, match=message):
        scenario_from_profile(build_workload(), **kw)


HOSTILE = [
    'a"b',
    "x\ny = 1",
    "]]\n[[group]]",
    "café☕",
    "tab\tbell\x07",
    "line\u2028sep",
    "esc\\\\",
    "\udc80raw",
    "   ",
    "=" * 30,
    "名前",
]


def _cgroup_is_safe(path: str | None) -> bool:
    if path is None:
        return True
    parts = path.split("/")
    return path.startswith("/") and all(p and not p.startswith(".") for p in parts[1:])


def test_hostile_strings_cannot_break_the_toml_or_leave_the_cgroup_root():
    cgroups = ["/../../etc", "/a/../../b", "/.hidden/x", "/x\n[[expect]]", "//", '/"q"/..', "/é"]
    groups = [
        group(
            name,
            comm=name,
            wakeups=5 + i,
            parallelism=0.2,
            cgroup=cgroups[i % len(cgroups)],
            labels=("latency-critical",),
            evidence=name,
        )
        for i, name in enumerate(HOSTILE[:MAX_GROUPS])
    ]
    text, s = parsed(profile(groups))
    assert len(s.group) == MAX_GROUPS
    lines = text.splitlines()
    for g in s.group:
        assert lines[g.line - 1] == "[[group]]"  # the scanner's line numbers still hold
        assert g.comm.isascii() and g.comm.isprintable() and 0 < len(g.comm) <= 15
        assert not set(g.comm) & set("\"'\\[]=\n")
        assert _cgroup_is_safe(g.cgroup)
    assert text.isascii() or all(ch.isprintable() or ch == "\n" for ch in text)
    assert s.group_named("a_b").comm == "a_b"
    assert s.group_named("a_b").cgroup == "/etc"  # "/../../etc": the dots are gone
    assert sum(1 for line in lines if line == "[[group]]") == MAX_GROUPS


names = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=24))
cgroup_paths = st.one_of(
    st.sampled_from(
        [
            "/",
            "",
            "/system.slice/nginx.service",
            "/../..",
            "/a/./../b",
            "//x//",
            "/user.slice/user-1000.slice/session-2.scope",
        ]
    ),
    st.text(max_size=40).map(lambda t: "/" + t),
)


@st.composite
def task_groups(draw: st.DrawFn) -> TaskGroup:
    threads = draw(st.integers(1, 300))
    return TaskGroup(
        name=draw(names),
        leader_comm=draw(names),
        comm=draw(names),
        cgroup=draw(cgroup_paths),
        threads=threads,
        processes=draw(st.integers(1, threads)),
        cpu_share=draw(st.floats(0, 1)),
        parallelism=draw(st.floats(0, threads)),
        runtime_per_run_us=dist(draw(st.floats(0, 5e6))),
        run_delay_us=dist(draw(st.floats(0, 1e6))),
        wakeups_per_s=draw(st.floats(0, 5000)),
        involuntary_per_s=draw(st.floats(0, 5000)),
        nice=draw(st.lists(st.integers(-20, 19), max_size=3, unique=True).map(sorted)),
        policy=["SCHED_OTHER"],
        affinity=draw(st.sampled_from([None, "0-3", "7", "0,2-5", "bogus", "9-1"])),
        classification=[
            Classification(label=lab, evidence=[draw(names)])
            for lab in draw(st.lists(st.sampled_from(LABELS), max_size=2, unique=True))
        ],
    )


profiles = st.builds(
    lambda groups, cpus, seconds: profile(groups, cpus=cpus, seconds=seconds),
    st.lists(task_groups(), max_size=12),
    st.integers(1, 256),
    st.floats(0.1, 60),
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=profiles, cpus=st.one_of(st.none(), st.integers(1, 8)))
def test_any_profile_gives_a_scenario_that_parses(p, cpus):
    try:
        text = scenario_from_profile(p, cpus=cpus, duration="2s")
    except ProfileScenarioError as exc:
        assert "no task group that used CPU" in str(exc)
        assert all(g.parallelism == 0 and g.wakeups_per_s == 0 for g in p.groups)
        return
    s = parse_scenario(text)
    assert 1 <= len(s.group) <= MAX_GROUPS
    assert sum(g.count for g in s.group) <= MAX_TOTAL_TASKS
    assert s.cpus == (cpus or min(p.machine.cpus, 4))
    for g in s.group:
        assert g.comm.isascii() and 0 < len(g.comm) <= 15
        assert _cgroup_is_safe(g.cgroup)
        assert g.spin is not None or g.cycle is not None


# --- drafts ---------------------------------------------------------------------------------


def _front_end(text: str, tmp: Path):
    result = translate(Source(tmp / "draft.sched", text))
    assert result.ok, [str(d) for d in result.diagnostics]
    assert result.diagnostics == [], [str(d) for d in result.diagnostics]  # no warnings either
    assert result.policy is not None
    return result


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(p=profiles)
def test_any_profile_gives_a_draft_the_front_end_accepts(p, tmp_path):
    text = draft_policy(p)
    policy = _front_end(text, tmp_path).policy
    assert policy.classes[-1].name == "rest" and policy.classes[-1].when is None
    assert len(policy.classes) <= MAX_CLASSES
    for c in policy.classes:
        assert c.name not in DSL_WORDS


def hostile_profile() -> Profile:
    return profile(
        [
            group(
                "quote",
                comm='a"b\\c',
                wakeups=100,
                parallelism=0.1,
                run_us=300,
                labels=("latency-critical",),
                evidence='x\n}\nscheduler evil "pwn" {',
            ),
            group("newline", comm="job\nx]]", threads=2, parallelism=2, labels=("batch",)),
            group("unicode", comm="café☕", wakeups=40, parallelism=0.2, labels=("interactive",)),
            group("toolong", comm="averyveryverylongname", wakeups=5, parallelism=0.1),
            group("scheduler", comm="when", wakeups=5, parallelism=0.1, cgroup="/../etc"),
            group(
                "9lives",
                comm="x",
                leader="brackets[1]",
                wakeups=5,
                parallelism=0.1,
                cgroup="/system.slice/my app.service",
            ),
            group("nothing", comm="\n\n\n", wakeups=5, parallelism=0.1),
            group("svc", wakeups=5, parallelism=0.05, cgroup="/system.slice/a@b:c=d,e+f.service"),
            group("session", wakeups=5, parallelism=0.04, cgroup="/user.slice/session-2.scope"),
        ]
    )


def _compile(text: str, tmp: Path, settings, toolchain):
    src = tmp / "draft.sched"
    out = compile_policy(Source(src, text), settings, out=tmp / "draft.bpf.o", toolchain=toolchain)
    assert out.ok, [str(d) for d in out.diagnostics]
    assert out.diagnostics == [], [str(d) for d in out.diagnostics]
    assert out.object_path is not None and out.object_path.stat().st_size > 0
    return out


def test_draft_of_a_build_next_to_a_database_compiles_and_classifies(settings, toolchain, tmp_path):
    text = draft_policy(build_workload(), name="build_db")
    assert text.startswith("# DRAFT policy generated by `schedc profile --draft`")
    assert "scheduler build_db " in text
    out = _compile(text, tmp_path, settings, toolchain)
    policy = out.policy
    assert policy is not None
    by = {c.name: c for c in policy.classes}
    assert list(by) == ["cc1", "firefox_renderer", "postgres", "rest"]
    assert by["postgres"].preempts and by["postgres"].queue.name == "critical_q"
    assert by["postgres"].queue.order == "fifo" and by["cc1"].queue.order == "vtime"
    assert by["cc1"].queue.name == "batch_q" and by["rest"].queue.name == "normal_q"
    # thresholds from the measured runtimes: postgres p90 600us -> slice 1.2 ms, bound 2.4 ms;
    # cc1 p90 8 ms -> a 32 ms slice (4 x, within 20-100 ms)
    assert "task.avg_runtime < 2400us preempts" in text
    assert "slice cc1 = 32ms, firefox_renderer = 8ms, postgres = 1200us" in text
    assert "dispatch critical_q then interactive_q then normal_q then batch_q, aging 100ms" in text
    # evidence for each class in the header
    assert "# postgres (latency-critical, queue critical_q):" in text
    assert "latency-critical: measured as latency-critical" in text
    # the compiled conditions put tasks where the profile saw them
    pg_cgroup = ("system.slice", "postgresql.service")
    tasks = [
        HostTask(comm="cc1"),
        HostTask(comm="postgres", cgroup=pg_cgroup, avg_runtime_ns=300_000),
        HostTask(comm="postgres", cgroup=pg_cgroup, avg_runtime_ns=50_000_000),  # now a hog
        HostTask(comm="postgres"),  # another cgroup: not this group
        HostTask(comm="Renderer", process_comm="firefox", avg_runtime_ns=1_000_000),
        HostTask(comm="Renderer", process_comm="chrome", avg_runtime_ns=1_000_000),
        HostTask(comm="bash"),
    ]
    got = [c.name for c in classify(policy, out.c_text or "", toolchain, tasks)]
    assert got == ["cc1", "postgres", "rest", "rest", "firefox_renderer", "rest", "rest"]


def test_draft_of_hostile_names_compiles_and_matches_them(settings, toolchain, tmp_path):
    text = draft_policy(hostile_profile())
    out = _compile(text, tmp_path, settings, toolchain)
    policy = out.policy
    assert policy is not None
    names = [c.name for c in policy.classes]
    assert names == [
        "newline", "unicode", "quote", "toolong", "scheduler_2", "c_9lives", "svc", "session",
        "rest",
    ]  # fmt: skip
    assert 'task.comm == "a\\"b\\\\c"' in text
    assert 'task.comm matches "job?x??"' in text  # \n, ] and ] as one byte each
    assert 'task.comm startswith "averyveryverylo"' in text  # the 15 bytes the kernel keeps
    # "/../etc", a path with a space and a transient scope are not matched; a plain one is
    assert text.count("task.cgroup under") == 1
    assert 'task.comm == "svc" and task.cgroup under "/system.slice/a@b:c=d,e+f.service"' in text
    assert "left out: group 'nothing': nothing to match it by" in text
    # the evidence's line breaks stay inside the comment
    assert "\nscheduler evil" not in text and "x\\x0a}\\x0ascheduler evil" in text
    tasks = [
        HostTask(comm='a"b\\c', avg_runtime_ns=100_000),
        HostTask(comm="job\nx]]"),
        HostTask(comm="café☕", avg_runtime_ns=1_000_000),
        HostTask(comm="averyveryverylo"),
        HostTask(comm="when"),
        HostTask(comm="x", process_comm="brackets[1]"),
        HostTask(comm="x"),
        HostTask(comm="svc", cgroup=("system.slice", "a@b:c=d,e+f.service", "sub")),
        HostTask(comm="svc", cgroup=("system.slice",)),
        HostTask(comm="session", cgroup=("user.slice", "session-9.scope")),
    ]
    got = [c.name for c in classify(policy, out.c_text or "", toolchain, tasks)]
    assert got == [
        "quote", "newline", "unicode", "toolong", "scheduler_2", "c_9lives", "rest", "svc",
        "rest", "session",
    ]  # fmt: skip


def test_draft_with_one_group_and_with_none(settings, toolchain, tmp_path):
    one = draft_policy(profile([group("ffmpeg", threads=4, parallelism=4, labels=("batch",))]))
    policy = _compile(one, tmp_path, settings, toolchain).policy
    assert policy is not None and [c.name for c in policy.classes] == ["ffmpeg", "rest"]
    assert "dispatch normal_q then batch_q, aging 100ms" in one
    none = draft_policy(profile([]))
    policy = _compile(none, tmp_path, settings, toolchain).policy
    assert policy is not None and [c.name for c in policy.classes] == ["rest"]
    assert "dispatch" not in none.split("{", 1)[1]  # one queue needs no dispatch statement


def test_draft_of_more_groups_than_the_dsl_allows_merges_them(settings, toolchain, tmp_path):
    labels = ("batch", "interactive", "io-bound", "latency-critical")
    groups = [
        group(f"svc{i}", wakeups=10 + i, parallelism=1.0 - i / 100, labels=(labels[i % 4],))
        for i in range(45)
    ]
    text = draft_policy(profile(groups))
    out = _compile(text, tmp_path, settings, toolchain)
    policy = out.policy
    assert policy is not None
    names = [c.name for c in policy.classes]
    assert len(names) == MAX_CLASSES
    assert names[-5:] == [
        "more_latency_critical",
        "more_interactive",
        "more_normal",
        "more_batch",
        "rest",
    ]
    assert "more than the DSL's 32: the 18 smallest merged" in text
    # svc0..svc26 keep their own classes; svc27..svc44 are merged by label (i % 4)
    tasks = [
        HostTask(comm="svc0"),
        HostTask(comm="svc43", avg_runtime_ns=100_000),
        HostTask(comm="svc42"),
        HostTask(comm="svc44"),
        HostTask(comm="svc99"),
    ]
    got = [c.name for c in classify(policy, out.c_text or "", toolchain, tasks)]
    assert got == ["svc0", "more_latency_critical", "more_normal", "more_batch", "rest"]


def test_draft_name_must_be_a_scheduler_name():
    for bad in ("Draft", "1x", "a" * 25, "has-dash", ""):
        with pytest.raises(DraftError, match="name: "):
            draft_policy(build_workload(), name=bad)


# --- in the sandbox -------------------------------------------------------------------------

# A database next to a build, measured on 4 CPUs: a batch group that wakes (so its wake-to-run
# delays can be compared with) and a latency-critical one.
VM_PROFILE = profile(
    [
        group("cc1", threads=6, parallelism=5.4, run_us=30000, wakeups=30, preempted=5,
              labels=("batch",), host_cpus=4),
        group("redis-server", threads=2, parallelism=0.1, run_us=500, wakeups=100,
              preempted=1, labels=("latency-critical",), host_cpus=4),
    ],
    cpus=4,
)  # fmt: skip


def profile_case(directory: Path, settings, cpus: int = 2) -> Case:
    """The profile's scenario (2 s) and its draft, compiled: a case for any boot of `cpus`
    CPUs (another VM test's boot can carry it, at the cost of its two runs)."""
    from schedc.bench.runner import compile_for_bench  # noqa: PLC0415

    text = scenario_from_profile(VM_PROFILE, cpus=cpus, duration="2s")
    path = directory / "profiled.scenario.toml"
    path.write_text(text)
    scenario = parse_scenario(text, str(path))
    draft = directory / "draft.sched"
    draft.write_text(draft_policy(VM_PROFILE))
    compiled = compile_for_bench([draft], settings, directory / "build")
    assert compiled.ok, [str(d) for d in compiled.diagnostics]
    return Case(scenario, compiled.policies)


def check_profile_result(result: ScenarioResult) -> None:
    """The draft ran on the profile's scenario, and every expectation has its figures (whether
    the draft passes them is not asserted: it is a draft)."""
    assert result.policy == "draft" and result.scenario == "profiled"
    implicit = {e.kind: e for e in result.expectations if e.line is None}
    assert implicit["enabled"].ok, implicit["enabled"].detail  # the draft attached and stayed
    assert implicit["exited"].ok, implicit["exited"].detail
    explicit = [e for e in result.expectations if e.line is not None]
    assert [(e.kind, e.groups) for e in explicit] == [
        ("wait", ["redis-server"]),
        ("wait", ["redis-server", "cc1"]),
        ("starvation", ["cc1"]),
        ("starvation", ["redis-server"]),
    ]
    for e in explicit:
        assert e.measured is not None, e
        assert e.baseline is not None, e


def test_the_vm_profile_scenario_has_the_shape_the_vm_test_checks():
    """The case test_behaviour_vm's boot runs (4 CPUs): its groups and expectations."""
    text = scenario_from_profile(VM_PROFILE, cpus=4, duration="2s")
    scenario = parse_scenario(text)
    assert [g.name for g in scenario.group] == ["cc1", "redis-server"]
