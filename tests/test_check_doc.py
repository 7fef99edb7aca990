"""docs/checks.md keeps up with the rules: a section for every rule code in code order, each
with a bad and a good example, and a test case in tests/data/check/ named after it."""

from __future__ import annotations

import re

from schedc.verifier.rules.catalog import RULES
from tests.conftest import ROOT

DOC = ROOT / "docs" / "checks.md"
_HEADING = re.compile(r"^## (K\d{3}): (.+)$", re.MULTILINE)


def sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = list(_HEADING.finditer(text))
    return {
        m.group(1): text[m.end() : found[i + 1].start() if i + 1 < len(found) else len(text)]
        for i, m in enumerate(found)
    }


def test_a_section_per_rule_in_code_order():
    codes = [m.group(1) for m in _HEADING.finditer(DOC.read_text(encoding="utf-8"))]
    assert codes == sorted(RULES), "docs/checks.md sections differ from check_catalog.RULES"


def test_every_section_has_a_bad_and_a_good_example():
    for code, body in sections().items():
        assert "Bad" in body and "Good" in body, f"{code} lacks a bad or a good example"
        assert "```c" in body, f"{code} has no C example"


def test_warnings_say_so_in_their_heading():
    text = DOC.read_text(encoding="utf-8")
    for m in _HEADING.finditer(text):
        is_warning = str(RULES[m.group(1)].severity) == "warning"
        assert is_warning == m.group(2).endswith("(warning)"), m.group(0)


def test_every_rule_has_test_cases_named_after_it():
    names = {p.name.split("_", 1)[0] for p in (ROOT / "tests" / "data" / "check").rglob("*.bpf.c")}
    assert sorted(set(RULES) - names) == []
