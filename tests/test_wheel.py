"""A built wheel, installed (not editable) into a fresh venv, works from an empty folder: it
carries the docs and the example policies (schedc/_shipped/, schedc.project_files), so
`schedc compile` and `schedc check` of a shipped example, the agent's dsl_reference and
`repo init --seed` work without the source checkout.

No download: the wheel is built with this venv's setuptools (no build isolation) and installed
with --no-deps; the fresh venv then sees this venv's site-packages for the dependencies through
a plain path in a .pth file, which does not run this venv's own .pth files, so the editable
schedc of the checkout is not importable there (asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

from schedc.settings import as_environment
from tests.conftest import ROOT

# What the build needs from the checkout (MANIFEST.in lists the same for the sdist).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in")
SOURCE_FOLDERS = ("schedc", "docs", "buildsys")
# The build's copy has one of the examples: `repo init --seed` compiles and checks each one it
# ships (CI time); test_the_build_ships_every_doc_and_example checks the full list.
KEPT_EXAMPLES = ("fifo",)

WARN_DSL = 'scheduler warned "a param nothing reads" {\n  param unused = 5ms\n  class all otherwise\n  queue runq for all fifo\n}\n'
PROBE = textwrap.dedent(
    """
    import json, sys
    from importlib import metadata
    import schedc
    from schedc import project_files
    from schedc.agent.runner import Runner
    answer = Runner(repo=None).call("dsl_reference", {})
    dist = metadata.distribution("schedc")
    print(json.dumps({
        "file": schedc.__file__,
        "checkout": str(project_files.checkout_root()),
        "examples": str(project_files.examples_dir()),
        "answer": answer,
        "license": dist.metadata["License-Expression"],
        "license_files": [str(f) for f in dist.files if "licenses" in str(f)],
    }))
    """
)


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str], codes: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode in codes, (cmd, ran.stdout[-3000:], ran.stderr[-3000:])
    return ran


def test_an_installed_wheel_works_without_the_checkout(tmp_path: Path, toolchain, settings):
    source = tmp_path / "src"  # a copy: the in-tree build leaves build/ and egg-info behind
    source.mkdir()
    for name in SOURCES:
        shutil.copy2(ROOT / name, source / name)
    for name in SOURCE_FOLDERS:
        shutil.copytree(
            ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    (source / "examples").mkdir()
    for name in KEPT_EXAMPLES:
        for suffix in (".sched", ".scenario.toml"):
            shutil.copy2(ROOT / "examples" / f"{name}{suffix}", source / "examples")
    base_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SCHEDC_CONFIG")}
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(wheels), str(source)],
        tmp_path, base_env,
    )  # fmt: skip
    (wheel,) = wheels.glob("schedc-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        tmp_path, base_env,
    )  # fmt: skip
    # Only now the dependencies: pip above must not see (and replace) the editable schedc.
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
             tmp_path, base_env).stdout.strip()
    )  # fmt: skip
    (site / "test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")

    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(
        base_env,
        **as_environment(settings),
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        SCHEDC_REPO=str(tmp_path / "repo"),
        PATH=f"{env_dir / 'bin'}{os.pathsep}{base_env.get('PATH', '')}",
    )
    probe = json.loads(_run([str(python), "-c", PROBE], empty, env).stdout)
    assert Path(probe["file"]).is_relative_to(site), probe["file"]  # not the checkout's
    assert probe["checkout"] == "None"
    shipped = Path(probe["examples"])
    assert shipped == site / "schedc" / "_shipped" / "examples"
    answer = probe["answer"]
    assert answer.get("ok") is True, answer
    assert "## 5. Limits" in answer["reference"] and "Checklist" in answer["reference"]
    assert "fifo" in {e["name"] for e in answer["examples"]}
    assert probe["license"] == "GPL-2.0-only" and probe["license_files"], probe

    schedc = str(env_dir / "bin" / "schedc")
    shutil.copy2(shipped / "fifo.sched", empty / "fifo.sched")
    assert (shipped / "fifo.scenario.toml").is_file()
    _run([schedc, "compile", "fifo.sched", "-o", "fifo.bpf.o"], empty, env)
    assert (empty / "fifo.bpf.o").stat().st_size > 0
    # With no kit and no BTF set, the wheel's embedded minimal BTF and its vmlinux.h: no
    # bpftool either (one that does not exist is named, so running any would fail).
    bare = {k: v for k, v in env.items() if not k.startswith("SCHEDC_")}
    bare.update(SCHEDC_REPO=env["SCHEDC_REPO"], SCHEDC_BPFTOOL="/nonexistent/bpftool")
    _run([schedc, "compile", "fifo.sched", "-o", str(tmp_path / "bare.bpf.o")], empty, bare)
    assert (tmp_path / "bare.bpf.o").stat().st_size > 0
    # The libclang worker of check (and of seeding) runs caged with only its own venv bound,
    # and this venv borrows its dependencies from the test venv through the .pth above: the
    # cage is off for it here (compile, above, ran clang caged).
    uncaged = dict(env, SCHEDC_SANDBOX="off")
    # SARIF's rule metadata is cut from the shipped docs/errors.md (code_docs).
    (empty / "warned.sched").write_text(WARN_DSL, encoding="utf-8")
    checked = _run(
        [schedc, "check", "--format", "sarif", "warned.sched"],
        empty, uncaged, codes=(0, 1),
    )  # fmt: skip
    rules = {r["id"]: r for r in json.loads(checked.stdout)["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["W007"]["name"] != "w007", rules["W007"]  # its docs title, not the bare code
    assert rules["W007"]["fullDescription"]["text"], rules["W007"]

    seeded = _run([schedc, "repo", "init", "--seed"], empty, uncaged)
    policies = tmp_path / "repo" / "policies"
    for name in KEPT_EXAMPLES:
        assert (policies / name / "policy.sched").is_file(), seeded.stdout + seeded.stderr
    assert (policies / "scx_lavd").is_dir()  # the catalogue, package data since before
    assert sorted(os.listdir(empty)) == ["fifo.bpf.o", "fifo.sched", "warned.sched"]


def test_the_build_ships_every_doc_and_example():
    """What build_shipped.py copies into schedc/_shipped/: all of docs/*.md and examples/."""
    sys.path.insert(0, str(ROOT / "buildsys"))
    try:
        import build_shipped
    finally:
        sys.path.remove(str(ROOT / "buildsys"))
    shipped = {str(rel) for _, rel in build_shipped.shipped_files()}
    wanted = {f"schedc/_shipped/docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    for path in (ROOT / "examples").iterdir():
        wanted.add(f"schedc/_shipped/examples/{path.name}")
    assert shipped == wanted and len(wanted) > 20
