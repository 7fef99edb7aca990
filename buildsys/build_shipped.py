"""Build step (pyproject's [tool.setuptools.cmdclass]): put a copy of docs/*.md and the example
policies (examples/*.sched, examples/*.scenario.toml) into the built package as
schedc/_shipped/, so that an installed wheel has what a source checkout has beside `schedc/`
(schedc/project_files.py finds either). The checkout's docs/ and examples/ stay where they are.

Not part of the installed package; the build backend (buildsys/schedc_build.py, pyproject's
backend-path) puts this folder on the path while building, from the checkout or the sdist
(which MANIFEST.in makes carry it, docs/ and examples/).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent.parent  # the checkout (or sdist) top
# (folder at the checkout's top, the file patterns shipped from it)
SHIPPED = (("docs", ("*.md",)), ("examples", ("*.sched", "*.scenario.toml")))
TARGET = Path("schedc") / "_shipped"


def shipped_files() -> list[tuple[Path, Path]]:
    """(source, path relative to the build's top) of every shipped file."""
    pairs = []
    for folder, patterns in SHIPPED:
        for pattern in patterns:
            for source in sorted((HERE / folder).glob(pattern)):
                pairs.append((source, TARGET / folder / source.name))
    return pairs


class BuildPy(build_py):
    """build_py, plus the shipped copies (not for an editable install: that runs from the
    checkout and reads its docs/ and examples/ directly)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        files = shipped_files()
        if not any(s.parent.name == "docs" for s, _ in files) or not any(
            s.parent.name == "examples" for s, _ in files
        ):
            raise SystemExit(f"build_shipped: no docs/*.md or examples/*.sched under {HERE}")
        for source, relative in files:
            target = Path(self.build_lib) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return outputs + [str(Path(self.build_lib) / rel) for _, rel in shipped_files()]
