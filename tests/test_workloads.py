"""The one workload registry (`schedc/workloads.py`): `verify --run` and `schedc bench` choose
from views of one table, the guest command lines are the ones the run tests always used, and no
other module keeps a table or a command line of its own."""

from __future__ import annotations

import ast
import shutil
import subprocess
import time
import typing
from pathlib import Path

import pytest

from schedc.agent.operations import VerifyArgs
from schedc.cli import main as schedc_main
from schedc.verifier.sandbox import _guest_script
from schedc.workloads import (
    DEFAULT_WORKLOAD,
    LOWER,
    RECIPES,
    RUN_LOADS,
    WORKLOADS,
    Workload,
    WorkloadParams,
    parse_elapsed,
    run_load_command,
    run_load_problem,
    workload_problems,
)
from tests.conftest import ROOT

# The run tests' loads, byte for byte as sandbox.py's own table had them before the registry.
RUN_TEST_COMMANDS = {
    "spin": (
        'sh -c \'p=; for i in 1 2 3 4; do (while :; do :; done) & p="$p $!"; done; '
        '(while :; do sleep 0.01; done) & p="$p $!"; sleep 4; kill $p\' >/dev/null 2>&1'
    ),
    "stress": "stress-ng --cpu 4 --timeout 4s --quiet",
    "mixed": "stress-ng --cpu 2 --switch 2 --timer 1 --timeout 4s --quiet",
    "hackbench": "timeout 4 hackbench -l 100000 >/dev/null 2>&1",
}


def test_the_run_test_loads_are_the_commands_they_always_were():
    assert list(RUN_LOADS) == [*RUN_TEST_COMMANDS, "wakebench"]  # wakebench is new
    for name, command in RUN_TEST_COMMANDS.items():
        assert run_load_command(name, 4) == command
    assert run_load_command("mixed", 2.5).endswith("--timeout 2.5s --quiet")
    assert DEFAULT_WORKLOAD == "mixed"


def test_the_guest_script_runs_the_registry_command_under_the_policy(tmp_path):
    script = _guest_script(tmp_path, "bpftool", [tmp_path / "0" / "p.bpf.o"], run=(4, "stress"))
    assert f"  ( {RUN_TEST_COMMANDS['stress']} ) & wl=$!" in script.splitlines()


def test_each_command_chooses_from_its_view_in_the_table_order():
    assert list(RECIPES) == [
        "hackbench",
        "stress-ng",
        "cyclictest",
        "wakebench",
        "batch-makespan",
        "compile",
    ]
    order = list(WORKLOADS)
    for view in (RECIPES, RUN_LOADS):
        assert all(view[name] is WORKLOADS[name] for name in view)
        assert [order.index(n) for n in view] == sorted(order.index(n) for n in view)
    assert set(RECIPES) | set(RUN_LOADS) == set(WORKLOADS)
    # hackbench and wakebench are both: a load for the run test and a benchmark
    for both in ("hackbench", "wakebench"):
        assert WORKLOADS[both].run_test and WORKLOADS[both].is_benchmark
    literal = typing.get_args(VerifyArgs.model_fields["workload"].annotation)
    assert list(literal) == sorted(RUN_LOADS)


def test_verify_refuses_a_workload_that_is_only_a_benchmark(capsys):
    with pytest.raises(SystemExit) as stop:
        schedc_main(["verify", "--run", "1", "--workload", "cyclictest", "x.sched"])
    assert stop.value.code == 2
    assert "invalid choice: 'cyclictest'" in capsys.readouterr().err
    assert run_load_problem("cyclictest") == (
        "unknown workload 'cyclictest'; choose one of: spin, stress, mixed, hackbench, wakebench"
    )
    assert workload_problems(["spin"]) == [
        "unknown workload 'spin' (choose from "
        "hackbench, stress-ng, cyclictest, wakebench, batch-makespan, compile)"
    ]


