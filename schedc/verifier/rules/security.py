"""Security rules on the policy's own tokens: what it may pull into the build.

A policy written by an LLM is untrusted input to clang on the build host. These rules read the
policy as clang's own lexer splits it (libclang's tokens of the main file: digraphs such as
`%:include`, line splices with trailing spaces or CRLF, lone CR line ends and comments are
handled as clang handles them) and run before anything else; a policy whose #include names a
path outside the allowed folders is not handed to the parser at all.

They are for clear messages. What keeps host files from being read is the sandbox every
clang and libclang run goes through (schedc.compiler.cage): a spelling these rules miss meets
a file system with nothing in it but the toolchain.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from clang import cindex as ci

from schedc.diagnostics import Diagnostic, Severity
from schedc.paths import within
from schedc.verifier.rules.libclang import ensure_libclang

_SPLICE = re.compile(rb"\\[ \t\f\v]*(?:\r\n|\n|\r)")
_NEWLINE = re.compile(rb"\r\n|\n|\r")
_INCLUDES = ("include", "import", "include_next", "embed")
_PROBES = ("__has_include", "__has_include_next", "__has_embed")
_ASM_WORDS = ("asm", "__asm", "__asm__")
_PRAGMA_WORDS = ("_Pragma", "__pragma")
_HASH = ("#", "%:")
_PASTE = ("##", "%:%:")
_SEPARATORS = frozenset({";", "{", "}", ",", "<%", "%>"})
# Operators in one expression beyond which libclang's recursive parser (and the rules' walk of
# the tree) run out of stack: no policy needs a single expression this large.
MAX_EXPRESSION_OPERATORS = 2000
_PARSE_SINGLE_FILE = 0x400  # CXTranslationUnit_SingleFileParse: do not enter #include files

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
class Tok:
    kind: str  # "punct", "ident" (identifiers and keywords), "literal"
    text: str  # identifiers as clang reads them (splices removed); others as written
    line: int
    column: int
    start: int  # byte offsets in the file
    end: int


def tokens(text: str, file: str) -> list[Tok]:
    """The policy's tokens, comments left out, from libclang's lexer (the raw lexer: macros
    are not expanded and no other file is read; parsing is single-file, without bodies)."""
    data = text.encode("utf-8")
    ensure_libclang()
    index = ci.Index.create()
    options = (
        ci.TranslationUnit.PARSE_INCOMPLETE
        | ci.TranslationUnit.PARSE_SKIP_FUNCTION_BODIES
        | _PARSE_SINGLE_FILE
    )
    tu = index.parse(
        file,
        args=["-x", "c", "-nostdinc", "-fsyntax-only", "-Wno-everything"],
        unsaved_files=[(file, text)],
        options=options,
    )
    handle = ci.File.from_name(tu, file)
    extent = ci.SourceRange.from_locations(
        ci.SourceLocation.from_offset(tu, handle, 0),
        ci.SourceLocation.from_offset(tu, handle, len(data)),
    )
    kinds = {
        ci.TokenKind.PUNCTUATION: "punct",
        ci.TokenKind.IDENTIFIER: "ident",
        ci.TokenKind.KEYWORD: "ident",
        ci.TokenKind.LITERAL: "literal",
    }
    out = []
    for t in tu.get_tokens(extent=extent):
        kind = kinds.get(t.kind)
        if kind is None:  # a comment
            continue
        loc = t.location
        out.append(Tok(kind, t.spelling, loc.line, loc.column, loc.offset, t.extent.end.offset))
    return out


@dataclass(frozen=True)
class MacroUse:
    """What the parsed-tree K063 needs of the policy's tokens: its own macros that paste
    tokens (`##`), directly or through another macro of its own — the only way its text can
    build `asm` without writing it (a written `asm` is K063 from the tokens) — and the word at
    each (line, column)."""

    pasting: frozenset[str]
    words: dict[tuple[int, int], str]


def macro_use(text: str, file: str) -> MacroUse:
    data = text.encode("utf-8")
    toks = tokens(text, file)
    bodies: dict[str, list[Tok]] = {}
    params: dict[str, set[str]] = {}
    for i, tok in enumerate(toks[:-2]):
        if not (tok.kind == "punct" and tok.text in _HASH and toks[i + 1].text == "define"):
            continue
        end = _logical_line_end(data, tok.start)
        name = toks[i + 2]
        if name.start < end:
            body = [t for t in toks[i + 3 :] if t.start < end]
            named: set[str] = set()
            if body and body[0].text == "(" and body[0].start == name.end:
                close = next((k for k, t in enumerate(body) if t.text == ")"), len(body) - 1)
                named = {t.text for t in body[1:close] if t.kind == "ident"}
                named |= {"__VA_ARGS__"} if any(t.text == "..." for t in body[1:close]) else set()
                body = body[close + 1 :]
            bodies[name.text], params[name.text] = body, named
    pasting = {n for n, body in bodies.items() if _pastes_asm(body, params[n])}
    grew = True
    while grew:  # through the policy's own macros
        more = {n for n, body in bodies.items() if any(t.text in pasting for t in body)}
        grew = not more <= pasting
        pasting |= more
    words = {(t.line, t.column): t.text for t in toks if t.kind == "ident"}
    return MacroUse(frozenset(pasting), words)


def _pastes_asm(body: list[Tok], params: set[str]) -> bool:
    """Whether a `##` of this macro body can make an assembly keyword: in each chain
    `a ## b ## c`, the first operand must be a parameter or begin such a word, and the last a
    parameter or end one. scx_sdt's `stat_inc_##metric` never can, whatever `metric` is."""
    chains: list[list[Tok]] = []
    for k, tok in enumerate(body):
        if tok.text not in _PASTE or k == 0 or k + 1 == len(body):
            continue
        left, right = body[k - 1], body[k + 1]
        if chains and chains[-1][-1] is left:
            chains[-1].append(right)
        else:
            chains.append([left, right])

    def could(tok: Tok, fits: Callable[[str, str], bool]) -> bool:
        if tok.kind == "ident" and tok.text in params:
            return True
        return tok.kind == "ident" and any(fits(word, tok.text) for word in _ASM_WORDS)

    return any(
        could(chain[0], str.startswith) and could(chain[-1], str.endswith) for chain in chains
    )


