"""`--set NAME=VALUE` (dsl/tunables.py, the pipeline's `set` stage): a DSL param's value for one
build, checked against the param's type and range, written into the generated C (so into the
object's read-only data), and reported with the results; errors at the param's line, nothing
built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from schedc.compiler.pipeline import compile_policy
from schedc.settings import Settings

POLICY = """scheduler tun "Tunable slices" {
  param quantum = 20ms in 1ms..100ms
  param boost: bool = false
  param depth = -2 in -10..10
  class hi when boost and task.nice < depth
  class all otherwise
  queue hq for hi fifo
  queue q for all vtime
  dispatch hq then q, aging 100ms
  slice all = quantum
}
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    src = tmp_path / "tun.sched"
    src.write_text(POLICY)
    return src


def build(policy: Path, settings: Settings, *sets: str) -> tuple[object, str]:
    c = policy.with_suffix(".c")
    result = compile_policy(
        policy, settings.with_overrides(params=list(sets)), out=policy.with_suffix(".o"), emit_c=c
    )
    return result, c.read_text() if c.exists() else ""


def test_set_values_are_the_params_the_object_starts_with(policy, settings):
    result, c = build(policy, settings, "quantum=1.5ms", "boost=true", "depth=-7")
    assert result.ok, result.diagnostics
    assert "param_quantum = 1500000ULL;" in c
    assert "param_boost = 1;" in c
    assert "param_depth = (-7LL);" in c
    assert result.artifact.params_set == {"quantum": "1500us", "boost": "true", "depth": "-7"}
    _, default = build(policy, settings)
    assert "param_quantum = 20000000ULL;" in default and "param_boost = 0;" in default


@pytest.mark.parametrize(
    ("given", "code", "line", "words"),
    [
        ("nope=1", "E123", 1, "has no param 'nope' (its params: boost, depth, quantum)"),
        ("quantum", "E123", 1, "--set takes NAME=VALUE"),
        ("quantum=3", "E124", 2, "'quantum' is a duration param, give a duration"),
        ("quantum=2.5ns", "E124", 2, "give a duration"),
        ("boost=yes", "E124", 3, "give true or false"),
        ("depth=1ms", "E124", 4, "give an integer"),
        ("quantum=500ms", "E125", 2, "outside the param's range 1ms..100ms"),
        ("quantum=1ms", None, None, ""),  # the bounds themselves are in range
        ("quantum=100ms", None, None, ""),
        ("depth=-11", "E125", 4, "outside the param's range -10..10"),
    ],
)
def test_a_bad_value_is_an_error_at_the_param_and_nothing_is_built(
    policy, settings, given, code, line, words
):
    result, c = build(policy, settings, given, "boost=true")
    if code is None:
        assert result.ok, result.diagnostics
        return
    assert not result.ok and result.object_path is None and c == ""
    [error] = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert (error.code, error.line) == (code, line) and words in error.message, error


def test_a_c_policy_takes_no_set(tmp_path, settings):
    src = tmp_path / "p.bpf.c"
    src.write_text("char _license[] __attribute__((section(\"license\"))) = \"GPL\";\n")
    result = compile_policy(src, settings.with_overrides(params=["x=1"]), out=tmp_path / "p.o")
    assert [d.code for d in result.diagnostics] == ["E123"]