def test_a_missing_program_names_its_package_for_both_commands(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _program: None)
    assert run_load_problem("hackbench") == (
        "workload 'hackbench' needs hackbench: apt-get install rt-tests, or use --workload spin"
    )
    assert run_load_problem("mixed") == (
        "workload 'mixed' needs stress-ng: apt-get install stress-ng, or use --workload spin"
    )
    assert run_load_problem("spin") is None  # a shell is enough
    assert workload_problems(["hackbench"]) == [
        "workload 'hackbench' needs hackbench: apt-get install rt-tests"
    ]
    assert run_load_problem("wakebench") == (
        "workload 'wakebench' needs cc: apt-get install gcc, or use --workload spin"
    )


def test_a_half_defined_workload_is_refused_when_the_table_is_built():
    with pytest.raises(ValueError, match="all its fields or none"):
        Workload(name="half", summary="", metric="time", unit="s", direction=LOWER)
    with pytest.raises(ValueError, match="neither a run-test load nor a benchmark"):
        Workload(name="idle", summary="nothing")
    with pytest.raises(ValueError, match="direction"):
        Workload(
            name="sideways",
            summary="",
            metric="m",
            unit="s",
            direction="sideways",
            script=lambda _p: "true\n",
            parse=parse_elapsed,
            expected_seconds=lambda _p: 1.0,
        )
    with pytest.raises(ValueError, match="not a benchmark"):
        WORKLOADS["spin"].command_line(WorkloadParams())


def _session_processes(sid: int) -> list[str]:
    """The processes still alive in session SID (`comm` of each)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        comm, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :]
        if int(rest.split()[3]) == sid and rest.split()[0] != "Z":
            alive.append(comm)
    return alive


def test_the_wakebench_load_runs_on_this_host_and_its_kill_takes_everything_with_it():
    """The run test starts the load as `( COMMAND ) & wl=$!` and ends it with `kill $wl`: the
    program and its CPU hogs must go with the outer sh, before the program's own end."""
    if shutil.which("cc") is None:
        pytest.skip("wakebench needs cc (apt-get install gcc)")
    command = run_load_command("wakebench", 30)
    assert "-d 30 " in command
    runner = f"( {command} ) & wl=$!; sleep 1.5; kill $wl; wait $wl; echo stopped"
    proc = subprocess.Popen(
        ["sh", "-c", runner], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    out, _ = proc.communicate(timeout=60)
    assert out == "stopped\n"
    time.sleep(0.3)  # the hogs' subshells take the TERM of `kill $p`
    assert _session_processes(proc.pid) == []


def _second_tables(paths: list[Path]) -> list[str]:
    """Dicts keyed by two or more workload names, and strings that run a registry program."""
    names = set(WORKLOADS)
    programs = {program for w in WORKLOADS.values() for program, _ in w.needs} - {"cc", "make"}
    assert programs >= {"stress-ng", "hackbench", "cyclictest"}  # the scan looks for something
    offenders = []
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if len(keys & names) >= 2:
                    offenders.append(f"{path.name}:{node.lineno}: a workload table")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                ran = [p for p in sorted(programs) if f"{p} -" in node.value]
                offenders += [f"{path.name}:{node.lineno}: runs {p}" for p in ran]
    return offenders


def test_the_registry_is_the_only_table_of_workloads():
    """No other module of schedc keeps a dict keyed by workload names, or a guest command line
    of the registry's programs: adding a workload is an entry in schedc/workloads.py only."""
    registry = ROOT / "schedc" / "workloads.py"
    others = [p for p in sorted((ROOT / "schedc").rglob("*.py")) if p != registry]
    assert _second_tables(others) == []
    assert _second_tables([registry]) != []  # the scan finds the real table


def test_the_scan_finds_a_second_table(tmp_path: Path):
    canary = tmp_path / "loads.py"
    canary.write_text('LOADS = {"spin": "sh -c true", "mixed": "stress-ng --cpu 2 --quiet"}\n')
    assert _second_tables([canary]) == [
        "loads.py:1: a workload table",
        "loads.py:1: runs stress-ng",
    ]
