"""What a policy file is, and reading it: the first stage of the pipeline, shared by every
stage that has a path but no text yet (check_c on a file, the repository's size check)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from schedc.diagnostics import Diagnostic, Severity
from schedc.dsl.language import READ_ERROR  # the file cannot be read, or is not UTF-8 text

DSL_SUFFIX = ".sched"
C_SUFFIX = ".bpf.c"
OBJECT_SUFFIX = ".bpf.o"

Kind = Literal["dsl", "c", "object"]


def is_dsl(path: Path) -> bool:
    return path.name.endswith(DSL_SUFFIX)


def is_c(path: Path) -> bool:
    return path.name.endswith(C_SUFFIX) or path.suffix == ".c"


def is_object(path: Path) -> bool:
    return path.name.endswith(OBJECT_SUFFIX) or path.suffix == ".o"


def kind_of(path: Path) -> Kind:
    """A policy's kind by its name: `.o` objects, C (`.bpf.c`, `.c`), else the DSL."""
    if is_object(path):
        return "object"
    return "c" if is_c(path) else "dsl"


def decode_source(data: bytes, path: str) -> tuple[str | None, list[Diagnostic]]:
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [
            Diagnostic(
                Severity.ERROR,
                READ_ERROR,
                "the file is not UTF-8 text",
                path,
                line,
                1,
                hint="policies are plain UTF-8 text",
            )
        ]


def read_source(path: Path) -> tuple[str | None, list[Diagnostic]]:
    """The policy's text, or None and an E000 diagnostic that says why not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [cannot_read(path, exc.strerror or str(exc))]
    return decode_source(data, str(path))


def cannot_read(path: Path, why: str | None = None) -> Diagnostic:
    message = f"cannot read {path}: {why}" if why else f"cannot read {path}"
    return Diagnostic(Severity.ERROR, READ_ERROR, message, str(path), hint="check the path")


def default_object_path(source: Path) -> Path:
    name = source.name
    for suffix in (C_SUFFIX, DSL_SUFFIX):
        if name.endswith(suffix):
            return source.with_name(name[: -len(suffix)] + OBJECT_SUFFIX)
    return source.with_name(name + OBJECT_SUFFIX)