def unsplice(raw: bytes) -> str:
    return _SPLICE.sub(b"", raw).decode("utf-8", errors="replace")


def _logical_line_end(data: bytes, start: int) -> int:
    """Offset of the newline that ends the logical line through `start` (splices joined)."""
    pos = start
    while True:
        m = _NEWLINE.search(data, pos)
        if m is None:
            return len(data)
        j = m.start() - 1
        while j >= pos and data[j] in b" \t\f\v":
            j -= 1
        if j >= pos and data[j] == ord("\\"):
            pos = m.end()  # a splice: the line goes on
            continue
        return m.start()


def _literal_value(tok: Tok) -> str | None:
    """A string literal's text without prefix and quotes (no escapes decoded), else None."""
    m = re.fullmatch(r'(?:u8|u|U|L)?"(.*)"', _clean(tok.text), re.S)
    return m.group(1) if m else None


def _clean(text: str) -> str:
    return unsplice(text.encode("utf-8"))


def _destringize(body: str) -> str:
    return body.replace('\\"', '"').replace("\\\\", "\\")


def scan_text(
    text: str, file: str, line_files: Iterable[Path] = (), cwd: str | None = None
) -> list[Diagnostic]:
    """Every security finding in the policy's own tokens. `line_files` are files that #line
    directives may name besides the policy and files in its folder (the DSL source of
    generated C); `cwd` is the folder relative names in #line are taken from."""
    data = text.encode("utf-8")
    try:
        toks = tokens(text, file)
    except ci.TranslationUnitLoadError:
        return [
            _diag(
                "K062",
                "libclang could not read the policy's tokens, so what it includes cannot be "
                "checked",
                "make it plain C text",
                file,
                1,
            )
        ]
    allowed = {os.path.normpath(os.path.abspath(p)) for p in line_files}
    allowed |= {_real(p) for p in line_files}
    scanner = _Scanner(toks, data, file, allowed, cwd or os.getcwd())
    return scanner.run()


_ASM_QUALIFIERS = frozenset(
    {"volatile", "__volatile", "__volatile__", "inline", "__inline", "__inline__", "goto"}
)


def _empty_asm(toks: list[Tok], i: int) -> bool:
    """`asm volatile("" :: "r"(&arena))`: an asm statement with operands or clobbers whose
    template is the empty string emits no instruction (a compiler barrier, or 7.x's scx_qmap
    keeping a map referenced), so there is nothing the checks cannot see. Only literal `""`
    pieces count, written as such."""
    j = i + 1
    while j < len(toks) and toks[j].kind == "ident" and toks[j].text in _ASM_QUALIFIERS:
        j += 1
    if j >= len(toks) or toks[j].text != "(":
        return False
    j += 1
    pieces = 0
    while j < len(toks) and toks[j].kind == "literal" and toks[j].text == '""':
        pieces, j = pieces + 1, j + 1
    return pieces > 0 and j < len(toks) and toks[j].text in (":", "::")