def test_verify_says_what_it_was_built_with_and_stops_before_a_boot(policy, settings):
    """A bad value stops verify at the compile stage (no sandbox needed); the JSON names
    what was set."""
    proc = subprocess.run(
        [sys.executable, "-m", "schedc", "verify", "--sandbox", "--format", "json", str(policy)]
        + ["--set", "quantum=500ms"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    [result] = json.loads(proc.stdout)["results"]
    assert result["stage"] == "compile" and result["set"] == {}
    assert [d["code"] for d in result["diagnostics"]] == ["E125"]
    assert "booting" not in proc.stderr


def test_an_int_beyond_64_bits_is_not_a_value(tmp_path, settings):
    """A param without a range still takes only what an int literal can be (E008's bound)."""
    src = tmp_path / "wide.sched"
    src.write_text(POLICY.replace("param depth = -2 in -10..10", "param depth = -2"))
    result, _ = build(src, settings, "depth=9999999999999999999")
    assert [d.code for d in result.diagnostics if d.severity.name == "ERROR"] == ["E124"]
    ok, c = build(src, settings, "depth=-9223372036854775807")
    assert ok.ok and "param_depth = (-9223372036854775807LL);" in c


def typed_policy(text: str):
    from schedc.dsl.parser import parse_policy  # noqa: PLC0415
    from schedc.dsl.sema import analyze  # noqa: PLC0415

    ast, diags = parse_policy(text, "p.sched")
    assert ast is not None, diags
    typed, found = analyze(ast, text)
    assert typed is not None, found
    return typed


BOOL_POLICY = """scheduler b "a bool param" {
  param boost = false
  param quantum = 5ms in 1ms..10ms
  class fast when boost and task.nice < 0
  class rest otherwise
  queue q for fast, rest fifo
  slice fast = quantum, rest = quantum
}
"""


def test_parse_set_splits_at_the_first_equals_sign_and_wants_a_name_and_a_value():
    from schedc.dsl.tunables import SetError, parse_set  # noqa: PLC0415

    assert parse_set(" slice = 5ms ") == ("slice", "5ms")
    assert parse_set("x=a=b") == ("x", "a=b")  # the value may hold '=': then it is E124's
    for bad in ("slice", "slice=", "=5ms", "1x=3", "a-b=3", ""):
        with pytest.raises(SetError, match="NAME=VALUE"):
            parse_set(bad)


@pytest.mark.parametrize(("given", "value", "shown"), [("true", 1, "true"), ("false", 0, "false")])
def test_a_bool_param_takes_true_as_1_and_false_as_0(given, value, shown):
    from schedc.dsl.tunables import apply_sets  # noqa: PLC0415

    policy = typed_policy(BOOL_POLICY)
    done, diags = apply_sets(policy, [f"boost={given}"], "p.sched")
    assert (done, diags) == ({"boost": shown}, [])
    assert next(p for p in policy.params if p.name == "boost").value == value


def test_set_errors_name_the_file_and_change_nothing():
    from schedc.dsl.tunables import apply_sets  # noqa: PLC0415

    policy = typed_policy(BOOL_POLICY)
    done, diags = apply_sets(policy, ["quantum=2ms", "nonsense", "boost=TRUE"], "p.sched")
    assert done == {}
    assert [(d.code, d.file) for d in diags] == [("E123", "p.sched"), ("E124", "p.sched")]
    assert [p.value for p in policy.params] == [0, 5_000_000]


def test_every_set_error_is_reported_with_its_place_and_hint():
    """Each bad --set is reported (not only the first), with the file, a position (1:1 for
    one that names no param, the param's line otherwise) and a hint that says what to do."""
    from schedc.dsl.tunables import apply_sets  # noqa: PLC0415

    policy = typed_policy(BOOL_POLICY)
    sets = ["nosuch=1", "bad", "boost=TRUE", "quantum=50ms", "quantum=2ms", "nosuch2=3"]
    done, diags = apply_sets(policy, sets, "p.sched")
    assert done == {}
    assert [d.code for d in diags] == ["E123", "E123", "E124", "E125", "E123"]
    assert all(d.file == "p.sched" for d in diags)
    assert [(d.line, d.column) for d in diags] == [(1, 1), (1, 1), (2, 3), (3, 3), (1, 1)]
    assert "its params: boost, quantum" in diags[0].message
    assert "declare it first: param nosuch = VALUE" in (diags[0].hint or "")
    assert "the range is the param's `in LOW..HIGH`: a value the policy's author allows" == (
        diags[3].hint
    )
    empty = typed_policy(BOOL_POLICY.replace("  param boost = false\n", "").replace(
        "  param quantum = 5ms in 1ms..10ms\n", "").replace("boost and ", "").replace(
        "quantum", "5ms"))
    [none] = apply_sets(empty, ["x=1"], "p.sched")[1]
    assert "(its params: none)" in none.message
