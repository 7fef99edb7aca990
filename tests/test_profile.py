"""`schedc profile` and schedc.profile on real processes: named CPU-bound and sleep-heavy
children (tests/profile_child.py), a multi-threaded process with named threads, awkward comms.

The machine is small and shared: loads are one spinning thread at a time at most, and the
assertions compare groups by ratios with generous margins."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedc.profile.classify import classify
from schedc.profile.machine import machine_facts
from schedc.profile.model import Distribution, Profile, Target, TaskGroup
from schedc.profile.procfs import parse_schedstat, parse_stat, parse_status
from schedc.profile.sample import ProfileError, collect, profile_command

ROOT = Path(__file__).resolve().parent.parent
CHILD = str(Path(__file__).resolve().parent / "profile_child.py")
SCHEDC = str(ROOT / ".venv" / "bin" / "schedc")


def child_argv(*args: str) -> list[str]:
    return [sys.executable, CHILD, *args]


def wait_for_comm(pid: int, comm: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/comm").read_text().rstrip("\n") == comm:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} never took the name {comm!r}")


def wait_for_threads(pid: int, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(os.listdir(f"/proc/{pid}/task")) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} never had {count} threads")


@pytest.fixture
def spawn() -> Iterator:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, comm: str | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(child_argv(*args))
        started.append(proc)
        if comm is not None:
            wait_for_comm(proc.pid, comm)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def gone(pid: int) -> bool:
    """No such process, or a zombie that nobody has reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return parse_stat(stat).state in ("Z", "X")  # type: ignore[union-attr]


# -- parsing /proc lines, on real processes with awkward names ---------------------------------
@pytest.mark.parametrize("comm", ["a) b (c", "x (y) z) 1 2 3", ")) ((", "sp ace "])
def test_parse_stat_awkward_comms(spawn, comm: str) -> None:
    proc = spawn("nice", comm, "3", comm=comm)
    nice = min(os.nice(0) + 3, 19)  # children inherit ours (`nice -n 10 pytest`)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # os.nice runs after the rename
        st = parse_stat(Path(f"/proc/{proc.pid}/stat").read_bytes())
        if st is not None and st.nice == nice:
            break
        time.sleep(0.02)
    assert st is not None
    assert st.comm == comm
    assert st.ppid == os.getpid()
    assert st.nice == nice
    assert st.policy == 0
    task = f"/proc/{proc.pid}/task/{proc.pid}/"
    status = parse_status(Path(task + "status").read_bytes())
    assert status is not None and status.voluntary + status.involuntary >= 1
    assert status.cpus_allowed
    ss = parse_schedstat(Path(task + "schedstat").read_bytes())
    assert ss is not None and ss[0] > 0 and ss[2] >= 1


def test_awkward_comm_groups(spawn) -> None:
    proc = spawn("nap", "a) b (c", comm="a) b (c")
    profile = collect(Target(mode="pids", pids=[proc.pid]), seconds=1.0, interval_ms=50)
    assert [g.name for g in profile.groups] == ["a) b (c"]
    assert profile.groups[0].runtime_per_run_us.samples >= 3


