"""Security rules on the policy's own text: what it may pull into the build.

A policy written by an LLM is untrusted input to clang on the build host. The preprocessor runs
before any rule could look at an AST, so these checks read the raw text (comments removed) and
run first; a policy whose #include names a path outside the allowed folders is not handed to
libclang at all, so no host file is read on its behalf.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from schedc.diagnostics import Diagnostic, Severity

_DIRECTIVE = re.compile(r"^\s*#\s*([A-Za-z_]\w*)\s*(.*)$", re.S)
_QUOTED = re.compile(r'^\s*(?:"([^"\n]*)"|<([^>\n]*)>)')
_HAS_INCLUDE = re.compile(
    r"\b(__has_include_next|__has_include|__has_embed)\s*\(\s*(\"[^\"]*\"|<[^>]*>)"
)
_ASM = re.compile(r"\b(asm|__asm__|__asm)\b")
_PRAGMA_OPERATOR = re.compile(r"\b_Pragma\s*\(\s*(L?\"(?:[^\"\\]|\\.)*\")\s*\)")
_LINE_FILE = re.compile(r'^\s*\d+\s+"([^"]*)"')

# Pragmas that only tune warnings or loop unrolling. Anything else can change what is built:
# rename symbols (redefine_extname), move code into other ELF sections (clang section),
# attach attributes to every declaration (clang attribute), silence all diagnostics
# (system_header), swap macros behind the checks' back (push_macro) or read other files
# (GCC dependency, include_alias).
_ALLOWED_PRAGMAS = frozenset(
    {
        "once",
        "unroll",
        "nounroll",
        "message",
        "region",
        "endregion",
        "pack",
        "GCC unroll",
        "clang loop",
        "GCC diagnostic",
        "clang diagnostic",
        "GCC warning",
    }
)
_PRAGMA_REASONS = {
    "redefine_extname": "it renames symbols, so a call can reach a kfunc the checks never saw",
    "clang section": "it moves code and data into ELF sections of its choosing",
    "clang attribute": "it attaches attributes (sections, visibility) to every declaration",
    "GCC system_header": "it hides every diagnostic of the file",
    "clang system_header": "it hides every diagnostic of the file",
    "push_macro": "it saves and restores macros behind the checks' back",
    "pop_macro": "it saves and restores macros behind the checks' back",
    "GCC dependency": "it reads another file of the build host",
    "include_alias": "it redirects #include to other files",
}


def blank_comments(text: str) -> str:
    """The text with comments replaced by spaces (newlines kept), literals untouched."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            end = _literal_end(text, i)
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def blank_literals(text: str) -> str:
    """Comment-free text with the insides of string and character literals blanked."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            end = _literal_end(text, i)
            out.append(ch + re.sub(r"[^\n]", " ", text[i + 1 : end - 1]) + text[end - 1 : end])
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _literal_end(text: str, start: int) -> int:
    quote, i = text[start], start + 1
    while i < len(text) and text[i] not in (quote, "\n"):
        i += 2 if text[i] == "\\" else 1
    return min(len(text), i + 1)


def _diag(
    code: str,
    message: str,
    hint: str,
    file: str,
    line: int,
    column: int | None = None,
    length: int = 0,
) -> Diagnostic:
    end = column + max(0, length - 1) if column else None
    return Diagnostic(
        Severity.ERROR, code, message, file, line, column, line if column else None, end, hint
    )


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name) is not None


def _escapes(name: str) -> bool:
    return ".." in re.split(r"[\\/]", name)


@dataclass(frozen=True)
class Source:
    """The policy text after line splicing (translation phase 2) and with comments blanked,
    mapped back to the lines of the file as written."""

    code: str
    offsets: list[int]  # offset in the written text of each character of `code`
    line_starts: list[int]  # offsets of the written lines

    @staticmethod
    def of(text: str) -> Source:
        spliced, offsets = _splice(text)
        line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        return Source(blank_comments(spliced), offsets, line_starts)

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) in the written file of a character of `code`."""
        written = self.offsets[offset] if offset < len(self.offsets) else len(self.offsets)
        return _position(self.line_starts, written)


