"""One version, written once: schedc.__version__ is the newest release heading of CHANGELOG.md
and the installed package's version (pyproject.toml reads it from schedc/__init__.py), and
docs/checks.md tells pre-commit users to pin a commit while no tags are published."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version

import schedc
from tests.conftest import ROOT

_RELEASE = re.compile(r"^## (\d+\.\d+\.\d+) - (\d{4}-\d{2}-\d{2})$", re.MULTILINE)


def test_the_version_is_semver_and_the_newest_changelog_release():
    assert re.fullmatch(r"\d+\.\d+\.\d+", schedc.__version__)
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = _RELEASE.findall(text)
    assert releases, "CHANGELOG.md has no '## X.Y.Z - YYYY-MM-DD' release heading"
    assert releases[0][0] == schedc.__version__
    assert [tuple(map(int, v.split("."))) for v, _ in releases] == sorted(
        (tuple(map(int, v.split("."))) for v, _ in releases), reverse=True
    )
    # Unreleased entries, if any, come before the newest release.
    if "## Unreleased" in text:
        assert text.index("## Unreleased") < text.index(f"## {releases[0][0]} ")


def test_pyproject_takes_the_version_from_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "schedc.__version__"}
    assert version("schedc") == schedc.__version__
    out = subprocess.run([sys.executable, "-m", "schedc", "--version"], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == f"schedc {schedc.__version__}"


def test_the_pre_commit_example_pins_a_commit_not_a_missing_tag():
    text = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    section = text.split("## Pre-commit", 1)[1].split("\n## ", 1)[0]
    (rev,) = re.findall(r"^\s+rev: (\S+)", section, re.MULTILINE)
    assert re.fullmatch(r"[0-9a-f]{40}", rev), rev
    tags = subprocess.run(["git", "-C", str(ROOT), "tag", "--list", "v*"], capture_output=True,
                          text=True, check=False).stdout.split()
    assert f"v{schedc.__version__}" not in section or f"v{schedc.__version__}" in tags