# -- collect: groups, their figures, their labels ----------------------------------------------
def test_collect_groups_shapes_and_classification(spawn) -> None:
    hog = spawn("spin", "sc-hog", comm="sc-hog")
    nap = spawn("nap", "sc-nap", comm="sc-nap")
    multi = spawn("multi", "sc-multi", "sc-worker", comm="sc-multi")
    wait_for_threads(multi.pid, 3)
    time.sleep(0.1)  # the workers name themselves
    lines: list[str] = []
    profile = collect(
        Target(mode="pids", pids=[hog.pid, nap.pid, multi.pid]),
        seconds=3.0,
        interval_ms=50,
        progress=lines.append,
    )
    names = [g.name for g in profile.groups]
    assert set(names) == {"sc-hog", "sc-nap", "sc-multi", "sc-multi/sc-worker"}, names
    assert names[0] == "sc-hog"  # sorted by CPU share
    shares = [g.cpu_share for g in profile.groups]
    assert shares == sorted(shares, reverse=True)

    hog_g = profile.group("sc-hog")
    nap_g = profile.group("sc-nap")
    workers = profile.group("sc-multi/sc-worker")
    leader = profile.group("sc-multi")
    assert hog_g and nap_g and workers and leader
    assert (workers.threads, workers.processes) == (2, 1)
    assert (workers.leader_comm, workers.comm) == ("sc-multi", "sc-worker")
    assert (leader.threads, leader.processes) == (1, 1)
    assert hog_g.threads == 1 and nap_g.threads == 1

    # shapes: the spinner runs much longer per run, the napper wakes much more often
    # (on a crowded machine, preemptions cut the spinner's runs short: 2x, not 10x)
    assert hog_g.runtime_per_run_us.p50 > 2 * nap_g.runtime_per_run_us.p50
    assert nap_g.runtime_per_run_us.p50 < 2000
    assert nap_g.wakeups_per_s > 30
    assert nap_g.wakeups_per_s > 5 * max(hog_g.wakeups_per_s, 1.0)
    assert workers.wakeups_per_s > 30
    assert hog_g.cpu_share > 2 * nap_g.cpu_share
    assert 0 < hog_g.parallelism <= 1.05
    assert hog_g.cpu_share == pytest.approx(hog_g.parallelism / profile.machine.cpus)
    assert nap_g.runtime_per_run_us.samples >= 20
    assert nap_g.run_delay_us.p99 >= nap_g.run_delay_us.p50
    assert hog_g.nice == [os.nice(0)] and hog_g.policy == ["SCHED_OTHER"]

    # classification, with its evidence
    hog_labels = {c.label for c in hog_g.classification}
    nap_labels = {c.label for c in nap_g.classification}
    assert "batch" in hog_labels
    assert not hog_labels & {"interactive", "io-bound"}
    assert nap_labels & {"interactive", "io-bound"}
    assert "batch" not in nap_labels
    batch = next(c for c in hog_g.classification if c.label == "batch")
    assert any("per run (p50)" in e for e in batch.evidence)

    # the window, the rounds, the profiler's own cost, progress
    assert 2.5 < profile.seconds < 4.0
    assert profile.samples >= 20
    assert profile.overhead.cpu_seconds > 0
    assert profile.overhead.fraction_of_one_cpu < 0.5
    assert any("threads in" in line and "groups" in line for line in lines)
    assert Profile.model_validate_json(profile.model_dump_json()) == profile


def test_collect_follows_descendants_started_later(spawn) -> None:
    parent = spawn("parent", "sc-parent", "sc-late", comm="sc-parent")
    try:
        profile = collect(Target(mode="pids", pids=[parent.pid]), seconds=1.5, interval_ms=50)
    finally:  # the grandchild is ours to stop too
        for pid in children_of(parent.pid):
            os.kill(pid, signal.SIGKILL)
    late = profile.group("sc-late")
    assert late is not None, [g.name for g in profile.groups]
    assert late.processes == 1 and late.cpu_share > 0
    assert profile.group("sc-parent") is not None


