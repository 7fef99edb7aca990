"""docs/repo.md keeps up with the repository code: every R code schedc/repo emits has a row in
its table, and every row is a code that exists (the R codes are documented there, as the K
codes are in docs/checks.md)."""

from __future__ import annotations

import re

from schedc.repo.catalog import catalog_metas
from tests.conftest import ROOT

DOC = ROOT / "docs" / "repo.md"


def emitted() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "schedc" / "repo").glob("*.py"):
        codes |= set(re.findall(r"""["'](R\d{3})["']""", path.read_text(encoding="utf-8")))
    return codes


def documented() -> list[str]:
    return re.findall(r"^\| (R\d{3}) \|", DOC.read_text(encoding="utf-8"), re.M)


def test_every_repo_code_is_documented_once_and_in_order():
    rows = documented()
    assert emitted() == set(rows)
    assert rows == sorted(rows)


def test_every_command_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for command in ("init", "add", "list", "show", "log", "diff", "search", "record", "fsck",
                    "push", "pull"):  # fmt: skip
        assert f"schedc repo {command}" in text


def test_the_catalogue_names_in_the_doc_are_the_catalogue():
    text = DOC.read_text(encoding="utf-8")
    for meta in catalog_metas():
        assert meta.name in text
