"""A fast command line (issue 17): each command imports what it uses and nothing else, so that
`schedc compile` and `schedc check` (a pre-commit hook, an agent's every call) do not pay for the
repository and the agent stack. Each test runs `schedc.cli.main` in a fresh interpreter and
reads the modules it had imported by the end; `benchmarks/cli_startup.py` has the timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# What a compile or a check must never import: the agent stack and the repository.
HEAVY = ("mcp", "anthropic", "git", "schedc.agent", "schedc.repo")
PROBE = """\
import json, sys
from schedc.cli import main
out, args = sys.argv[1], sys.argv[2:]
try:
    status = main(args)
except SystemExit as stop:  # --help
    status = stop.code
with open(out, "w") as f:
    json.dump({"status": status, "modules": sorted(sys.modules)}, f)
"""


def run_main(tmp_path: Path, *args: str, cache: str | None = None) -> tuple[int, set[str]]:
    """`schedc ARGS` in a child interpreter: its exit status and the modules it imported."""
    out = tmp_path / "modules.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if cache:
        env["SCHEDC_CACHE"] = cache
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.exists(), proc.stderr
    data = json.loads(out.read_text())
    return data["status"], set(data["modules"])


def loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def test_compile_imports_neither_the_agent_stack_nor_the_repository(toolchain, settings, tmp_path):
    status, modules = run_main(
        tmp_path, "compile", "examples/ljf.sched", "-o", str(tmp_path / "ljf.bpf.o"),
        cache=settings.cache_dir,
    )
    assert status == 0 and (tmp_path / "ljf.bpf.o").stat().st_size > 0
    assert "schedc.compiler.pipeline" in modules
    assert [p for p in HEAVY if loaded(modules, p)] == []


def test_check_imports_neither_the_agent_stack_nor_the_repository(toolchain, settings, tmp_path):
    status, modules = run_main(tmp_path, "check", "examples/ljf.sched", cache=settings.cache_dir)
    assert status == 0
    assert "schedc.verifier.checks" in modules
    assert [p for p in HEAVY if loaded(modules, p)] == []


def test_help_imports_no_command(tmp_path):
    status, modules = run_main(tmp_path, "--help")
    assert status == 0
    assert [m for m in modules if m.startswith("schedc.cli.") and m != "schedc.cli.exit"
            and m != "schedc.cli.options"] == []
    assert not any(loaded(modules, p) for p in (*HEAVY, "schedc.compiler", "schedc.verifier",
                                                 "schedc.dsl", "lark", "jinja2"))


def test_the_probe_sees_what_a_command_imports(tmp_path):
    """The control: `schedc repo --help` does import gitpython and the repository, so an empty
    list above means the command did not import them, not that the probe cannot see."""
    status, modules = run_main(tmp_path, "repo", "--help")
    assert status == 0
    assert loaded(modules, "git") and loaded(modules, "schedc.repo")
    assert "schedc.cli.repo" in modules and "schedc.cli.compile" not in modules