class _Scanner:
    def __init__(
        self, toks: list[Tok], data: bytes, file: str, line_files: set[str], cwd: str
    ) -> None:
        self.toks, self.data, self.file = toks, data, file
        self.line_files, self.cwd = line_files, cwd
        self.diags: list[Diagnostic] = []

    def run(self) -> list[Diagnostic]:
        toks = self.toks
        for i, tok in enumerate(toks):
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if tok.kind == "punct" and tok.text in _HASH and nxt is not None:
                self._directive(i, tok, nxt)
            elif tok.kind == "ident" and tok.text in _PROBES:
                self._probe(i, tok)
            elif tok.kind == "ident" and tok.text in _ASM_WORDS and not _empty_asm(toks, i):
                self._asm(tok, tok.text)
            elif tok.kind == "ident" and tok.text in _PRAGMA_WORDS:
                self._pragma_operator(i, tok)
            elif tok.kind == "punct" and tok.text in _PASTE:
                self._paste(i, tok)
        self._expression_size()
        return self.diags

    # -- directives ---------------------------------------------------------------------------
    def _directive(self, i: int, hash_tok: Tok, name_tok: Tok) -> None:
        name = name_tok.text
        end = _logical_line_end(self.data, hash_tok.start)
        rest = [t for t in self.toks[i + 2 :] if t.start < end] if name_tok.start < end else []
        line = hash_tok.line
        if name_tok.kind == "ident" and name in _INCLUDES:
            self.diags += _include_directive(name, self._header_name(rest, end), self.file, line)
        elif name_tok.kind == "ident" and name == "pragma":
            body = " ".join(_clean(t.text) for t in rest)
            self.diags += _pragma(body, self.file, line)
        elif (name_tok.kind == "ident" and name == "line") or (
            name_tok.kind == "literal" and name_tok.text.isdigit()
        ):
            operands = rest if name == "line" else [name_tok, *rest]
            named = _literal_value(operands[1]) if len(operands) > 1 else None
            if named is not None:
                self.diags += self._line_directive(named, line)

    def _header_name(self, rest: list[Tok], end: int) -> str | None:
        """The file an #include names literally, or None for a computed name."""
        if not rest:
            return None
        first = rest[0]
        if first.kind == "literal":
            return _literal_value(first)
        if first.kind == "punct" and first.text == "<":
            close = next((t for t in rest[1:] if t.kind == "punct" and t.text == ">"), None)
            if close is None:
                return None
            return unsplice(self.data[first.end : close.start])
        return None

    def _probe(self, i: int, tok: Tok) -> None:
        rest = self.toks[i + 1 : i + 2]
        end = _logical_line_end(self.data, tok.start)
        target = None
        if rest and rest[0].text == "(":
            target = self._header_name(self.toks[i + 2 : i + 200], end)
        if target is None:
            self.diags.append(
                _diag(
                    "K062",
                    f"{tok.text} of a computed name: the file it probes cannot be checked",
                    "write the header name literally",
                    self.file,
                    tok.line,
                )
            )
            return
        self.diags += _path_findings(f"{tok.text} probes '{target}'", target, self.file, tok.line)

    def _line_directive(self, named: str, line: int) -> list[Diagnostic]:
        own = os.path.normpath(os.path.abspath(self.file))
        folder = os.path.dirname(own)
        base = named if os.path.isabs(named) else os.path.join(self.cwd, named)
        candidates = {os.path.normpath(base), os.path.normpath(os.path.join(folder, named))}
        for candidate in candidates:
            if candidate in self.line_files or candidate == own:
                return []
            if os.path.dirname(candidate) == folder and not _escapes(named):
                return []
        if not os.path.isabs(named) and not _escapes(named):
            return []  # a plain name: the policy's folder or the working folder, both checked
        return [
            _diag(
                "K061",
                f"#line names '{named}', a file outside the policy's folder: "
                "clang copies the lines of that file into the object's BTF line info",
                "name only the policy itself (or a file next to it) in #line",
                self.file,
                line,
            )
        ]

    # -- tokens anywhere ----------------------------------------------------------------------
    def _asm(self, tok: Tok, word: str) -> None:
        self.diags.append(
            _diag(
                "K063",
                f"inline assembly ('{word}'): the checks and the "
                "kernel's rules for callbacks cannot see what it does",
                "write it in C; for loops use bpf_for() or can_loop from the BPF headers",
                self.file,
                tok.line,
                tok.column,
                len(word),
            )
        )

    def _pragma_operator(self, i: int, tok: Tok) -> None:
        args = self.toks[i + 1 : i + 4]
        body: str | None = None
        if (
            len(args) == 3
            and args[0].text == "("
            and args[1].kind == "literal"
            and args[2].text == ")"
        ):
            value = _literal_value(args[1])
            body = _destringize(value) if value is not None else None
        if body is None:
            found = [
                _diag(
                    "K064",
                    f"{tok.text} with a computed argument: the pragma it makes cannot be checked",
                    'write the pragma literally, e.g. _Pragma("unroll")',
                    self.file,
                    tok.line,
                )
            ]
        else:
            found = _pragma(body, self.file, tok.line)
        for d in found:
            self.diags.append(
                Diagnostic(
                    d.severity,
                    d.code,
                    d.message.replace("#pragma", tok.text, 1),
                    self.file,
                    tok.line,
                    tok.column,
                    tok.line,
                    tok.column + len(tok.text) - 1,
                    d.hint,
                )
            )

    def _paste(self, i: int, tok: Tok) -> None:
        """`__as ## m__` builds a keyword the other rules never see written."""
        left = self.toks[i - 1] if i > 0 else None
        right = self.toks[i + 1] if i + 1 < len(self.toks) else None
        for word in (*_ASM_WORDS, *_PRAGMA_WORDS):
            pieces = []
            if left is not None and left.kind == "ident" and _starts(word, left.text):
                pieces.append(left.text)
            if right is not None and right.kind == "ident" and _ends(word, right.text):
                pieces.append(right.text)
            if pieces:
                code = "K063" if word in _ASM_WORDS else "K064"
                self.diags.append(
                    _diag(
                        code,
                        f"token pasting ('{pieces[0]}' with {tok.text}) that can build '{word}'",
                        "write what you mean without ##; inline assembly and pragmas other "
                        "than unroll and diagnostic hints are not allowed",
                        self.file,
                        tok.line,
                        tok.column,
                        len(tok.text),
                    )
                )
                return

    def _expression_size(self) -> None:
        count, first = 0, None
        for tok in self.toks:
            if tok.kind == "punct" and (tok.text in _SEPARATORS or tok.text in _HASH):
                count, first = 0, None
            elif tok.kind == "punct":
                count += 1
                first = first or tok
                if count == MAX_EXPRESSION_OPERATORS:
                    self.diags.append(
                        _diag(
                            "K044",
                            f"an expression with more than {MAX_EXPRESSION_OPERATORS} "
                            "operators: too deep for the checks to analyse",
                            "split it into statements or a loop; the verifier would reject "
                            "a program this size in one callback anyway",
                            self.file,
                            first.line,
                            first.column,
                        )
                    )