def scan_text(text: str, file: str, line_files: Iterable[Path] = ()) -> list[Diagnostic]:
    """Every security finding in the policy's own text. `line_files` are files that #line
    directives may name besides the policy and files in its folder (the DSL source of
    generated C)."""
    source = Source.of(text)
    diags = _scan_directives(source, file, {_real(p) for p in line_files})
    diags += _scan_tokens(source, file)
    return diags


def _scan_directives(source: Source, file: str, line_files: set[str]) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    start = 0
    for text in source.code.split("\n"):
        line = source.position(start)[0]
        start += len(text) + 1
        m = _DIRECTIVE.match(text)
        if not m:
            continue
        name, rest = m.group(1), m.group(2)
        if name in ("include", "import", "include_next", "embed"):
            diags += _include_directive(name, rest, file, line)
        elif name == "pragma":
            diags += _pragma(rest.strip(), file, line)
        elif name == "line" or name.isdigit():
            diags += _line_directive(
                rest if name == "line" else f"{name} {rest}", file, line, line_files
            )
        if name in ("if", "elif", "ifdef", "ifndef", "elifdef", "elifndef"):
            diags += _has_include_probes(rest, file, line)
    return diags


def _include_directive(name: str, rest: str, file: str, line: int) -> list[Diagnostic]:
    if name == "embed":
        return [
            _diag(
                "K062",
                "#embed reads the bytes of a file into the program",
                "a scheduler needs no data files; put constants in the C source",
                file,
                line,
            )
        ]
    if name == "include_next":
        return [
            _diag(
                "K062",
                "#include_next searches past the allowed include folders",
                "include the header by name with #include",
                file,
                line,
            )
        ]
    m = _QUOTED.match(rest)
    if not m:
        return [
            _diag(
                "K062",
                "#include of a computed name: the file it reads cannot be checked",
                'write the header name literally, e.g. #include "schedc_runtime.bpf.h"',
                file,
                line,
            )
        ]
    target = m.group(1) if m.group(1) is not None else m.group(2)
    return _path_findings(f"#include names '{target}'", target, file, line)


def _path_findings(what: str, target: str, file: str, line: int) -> list[Diagnostic]:
    if _is_absolute(target):
        return [
            _diag(
                "K060",
                f"{what}, an absolute path: a policy must not read files of the build host",
                "include headers by name from the include folders "
                "(vmlinux.h, schedc_runtime.bpf.h, <bpf/...>, -I DIR)",
                file,
                line,
            )
        ]
    if _escapes(target):
        return [
            _diag(
                "K061",
                f"{what}, which climbs out with '..': a policy must not read "
                "files outside its include folders",
                "pass the folder with -I DIR and include the header by name",
                file,
                line,
            )
        ]
    return []


def _has_include_probes(rest: str, file: str, line: int) -> list[Diagnostic]:
    diags = []
    for m in _HAS_INCLUDE.finditer(rest):
        target = m.group(2)[1:-1]
        diags += _path_findings(f"{m.group(1)} probes '{target}'", target, file, line)
    return diags


def _pragma(body: str, file: str, line: int) -> list[Diagnostic]:
    words = re.findall(r"\w+", body)
    first = words[0] if words else ""
    two = " ".join(words[:2])
    if first in _ALLOWED_PRAGMAS or two in _ALLOWED_PRAGMAS:
        return []
    reason = _PRAGMA_REASONS.get(two) or _PRAGMA_REASONS.get(first)
    shown = two if two in _PRAGMA_REASONS else (first or body)
    message = f"#pragma {shown}: " + (reason or "not one of the pragmas a policy may use")
    return [
        _diag(
            "K064",
            message,
            "remove it; a policy may use only #pragma once, unroll "
            "and loop hints, pack, and diagnostic push/pop/ignored",
            file,
            line,
        )
    ]