def children_of(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                st = parse_stat(Path(f"/proc/{name}/stat").read_bytes())
            except OSError:
                continue
            if st is not None and st.ppid == pid:
                out.append(int(name))
    return out


def test_collect_stop_event_ends_the_window_early(spawn) -> None:
    proc = spawn("nap", "sc-stop", comm="sc-stop")
    stop = threading.Event()
    threading.Timer(0.6, stop.set).start()
    start = time.monotonic()
    profile = collect(
        Target(mode="pids", pids=[proc.pid]), seconds=30, interval_ms=50, stop=stop
    )
    assert time.monotonic() - start < 5
    assert 0.4 < profile.seconds < 5
    assert profile.group("sc-stop") is not None


def test_collect_pid_of_a_thread_means_its_process(spawn) -> None:
    multi = spawn("multi", "sc-tmulti", "sc-tworker", comm="sc-tmulti")
    wait_for_threads(multi.pid, 3)
    worker = max(int(t) for t in os.listdir(f"/proc/{multi.pid}/task"))
    profile = collect(Target(mode="pids", pids=[worker]), seconds=0.6, interval_ms=50)
    workers = profile.group("sc-tmulti/sc-tworker")
    assert workers is not None, [g.name for g in profile.groups]
    assert workers.threads == 2 and profile.group("sc-tmulti") is not None


def test_collect_unknown_pid() -> None:
    with pytest.raises(ProfileError, match="no such process"):
        collect(Target(mode="pids", pids=[2**22 + 12345]), seconds=0.2, interval_ms=50)


def test_collect_all_leaves_out_the_profiler() -> None:
    import ctypes

    libc = ctypes.CDLL(None)
    old = Path("/proc/self/comm").read_bytes().strip()
    libc.prctl(15, b"sc-profiler", 0, 0, 0)  # PR_SET_NAME: this (main) thread, the leader
    try:
        profile = collect(Target(mode="all"), seconds=0.3, interval_ms=100)
    finally:
        libc.prctl(15, old, 0, 0, 0)
    assert profile.groups
    assert not [g for g in profile.groups if "sc-profiler" in g.name]


# -- profile_command: the command, its children, its end ---------------------------------------
def test_profile_command_follows_children_and_stops_them() -> None:
    profile, status = profile_command(
        child_argv("parent", "sc-cparent", "sc-cchild"), seconds=1.5, interval_ms=50
    )
    assert status == -signal.SIGTERM
    assert profile.target.mode == "command" and profile.target.pids
    assert profile.group("sc-cchild") is not None, [g.name for g in profile.groups]
    assert profile.group("sc-cparent") is not None
    assert gone(profile.target.pids[0])
    out = subprocess.run(["pgrep", "-x", "sc-cchild"], capture_output=True, text=True)
    assert out.stdout.strip() == "" or all(gone(int(p)) for p in out.stdout.split())


def stop_when_named(comm: str, parent: int | None = None) -> threading.Event:
    """An event set once a child of `parent` (default: this process) has taken the name."""
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stop.is_set():
            for pid in children_of(parent or os.getpid()):
                try:
                    if Path(f"/proc/{pid}/comm").read_text().rstrip("\n") == comm:
                        stop.set()
                        return
                except OSError:
                    pass
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return stop


def test_profile_command_kills_a_command_that_ignores_sigterm() -> None:
    stop = stop_when_named("sc-stubborn")  # it ignores SIGTERM from then on
    start = time.monotonic()
    profile, status = profile_command(
        child_argv("stubborn", "sc-stubborn"), seconds=30, interval_ms=50, grace=0.5, stop=stop
    )
    assert stop.is_set()
    assert status == -signal.SIGKILL
    assert time.monotonic() - start < 20
    assert gone(profile.target.pids[0])


def test_profile_command_ends_when_the_command_exits() -> None:
    profile, status = profile_command(
        child_argv("exit", "sc-quick", "0.6"), seconds=10, interval_ms=50
    )
    assert status == 3
    assert profile.seconds < 3
    assert profile.group("sc-quick") is not None


# -- the command line ----------------------------------------------------------------------------
def schedc(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCHEDC, "profile", *args], capture_output=True, text=True, timeout=timeout
    )


