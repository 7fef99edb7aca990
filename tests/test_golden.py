"""Golden diagnostics: each `tests/golden/NAME.sched` is a small bad (or warning-producing)
policy and `NAME.expected` is exactly what `render_human` prints for it.

The policies are run with the working directory set to `tests/`, as `golden/NAME.sched`, so the
file names in the expected text do not depend on where pytest was started.

To regenerate the expected files after an intended change to a message:

    SCHEDC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

then review every changed `.expected` file by eye (`git diff tests/golden`) before committing:
an expected file records the behaviour we want, not merely the behaviour we have.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from schedc.compiler.pipeline import translate
from schedc.diagnostics import render_human
from schedc.dsl.language import READ_ERROR

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
GOLDEN = TESTS / "golden"
CASES = sorted(GOLDEN.glob("*.sched"))
UPDATE = os.environ.get("SCHEDC_UPDATE_GOLDEN") == "1"

# Every diagnostic code the front end can emit is written as a string literal "E123"/"W123".
_CODE_LITERAL = re.compile(r"""["']([EW]\d{3})["']""")
_RENDERED_CODE = re.compile(r"^\S+: (?:error|warning|note)\[([A-Z]\d{3})\]: ", re.MULTILINE)
# The front end's rules: the parser, the statement rules (sema) and the expression rules.
FRONT_END_SOURCES = tuple(
    ROOT / "schedc" / "dsl" / name for name in ("parser.py", "sema.py", "expr.py", "language.py")
)
# language.py also names the read stage's code, which no policy text can produce.
_NOT_FROM_TEXT = {READ_ERROR}


def front_end_codes() -> set[str]:
    codes: set[str] = set()
    for source in FRONT_END_SOURCES:
        codes |= set(_CODE_LITERAL.findall(source.read_text(encoding="utf-8")))
    return codes - _NOT_FROM_TEXT


def render(case: Path) -> str:
    result = translate(Path("golden") / case.name)
    return render_human(result.diagnostics)


def test_there_are_enough_golden_cases():
    assert len(CASES) >= 45


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(TESTS)
    actual = render(case)
    expected_path = case.with_suffix(".expected")
    if UPDATE:
        expected_path.write_text(actual, encoding="utf-8")
        return
    assert expected_path.exists(), (
        f"{expected_path.name} is missing; run with SCHEDC_UPDATE_GOLDEN=1 and review it"
    )
    assert actual == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_case_reports_something(case: Path, monkeypatch: pytest.MonkeyPatch):
    """Golden cases are bad or warning-producing policies, never clean ones."""
    monkeypatch.chdir(TESTS)
    assert _RENDERED_CODE.search(render(case)), f"{case.name} compiles without diagnostics"


def test_every_expected_file_has_a_policy():
    orphans = sorted(
        p.name for p in GOLDEN.glob("*.expected") if not p.with_suffix(".sched").exists()
    )
    assert not orphans


def test_golden_cases_cover_every_front_end_code():
    covered: set[str] = set()
    for expected in GOLDEN.glob("*.expected"):
        covered |= set(_RENDERED_CODE.findall(expected.read_text(encoding="utf-8")))
    codes = front_end_codes()
    assert codes, "no diagnostic codes found in the parser and sema sources"
    assert sorted(codes - covered) == [], "codes without a golden case"
    assert sorted(covered - codes) == [], "golden cases show codes the front end does not have"