def _line_directive(rest: str, file: str, line: int, line_files: set[str]) -> list[Diagnostic]:
    m = _LINE_FILE.match(rest)
    if not m:
        return []
    named = Path(m.group(1))
    folder = Path(file).resolve().parent
    candidates = [named] if named.is_absolute() else [Path.cwd() / named, folder / named]
    for candidate in candidates:
        real = _real(candidate)
        allowed = real in line_files or real == _real(Path(file)) or _inside(real, [str(folder)])
        if not allowed and os.path.exists(real):  # a name that reads nothing leaks nothing
            return [
                _diag(
                    "K061",
                    f"#line names '{named}', a file outside the policy's folder: "
                    "clang copies the lines of that file into the object's BTF line info",
                    "name only the policy itself (or a file next to it) in #line",
                    file,
                    line,
                )
            ]
    return []


def _splice(text: str) -> tuple[str, list[int]]:
    """Backslash-newlines removed (translation phase 2), with each kept character's offset."""
    kept: list[str] = []
    offsets: list[int] = []
    i = 0
    while i < len(text):
        if text.startswith("\\\n", i):
            i += 2
            continue
        kept.append(text[i])
        offsets.append(i)
        i += 1
    return "".join(kept), offsets


def _scan_tokens(source: Source, file: str) -> list[Diagnostic]:
    """asm and _Pragma anywhere in the text, macro bodies included."""
    diags: list[Diagnostic] = []
    bare = blank_literals(source.code)
    for m in _ASM.finditer(bare):
        line, col = source.position(m.start())
        diags.append(
            _diag(
                "K063",
                f"inline assembly ('{m.group(1)}'): the checks and the "
                "kernel's rules for callbacks cannot see what it does",
                "write it in C; for loops use bpf_for() or can_loop from the BPF headers",
                file,
                line,
                col,
                len(m.group(1)),
            )
        )
    for m in _PRAGMA_OPERATOR.finditer(source.code):
        if bare[m.start()] != "_":  # inside a literal
            continue
        line, col = source.position(m.start())
        body = bytes(m.group(1).lstrip("L")[1:-1], "utf-8").decode("unicode_escape")
        for d in _pragma(body, file, line):
            diags.append(
                Diagnostic(
                    d.severity,
                    d.code,
                    d.message.replace("#pragma", "_Pragma", 1),
                    file,
                    line,
                    col,
                    line,
                    col + 6,
                    d.hint,
                )
            )
    return diags


def _position(line_starts: list[int], offset: int) -> tuple[int, int]:
    lo, hi = 0, len(line_starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if line_starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1, offset - line_starts[lo] + 1


def _real(path: Path) -> str:
    return os.path.realpath(path)


def _inside(real: str, roots: Iterable[str]) -> bool:
    for root in roots:
        root_real = os.path.realpath(root)
        if real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep):
            return True
    return False


def include_findings(
    inclusions: Iterable[tuple[str, int]], file: str, allowed_dirs: Iterable[Path]
) -> list[Diagnostic]:
    """After parsing: every file the policy itself included, given as (path, line of the
    #include), must lie in an allowed folder once symlinks are resolved."""
    roots = [str(d) for d in allowed_dirs]
    diags = []
    for included, line in inclusions:
        real = _real(Path(included))
        if not _inside(real, roots):
            diags.append(
                _diag(
                    "K061",
                    f"#include reads '{included}' (really '{real}'), outside "
                    "the allowed include folders",
                    "keep headers in the policy's folder or pass their folder with -I DIR",
                    file,
                    line,
                )
            )
    return diags


def blocks_parsing(diags: Iterable[Diagnostic]) -> bool:
    """Findings that mean libclang must not see the file: it would read the named files."""
    return any(d.code in ("K060", "K061", "K062") for d in diags)
