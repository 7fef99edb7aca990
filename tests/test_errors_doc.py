"""docs/errors.md must keep up with the compiler: a `## CODE` section for every diagnostic
code in the source, in code order, and examples that still do what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schedc.compiler.pipeline import translate
from schedc.dsl.language import READ_ERROR

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "errors.md"
# The front end's rules: the parser, the statement rules (sema) and the expression rules.
FRONT_END_SOURCES = tuple(
    ROOT / "schedc" / "dsl" / name for name in ("parser.py", "sema.py", "expr.py", "language.py")
)
# language.py also names the read stage's code, which no policy text can produce.
_NOT_FROM_TEXT = {READ_ERROR}

_CODE_LITERAL = re.compile(r"""["']([A-Z]\d{3})["']""")
_HEADING = re.compile(r"^## ([A-Z]\d{3})\b", re.MULTILINE)
_SCHED_BLOCK = re.compile(r"^```sched\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Order of the code families in the document: errors, warnings, clang, internal.
_FAMILY_ORDER = {"E": 0, "W": 1, "C": 2, "V": 3, "S": 4}


def _codes_in(paths: list[Path] | tuple[Path, ...]) -> set[str]:
    codes: set[str] = set()
    for path in paths:
        codes |= set(_CODE_LITERAL.findall(path.read_text(encoding="utf-8")))
    return codes


def front_end_codes() -> set[str]:
    return _codes_in(FRONT_END_SOURCES) - _NOT_FROM_TEXT


def all_codes() -> set[str]:
    """Every code any part of schedc emits (front end, reading, clang, verifier, internal).
    The static checks' K codes, the repository's R codes and the behaviour tests' T codes have
    their own references, docs/checks.md, docs/repo.md and docs/behaviour.md."""
    codes = _codes_in(sorted((ROOT / "schedc").rglob("*.py")))
    return {c for c in codes if not c.startswith(("K", "R", "T"))}


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def headings() -> list[str]:
    return _HEADING.findall(doc_text())


def sections() -> dict[str, str]:
    text = doc_text()
    matches = list(_HEADING.finditer(text))
    out: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out[m.group(1)] = text[m.end() : end]
    return out


def test_every_front_end_code_has_a_section():
    missing = sorted(front_end_codes() - set(headings()))
    assert missing == [], f"docs/errors.md has no '## CODE' heading for {missing}"


def test_every_code_schedc_emits_has_a_section():
    # E000 (unreadable file), C001-C003 (clang) and S900 (internal error) come from the
    # pipeline and toolchain rather than the parser and sema.
    assert {"E000", "C001", "C002", "C003", "S900"} <= all_codes()
    missing = sorted(all_codes() - set(headings()))
    assert missing == [], f"docs/errors.md has no '## CODE' heading for {missing}"


def test_no_section_for_a_code_that_does_not_exist():
    stale = sorted(set(headings()) - all_codes())
    assert stale == [], f"docs/errors.md documents codes schedc no longer has: {stale}"


def test_sections_are_in_code_order_and_unique():
    found = headings()
    assert len(found) == len(set(found)), "a code has two sections"
    assert found == sorted(found, key=lambda c: (_FAMILY_ORDER[c[0]], c))


# Each section's first ```sched block is the policy with the mistake and, when there is a
# second one, it is the fix. The example must still produce the code; the fix must be clean.
EXAMPLES = sorted((code, body) for code, body in sections().items() if _SCHED_BLOCK.search(body))


@pytest.mark.parametrize(("code", "body"), EXAMPLES, ids=[code for code, _ in EXAMPLES])
def test_section_examples(code: str, body: str, tmp_path: Path):
    blocks = _SCHED_BLOCK.findall(body)
    assert len(blocks) in (1, 2), f"{code}: expected a bad example and at most one fix"
    bad = tmp_path / "policy.sched"
    bad.write_text(blocks[0], encoding="utf-8")
    codes = {d.code for d in translate(bad).diagnostics}
    assert code in codes, f"{code}: the example now gives {sorted(codes)}"
    if len(blocks) == 2:
        fix = tmp_path / "fixed.sched"
        fix.write_text(blocks[1], encoding="utf-8")
        diags = translate(fix).diagnostics
        assert diags == [], f"{code}: the fix is not clean: {[d.code for d in diags]}"


def test_most_front_end_codes_have_examples():
    with_examples = {code for code, _ in EXAMPLES}
    # The size limits (E007, E009, E304-E310) need long policies; they are described instead.
    exempt = {"E007", "E009", "E304", "E305", "E306", "E307", "E308", "E309", "E310"}
    missing = sorted(front_end_codes() - with_examples - exempt)
    assert missing == [], f"sections without a ```sched example: {missing}"
