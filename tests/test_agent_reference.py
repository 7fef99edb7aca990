"""The reference an agent reads (dsl_reference, schedc://dsl-reference) is cut from docs/dsl.md:
every piece must be found, the policies in it must compile cleanly, and it must stay short."""

from __future__ import annotations

import re

import pytest

from schedc.agent import reference
from schedc.agent.reference import ReferenceMissing, dsl_reference, example_source, examples
from schedc.compiler.pipeline import translate
from tests.conftest import EXAMPLES

_FENCE = re.compile(r"^```sched[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def test_every_piece_is_present_in_order():
    text = dsl_reference()
    positions = [text.index(start) for start, _ in reference._PIECES]
    assert positions == sorted(positions)
    for needle in ("Grammar summary", "| `task.avg_runtime` |", "Checklist", "| E105 |"):
        assert needle in text
    for left_out in ("## 6. What the generated C looks like", "### 3.6 `queue`"):
        assert left_out not in text
    assert len(text) < 25_000, "concise: a few thousand tokens"


def test_the_policies_in_it_compile_without_diagnostics(tmp_path):
    blocks = [b for b in _FENCE.findall(dsl_reference()) if b.lstrip().startswith("scheduler")]
    assert len(blocks) >= 3  # the template among them
    for i, block in enumerate(blocks):
        path = tmp_path / f"p{i}.sched"
        path.write_text(block, encoding="utf-8")
        result = translate(path)
        assert result.diagnostics == [], (block, result.diagnostics)


def test_a_missing_heading_is_reported_not_silently_dropped(monkeypatch):
    dsl_reference.cache_clear()
    monkeypatch.setattr(reference, "_PIECES", (("## 99. Nothing", None),))
    try:
        with pytest.raises(ReferenceMissing, match="99. Nothing"):
            dsl_reference()
    finally:
        dsl_reference.cache_clear()


def test_examples_are_every_example_policy_with_its_description():
    found = {e.name: e for e in examples()}
    assert set(found) == {p.stem for p in EXAMPLES}
    assert all(e.description for e in found.values())
    assert example_source("fifo") == (EXAMPLES[0].parent / "fifo.sched").read_text()
    assert example_source("../README") is None


def test_docs_agent_md_lists_every_tool_and_every_error_kind():
    from schedc.agent.operations import OPERATIONS  # noqa: PLC0415
    from tests.conftest import ROOT  # noqa: PLC0415

    doc = (ROOT / "docs" / "agent.md").read_text(encoding="utf-8")
    for name in OPERATIONS:
        assert f"| `{name}` |" in doc, name
    sources = "".join(p.read_text() for p in (ROOT / "schedc" / "agent").glob("*.py"))
    kinds = set(re.findall(r'(?<![\w.])error\(\s*"([a-z_]+)"', sources))
    assert {"timeout", "invalid_arguments", "repository", "environment"} <= kinds
    for kind in kinds:
        assert f"`{kind}`" in doc, kind