def _starts(word: str, piece: str) -> bool:
    """A piece of three or more characters (`__a`, `_Pr`; not `__`) that begins `word`."""
    return 3 <= len(piece) < len(word) and word.startswith(piece)


def _ends(word: str, piece: str) -> bool:
    return 3 <= len(piece) < len(word) and word.endswith(piece)


def _include_directive(name: str, target: str | None, file: str, line: int) -> list[Diagnostic]:
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
    if target is None:
        return [
            _diag(
                "K062",
                "#include of a computed name: the file it reads cannot be checked",
                'write the header name literally, e.g. #include "schedc_runtime.bpf.h"',
                file,
                line,
            )
        ]
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


def _real(path: Path) -> str:
    return os.path.realpath(path)


def include_findings(
    inclusions: Iterable[tuple[str, int]], file: str, allowed_dirs: Iterable[Path]
) -> list[Diagnostic]:
    """After parsing: every file the policy itself included, given as (path, line of the
    #include), must lie in an allowed folder once symlinks are resolved."""
    roots = [str(d) for d in allowed_dirs]
    diags = []
    for included, line in inclusions:
        real = _real(Path(included))
        if not within(real, roots, resolve=True):
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


# Token findings about directives and words the preprocessor may skip: they count only where
# clang compiles them (scx's schedulers include headers by a relative path under `#ifdef LSP`,
# for editors). K044 is about the parser's stack, skipped or not.
SKIPPABLE = frozenset({"K060", "K061", "K062", "K063", "K064"})


def compiled_only(
    diags: Iterable[Diagnostic], file: str, skipped: Iterable[tuple[int, int]]
) -> list[Diagnostic]:
    """The token findings without those inside a block the preprocessor skips. Probes
    (`__has_include`) are always kept: clang evaluates the `#elif` they stand in even when
    it reports one skipped block from the `#if` to the `#endif`."""
    blocks = list(skipped)
    return [
        d
        for d in diags
        if not (
            d.code in SKIPPABLE
            and not d.message.startswith(_PROBES)
            and d.file == file
            and d.line is not None
            and any(first < d.line < last for first, last in blocks)
        )
    ]


def blocks_parsing(diags: Iterable[Diagnostic]) -> bool:
    """Findings that mean libclang must not see the file: it would read the named files."""
    return any(d.code in ("K044", "K060", "K061", "K062") for d in diags)
