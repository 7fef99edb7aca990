"""`schedc completion bash`: the script, sourced in a real bash, completes what schedc's own
parsers accept (commands, repo's subcommands, options, fixed option values)."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "schedc", "completion", "bash"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
    )
    path = tmp_path_factory.mktemp("completion") / "schedc.bash"
    path.write_text(out.stdout)
    return str(path)


def complete(script: str, line: str) -> list[str]:
    """What bash offers at the end of `line` (a trailing space: a new word)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    array = " ".join(shlex.quote(w) for w in words)
    program = (
        f"source {shlex.quote(script)}; COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; "
        '_schedc; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True,
                         check=True, timeout=30)
    return [w for w in out.stdout.splitlines() if w]


def test_commands(script):
    assert complete(script, "schedc ver") == ["verify"]
    assert {"compile", "check", "repo", "verify", "profile", "completion"} <= set(
        complete(script, "schedc ")
    )


def test_options_of_the_command_being_typed(script):
    assert complete(script, "schedc verify --st") == ["--stats"]
    assert complete(script, "schedc compile policy.sched --emit") == ["--emit-c"]
    assert "--stats" not in complete(script, "schedc compile --")


def test_values_of_an_option_with_choices(script):
    assert complete(script, "schedc verify --format ") == ["human", "json"]
    assert "spin" in complete(script, "schedc verify --workload ")
    # the value is not taken for a command word: options still complete after it
    assert complete(script, "schedc check --format sarif --sarif-r") == ["--sarif-root"]


def test_repo_subcommands_and_their_options(script):
    assert complete(script, "schedc repo se") == ["search"]
    assert "--behaviour-passing" in complete(script, "schedc repo search --")
    assert "--behaviour-passing" not in complete(script, "schedc repo add --")


def test_a_file_argument_falls_back_to_file_names(script):
    assert complete(script, "schedc compile ") == []  # -o default: bash lists files itself


def test_every_option_of_a_command_is_offered(script):
    """Made from the parsers: a new option is completed without touching the script."""
    from schedc.cli import build_parser

    offered = set(complete(script, "schedc verify --"))
    actions = build_parser(["verify"])._subparsers._group_actions[0].choices["verify"]._actions
    expected = {s for a in actions for s in a.option_strings if s.startswith("--")}
    assert expected and expected <= offered
