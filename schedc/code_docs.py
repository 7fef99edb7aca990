"""What every diagnostic code means, read from the documents that explain it.

docs/errors.md explains the compiler's and the verifier's codes (E, W, C, V, S) and
docs/checks.md the static rules' (K), one `## CODE: Title` section each. These sections are the
one source of the long texts: SARIF's rule metadata (`fullDescription`, `help`) is cut from
them, so a code is explained in the same words wherever it shows up. The K rules' one-line
summaries stay in `verifier/rules/catalog.py`, which the checks themselves use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from schedc.project_files import docs_dir as project_docs_dir

# The documents with a `## CODE: Title` section per code, by the codes' first letters.
CODE_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "errors.md": ("E", "W", "C", "V", "S"),
    "checks.md": ("K",),
}
_SECTION = re.compile(r"^## ([A-Z]\d{3}): (.+)$", re.MULTILINE)
_NEXT_HEADING = re.compile(r"^#{1,2} ", re.MULTILINE)
_FENCE = re.compile(r"^```", re.MULTILINE)


@dataclass(frozen=True)
class CodeDoc:
    """One code's section: its title, its first paragraph, the whole section as markdown."""

    code: str
    title: str
    description: str  # the first paragraph, as plain text on one line
    markdown: str  # the section's body, as written
    document: str  # "errors.md" or "checks.md"
    anchor: str  # the section's anchor as GitHub and most renderers make it

    @property
    def text(self) -> str:
        """The section as plain text: the markdown less its code fences' backtick lines."""
        lines = [ln for ln in self.markdown.splitlines() if not ln.startswith("```")]
        return "\n".join(lines).strip()


def heading_anchor(heading: str) -> str:
    """A heading's anchor as GitHub computes it: lower case, punctuation but `-` and `_`
    dropped, each space a hyphen ("K020: Kfunc called ..." -> "k020-kfunc-called-...")."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


def _first_paragraph(body: str) -> str:
    for block in re.split(r"\n\s*\n", body.strip()):
        if block.strip() and not _FENCE.match(block.strip()):
            return " ".join(line.strip() for line in block.splitlines())
    return ""


def parse_code_sections(text: str, document: str) -> dict[str, CodeDoc]:
    """Every `## CODE: Title` section of a document, up to the next heading of level 1 or 2
    (outside code blocks, which may hold `#` lines)."""
    out: dict[str, CodeDoc] = {}
    for m in _SECTION.finditer(text):
        start = m.end()
        stop = len(text)
        in_fence = False
        pos = start
        for line in text[start:].splitlines(keepends=True):
            if line.startswith("```"):
                in_fence = not in_fence
            elif not in_fence and _NEXT_HEADING.match(line):
                stop = pos
                break
            pos += len(line)
        body = text[start:stop].strip()
        heading = f"{m.group(1)}: {m.group(2)}"
        out[m.group(1)] = CodeDoc(
            code=m.group(1),
            title=m.group(2).strip(),
            description=_first_paragraph(body),
            markdown=body,
            document=document,
            anchor=heading_anchor(heading),
        )
    return out


@cache
def code_docs(docs_dir: Path | None = None) -> dict[str, CodeDoc]:
    """Every documented code, from the documents in `docs_dir` (default: the checkout's docs/
    or the copy a wheel ships, schedc.project_files). A document that cannot be read (an
    installation without the docs) contributes nothing: callers fall back to the catalogue's
    one-line summaries."""
    found: dict[str, CodeDoc] = {}
    if docs_dir is None:
        docs_dir = project_docs_dir()
        if docs_dir is None:
            return found
    for name, families in CODE_DOCUMENTS.items():
        try:
            text = (docs_dir / name).read_text(encoding="utf-8")
        except OSError:
            continue
        for code, doc in parse_code_sections(text, name).items():
            if code.startswith(families):
                found[code] = doc
    return found
