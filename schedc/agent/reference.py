"""What an LLM reads before writing a policy: a concise DSL reference and the example policies.

The reference is cut from docs/dsl.md, the one language reference, so it cannot drift from it:
the lexical rules, the grammar summary, the expression places and operators, the task
attributes, the limits and section 7 (template, checklist, diagnostic index). The examples are
the project's examples/ folder. Both are found by schedc.project_files: the checkout's, or
the copy a wheel ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from schedc.project_files import docs_dir, missing_text
from schedc.repo.catalog import project_examples

EXAMPLE_URI = "schedc://examples/{name}"
REFERENCE_URI = "schedc://dsl-reference"

# (heading that starts a piece, heading that ends it); None: up to the next heading of the
# same or a higher level.
_PIECES: tuple[tuple[str, str | None], ...] = (
    ("## 2. Lexical structure", None),
    ("## 3. Statements", "### 3.1"),
    ("## 4. Expressions", "### 4.3"),
    ("### 4.9 Task attributes", None),
    ("## 5. Limits", None),
    ("## 7. Writing a policy with an LLM", None),
)
_HEADING = re.compile(r"^(#{2,3}) ", re.M)
_DESCRIPTION = re.compile(r'^\s*scheduler\s+([a-z][a-z0-9_]*)\s*(?:"([^"]*)")?', re.M)


class ReferenceMissing(Exception):
    pass


@dataclass(frozen=True)
class Example:
    name: str
    description: str
    path: Path

    @property
    def uri(self) -> str:
        return EXAMPLE_URI.format(name=self.name)


def _piece(text: str, start: str, end: str | None) -> str:
    begin = text.find(start)
    if begin < 0:
        raise ReferenceMissing(f"docs/dsl.md has no heading '{start}'")
    level = len(start.split(" ")[0])
    stop = len(text)
    if end is not None:
        stop = text.find(end, begin)
    else:
        for m in _HEADING.finditer(text, begin + len(start)):
            if len(m.group(1)) <= level:
                stop = m.start()
                break
    return text[begin:stop].rstrip() + "\n"


@cache
def dsl_reference() -> str:
    folder = docs_dir()
    if folder is None:
        raise ReferenceMissing(missing_text("the language reference docs/dsl.md"))
    doc = folder / "dsl.md"
    try:
        text = doc.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReferenceMissing(f"cannot read the language reference {doc}: {exc.strerror}") from exc
    head = (
        "# The schedc policy language, in brief\n\n"
        'Cut from docs/dsl.md. A policy is one `scheduler NAME "description" { ... }` block '
        "of statements: classes (first match wins, an `otherwise` class last), one queue per "
        "class, a dispatch order, slices. Compile with compile_policy, or call submit_policy, "
        "which compiles, checks and verifies in one call. Example policies are resources "
        f"({EXAMPLE_URI}).\n\n"
    )
    return head + "\n".join(_piece(text, a, b) for a, b in _PIECES)


def examples() -> list[Example]:
    folder = project_examples()
    if folder is None:
        return []
    found = []
    for path in sorted(folder.glob("*.sched")):
        text = path.read_text(encoding="utf-8")
        m = _DESCRIPTION.search(text)
        found.append(Example(path.stem, (m.group(2) or "") if m else "", path))
    return found


def example_source(name: str) -> str | None:
    for e in examples():
        if e.name == name:
            return e.path.read_text(encoding="utf-8")
    return None