def test_cli_json_of_a_command(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "p.json"
    result = schedc(
        "--format", "json", "--seconds", "1.5", "--interval", "50", "-o", str(out), "--",
        *child_argv("spin", "sc-cli"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["command"], data["ok"], data["error"], data["diagnostics"]) == (
        "profile", True, None, []
    )
    [found] = data["results"]
    profile = Profile.model_validate(found)
    assert Profile.model_validate_json(out.read_text()) == profile
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["p.json"]  # no temp left
    assert profile.target.command[-2:] == ["spin", "sc-cli"]
    assert profile.groups[0].name == "sc-cli"
    assert 1.2 < profile.seconds < 3
    assert re.search(r"schedc: profiling 1\.\d/1\.5 s, \d+ threads in \d+ groups", result.stderr)
    assert "signal 15" in result.stderr
    assert gone(profile.target.pids[0])  # stopped and reaped after --seconds


def test_cli_human_of_pids(spawn) -> None:
    hog = spawn("spin", "sc-hhog", comm="sc-hhog")
    nap = spawn("nap", "sc-hnap", comm="sc-hnap")
    # 2 s: on a loaded machine (CI runs a VM beside it) a hog gets less CPU in a short window
    result = schedc("--pid", str(hog.pid), str(nap.pid), "--seconds", "2", "--interval", "50")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("machine: ")
    assert "GROUP" in text and "RUN p50/p90" in text and "DELAY p50/p99" in text
    rows = [line for line in text.splitlines() if line.startswith("sc-h")]
    assert [r.split()[0] for r in rows] == ["sc-hhog", "sc-hnap"]
    assert "    batch: uses" in text, text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_interrupted_still_writes_the_profile(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "p.json"
    proc = subprocess.Popen(
        [SCHEDC, "profile", "--seconds", "60", "--interval", "50", "-o", str(out),
         "--format", "json", "--", *child_argv("nap", "sc-int")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    named = stop_when_named("sc-int", parent=proc.pid)
    assert proc.stderr is not None
    while True:  # the first progress line, and the child has taken its name
        line = proc.stderr.readline()
        if not line or ("schedc: profiling" in line and named.wait(20)):
            break
    time.sleep(0.3)  # a round or more after the rename
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signum, stderr
    profile = Profile.model_validate_json(out.read_text())
    data = json.loads(stdout)
    assert data["ok"] is False and data["error"]["message"].startswith("stopped after ")
    assert Profile.model_validate(data["results"][0]) == profile
    assert 0.5 < profile.seconds < 30
    assert profile.group("sc-int") is not None
    assert gone(profile.target.pids[0])
    assert ("stopped by SIGTERM" if signum == signal.SIGTERM else "interrupted") in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one target"),
        (["--pid", "1", "--all"], "give one target, not --pid and --all"),
        (["--all", "--", "true"], "not -- COMMAND and --all"),
        (["--seconds", "0", "--all"], "--seconds"),
        (["--seconds", "abc", "--all"], "--seconds"),
        (["--interval", "0", "--all"], "--interval"),
        (["--interval", "20000", "--all"], "--interval"),
        (["--pid", "x"], "--pid"),
        (["--pid", str(2**22 + 12345)], "no such process"),
        (["--cgroup", "/no/such/cgroup-here"], "no such cgroup v2 folder"),
        (["--format", "xml", "--all"], "--format"),
        (["--", "/no/such/program"], "cannot start"),
    ],
)
def test_cli_usage_errors(capsys, args: list[str], message: str) -> None:
    status, out, err = schedc_here(capsys, *args)
    assert status == 2, (out, err)
    assert message in err
    assert out == ""


def schedc_here(capsys, *args: str) -> tuple[int, str, str]:
    """`schedc profile ARGS` in this process (a process each costs a second of startup)."""
    from schedc.cli import main

    try:
        status = main(["profile", *args])
    except SystemExit as exc:  # argparse
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_output_folder_is_refused(capsys, tmp_path: Path) -> None:
    status, _out, err = schedc_here(capsys, "--all", "--seconds", "0.1", "-o", str(tmp_path))
    assert status == 2 and "is a folder" in err


def test_cli_all_needs_root(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """--all as another user than root is refused before anything is sampled. The user is
    what os.geteuid() says: as root, the test says it is uid 65534 (dropping privileges for
    real needs a checkout that user can read, which a private temp folder is not)."""
    if os.geteuid() == 0:
        monkeypatch.setattr(os, "geteuid", lambda: 65534)
    status, out, err = schedc_here(capsys, "--all", "--seconds", "0.2")
    assert status == 2, (out, err)
    assert "--all needs root" in err and out == ""


# -- cgroup mode: the cgroup this test runs in (read only: tests never write to /sys) ---------
def test_collect_cgroup(spawn) -> None:
    from schedc.profile.procfs import parse_cgroup
    from schedc.profile.sample import cgroup_mount, resolve_cgroup

    mount = cgroup_mount()
    if mount is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    ours = parse_cgroup(Path("/proc/self/cgroup").read_bytes())
    folder = mount / ours.lstrip("/")
    if not (folder / "cgroup.procs").is_file():
        pytest.skip(f"this process's cgroup {ours} is not visible under {mount}")
    # a folder and the path /proc/PID/cgroup shows name the same cgroup
    assert resolve_cgroup(str(folder)) == (folder.resolve(), ours)
    assert resolve_cgroup(ours) == (folder.resolve(), ours)
    nap = spawn("nap", "sc-cgnap", comm="sc-cgnap")
    profile = collect(Target(mode="cgroup", cgroup=ours), seconds=1.5, interval_ms=100)
    group = profile.group("sc-cgnap")
    assert group is not None, [g.name for g in profile.groups]
    assert group.cgroup == ours and group.runtime_per_run_us.samples >= 1
    # every task sampled is in the cgroup or below it
    prefix = ours.rstrip("/") + "/"
    assert all(g.cgroup == ours or g.cgroup.startswith(prefix) for g in profile.groups)
    assert nap.poll() is None


# -- machine facts, from a made-up /sys for the sched_ext case ----------------------------------
def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def test_machine_facts_sched_ext(tmp_path: Path) -> None:
    files = {
        "sys/devices/system/cpu/online": "0-3",
        "proc/sys/kernel/osrelease": "6.12.7-test",
        "sys/kernel/sched_ext/state": "enabled",
        "sys/kernel/sched_ext/root/ops": "rusty",
    }
    for cpu in range(4):
        top = f"sys/devices/system/cpu/cpu{cpu}/"
        files[top + "topology/physical_package_id"] = "0"
        files[top + "topology/core_id"] = str(cpu // 2)  # two SMT siblings per core
        files[top + "cache/index0/level"] = "1"
        files[top + "cache/index0/shared_cpu_list"] = f"{cpu // 2 * 2}-{cpu // 2 * 2 + 1}"
        files[top + "cache/index3/level"] = "3"
        files[top + "cache/index3/shared_cpu_list"] = "0-1" if cpu < 2 else "2-3"
    _tree(tmp_path, files)
    m = machine_facts(tmp_path)
    assert (m.cpus, m.online, m.kernel) == (4, "0-3", "6.12.7-test")
    assert m.scheduler == "sched_ext: rusty"
    t = m.topology
    assert (t.sockets, t.cores, t.threads_per_core, t.llcs) == (1, 2, 2, 2)


def test_machine_facts_fair_class(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "sys/devices/system/cpu/online": "0,2",
            "proc/sys/kernel/osrelease": "6.1.0",
            "sys/kernel/sched_ext/state": "disabled",
        },
    )
    m = machine_facts(tmp_path)
    assert (m.cpus, m.online, m.scheduler) == (2, "0,2", "CFS")
    _tree(tmp_path, {"proc/sys/kernel/osrelease": "6.6.1"})
    assert machine_facts(tmp_path).scheduler == "EEVDF"


def test_machine_facts_of_this_machine() -> None:
    m = machine_facts()
    assert m.cpus == len(os.sched_getaffinity(0)) or m.cpus >= 1
    assert m.kernel == os.uname().release
    assert m.scheduler in ("EEVDF", "CFS") or m.scheduler.startswith("sched_ext: ")


# -- classification thresholds --------------------------------------------------------------------
def _group(**figures: object) -> TaskGroup:
    def dist(p50: float, p99: float | None = None) -> Distribution:
        return Distribution(samples=50, mean=p50, p50=p50, p90=p50, p99=p99 or p50)

    base: dict[str, object] = {
        "name": "g",
        "leader_comm": "g",
        "comm": "g",
        "cgroup": "/",
        "threads": 1,
        "processes": 1,
        "cpu_share": 0.0,
        "parallelism": 0.01,
        "runtime_per_run_us": dist(200),
        "run_delay_us": dist(20, 50),
        "wakeups_per_s": 100.0,
        "involuntary_per_s": 1.0,
        "nice": [0],
        "policy": ["SCHED_OTHER"],
    }
    run = figures.pop("run_us", None)
    delay99 = figures.pop("delay99_us", None)
    if run is not None:
        base["runtime_per_run_us"] = dist(float(run))  # type: ignore[arg-type]
    if delay99 is not None:
        base["run_delay_us"] = dist(20, float(delay99))  # type: ignore[arg-type]
    base.update(figures)
    return TaskGroup(**base)  # type: ignore[arg-type]


def labels(group: TaskGroup) -> set[str]:
    return {c.label for c in classify(group)}


def test_classify_thresholds() -> None:
    assert labels(_group()) == {"interactive", "io-bound"}
    assert labels(_group(nice=[-5])) == {"interactive", "io-bound", "latency-critical"}
    assert labels(_group(policy=["SCHED_FIFO"])) >= {"latency-critical"}
    assert "latency-critical" in labels(_group(delay99_us=3000))  # waits 15x its run
    assert "latency-critical" not in labels(_group(delay99_us=800))
    hog = {"parallelism": 0.9, "run_us": 4000, "wakeups_per_s": 2.0, "involuntary_per_s": 200.0}
    assert labels(_group(**hog)) == {"batch"}
    # a CPU-bound thread on a crowded machine: little CPU, but preempted, not sleeping
    assert labels(_group(**{**hog, "parallelism": 0.01})) == {"batch"}
    assert labels(_group(**{**hog, "parallelism": 0.1, "involuntary_per_s": 1.0})) == set()
    assert labels(_group(**{**hog, "parallelism": 0.1, "involuntary_per_s": 8.0})) == set()
    # runs cut short by preemption still count as long runs when it never sleeps
    assert labels(_group(**{**hog, "run_us": 500})) == {"batch"}
    sleeper = {"run_us": 500, "wakeups_per_s": 40.0, "involuntary_per_s": 100.0}  # 29% voluntary
    assert labels(_group(**{**hog, **sleeper})) == set()
    # short runs, few CPU, but preempted rather than sleeping: batch, and not interactive
    crowded = {"parallelism": 0.06, "run_us": 190, "wakeups_per_s": 11.0}
    assert labels(_group(**crowded, involuntary_per_s=100.0)) == {"batch"}
    assert labels(_group(**crowded, involuntary_per_s=5.0)) == {"interactive"}  # 69% voluntary
    assert labels(_group(threads=4, parallelism=0.04, wakeups_per_s=0.5)) == set()
    few = _group()
    few = few.model_copy(
        update={"runtime_per_run_us": Distribution(samples=2, mean=1, p50=1, p90=1, p99=1)}
    )
    assert classify(few) == []
    evidence = next(c for c in classify(_group(nice=[-5])) if c.label == "latency-critical")
    assert any("nice -5" in e for e in evidence.evidence)
    hog_evidence = classify(_group(**hog))[0].evidence
    assert hog_evidence[1] == "runs 4.00 ms per run (p50) (batch: >= 1 ms)"


def test_profile_json_round_trip_matches_the_model(spawn) -> None:
    proc = spawn("nap", "sc-json", comm="sc-json")
    profile = collect(Target(mode="pids", pids=[proc.pid]), seconds=0.5, interval_ms=50)
    data = json.loads(profile.model_dump_json())
    assert data["schema_version"] == 1
    assert data["groups"][0]["name"] == "sc-json"
    assert Profile.model_validate(data) == profile


def test_cli_writes_a_scenario_and_a_draft_that_work(tmp_path: Path, settings, toolchain) -> None:
    """--scenario and --draft from a real profile: the scenario parses and names the measured
    comms, the draft compiles with clang and classifies the hog where the profile saw it."""
    from schedc.agent.classify import HostTask, classify
    from schedc.behaviour.scenario import load_scenario
    from schedc.compiler.pipeline import compile_policy

    scenario, draft = tmp_path / "w.scenario.toml", tmp_path / "w.sched"
    result = schedc(
        "--seconds", "1.5", "--interval", "50", "--scenario", str(scenario),
        "--scenario-cpus", "2", "--draft", str(draft), "--", *child_argv("spin", "sc-derived"),
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {scenario}" in result.stderr and f"wrote {draft}" in result.stderr
    parsed = load_scenario(scenario)
    assert parsed.cpus == 2 and "sc-derived" in [g.comm for g in parsed.group]
    text = draft.read_text()
    assert "DRAFT" in text and '"sc-derived"' in text
    compiled = compile_policy(draft, settings, out=tmp_path / "w.bpf.o", toolchain=toolchain)
    assert compiled.ok, [str(d) for d in compiled.diagnostics]
    assert compiled.policy is not None
    [chosen] = classify(compiled.policy, compiled.c_text or "", toolchain, [HostTask("sc-derived")])
    assert chosen.name != "rest", chosen.name


def test_cli_scenario_options_are_checked(capsys, tmp_path: Path) -> None:
    status, _out, err = schedc_here(capsys, "--scenario-cpus", "2", "--pid", "1")
    assert status == 2 and "--scenario-cpus goes with --scenario" in err
    status, _out, err = schedc_here(capsys, "--draft", str(tmp_path), "--pid", "1")
    assert status == 2 and "--draft" in err and "is a folder" in err
