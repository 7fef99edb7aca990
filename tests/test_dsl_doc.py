"""Every complete policy in docs/dsl.md compiles through the front end with no diagnostics.

A ```sched block in the reference is either a complete policy (it starts with `scheduler`) or a
fragment that says so on its first line (`# fragment...`); complete policies are translated to C
exactly as `schedc compile` would, and must produce neither errors nor warnings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schedc.compiler.pipeline import translate

DOC = Path(__file__).resolve().parent.parent / "docs" / "dsl.md"
_FENCE = re.compile(r"^```sched[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def sched_blocks() -> list[str]:
    return [m.group(1) for m in _FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def policies() -> list[str]:
    return [b for b in sched_blocks() if b.lstrip().startswith("scheduler")]


def test_doc_has_policies():
    assert len(policies()) >= 10


def test_every_sched_block_is_a_policy_or_a_marked_fragment():
    for block in sched_blocks():
        first = block.lstrip().splitlines()[0]
        assert first.startswith("scheduler") or first.startswith("# fragment"), first


def test_policy_names_are_distinct():
    names = [re.match(r"\s*scheduler\s+(\w+)", p).group(1) for p in policies()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("n", range(len(policies())))
def test_doc_policy_compiles_cleanly(n, tmp_path):
    source = policies()[n]
    path = tmp_path / f"doc_{n}.sched"
    path.write_text(source, encoding="utf-8")
    result = translate(path)
    rendered = [
        f"{d.severity} {d.code} {d.line}:{d.column} {d.message}" for d in result.diagnostics
    ]
    assert result.ok, f"policy {n} of docs/dsl.md:\n{source}\n" + "\n".join(rendered)
    assert result.diagnostics == [], f"policy {n} of docs/dsl.md:\n{source}\n" + "\n".join(rendered)
    assert result.c_text is not None
