"""Where schedc's documents (docs/*.md) and example policies (examples/) are.

A source checkout has them at its top, beside `schedc/`: they are read there, so an edit shows
at once. A built wheel carries a copy of both in `schedc/_shipped/` (put there by the build,
see buildsys/build_shipped.py at the checkout's top), which an installed schedc reads instead. Every
reader of the docs or the examples asks here, so both layouts work the same way.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SHIPPED = PACKAGE / "_shipped"  # in a wheel: docs/ and examples/, copied by the build


def checkout_root() -> Path | None:
    """The source checkout schedc runs from, or None for an installed wheel."""
    root = PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "docs").is_dir():
        return root
    return None


def _folder(name: str) -> Path | None:
    root = checkout_root()
    for folder in ((root / name) if root else None, SHIPPED / name):
        if folder is not None and folder.is_dir():
            return folder
    return None


def docs_dir() -> Path | None:
    """The folder of schedc's documents (dsl.md, errors.md, ...); None if neither the checkout
    nor the installed package has them."""
    return _folder("docs")


def examples_dir() -> Path | None:
    """The folder of the example policies (NAME.sched and NAME.scenario.toml); None if
    neither the checkout nor the installed package has them."""
    return _folder("examples")


def missing_text(what: str) -> str:
    """What to say when `what` (a document, the examples) cannot be found."""
    return (
        f"cannot find {what}: schedc runs neither from a source checkout (docs/, examples/ "
        f"beside {PACKAGE}) nor from a wheel that ships them ({SHIPPED}); reinstall schedc "
        "from a wheel built by `pip wheel .` or run it from the checkout"
    )
