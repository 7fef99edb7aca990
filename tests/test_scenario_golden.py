"""Golden diagnostics of broken scenario files: each `tests/golden/scenario/NAME.scenario.toml`
is a scenario that is not valid TOML (or not UTF-8), and `NAME.expected` is exactly what
`schedc test` prints for it. Every T001 carries a line and a column, also when the file ends
inside a string, an array, a table or a table header (tomllib says "at end of document": the
end of the last line).

The files are read as `golden/scenario/NAME.scenario.toml` from `tests/`, so the names in the
expected text do not depend on where pytest was started. To regenerate after an intended
change of a message: SCHEDC_UPDATE_GOLDEN=1 python -m pytest tests/test_scenario_golden.py,
then review `git diff tests/golden/scenario` by eye.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from schedc.behaviour.scenario import ScenarioError, load_scenario
from schedc.diagnostics import render_human

TESTS = Path(__file__).resolve().parent
CASES = sorted((TESTS / "golden" / "scenario").glob("*.scenario.toml"))
UPDATE = os.environ.get("SCHEDC_UPDATE_GOLDEN") == "1"


def render(case: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(Path("golden") / "scenario" / case.name)
    return render_human(info.value.diagnostics)


def test_there_are_cases_for_the_end_of_the_file():
    assert len(CASES) >= 6


@pytest.mark.parametrize("case", CASES, ids=[c.name.split(".")[0] for c in CASES])
def test_scenario_golden(case: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(TESTS)
    actual = render(case)
    expected_file = case.with_name(case.name.replace(".scenario.toml", ".expected"))
    if UPDATE:
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()
    # Every diagnostic is at a line and column of the file, the line being one it has.
    lines = case.read_bytes().split(b"\n")
    for m in re.finditer(r"^golden/scenario/\S+?:(\d+):(\d+): error\[T001\]: ", actual, re.M):
        line, column = int(m.group(1)), int(m.group(2))
        assert 1 <= line <= len(lines) and column >= 1
    assert re.search(r":\d+:\d+: error\[T001\]", actual), actual
