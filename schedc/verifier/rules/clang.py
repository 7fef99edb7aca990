"""libclang plumbing for the static checks: parsing, the policy's own cursors, source ranges,
constant evaluation, attributes, and a flat pre-order index of function bodies.

The translation unit of a policy is mostly vmlinux.h (2 MB); a recursive walk of all of it takes
seconds. Everything here starts from the policy's own top-level declarations (filtered by file
through the C API, without building Python objects per cursor) and walks only function bodies.
"""

from __future__ import annotations

import ctypes
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from clang import cindex as ci
from clang.cindex import CursorKind as CK

from schedc.diagnostics import Diagnostic, Severity
from schedc.verifier.rules.libclang import ensure_libclang
from schedc.verifier.rules.security import MacroUse

# enum CXBinaryOperatorKind / CXUnaryOperatorKind (clang-c/Index.h, LLVM >= 17)
BIN_LT, BIN_GT, BIN_LE, BIN_GE, BIN_EQ, BIN_NE = 11, 12, 13, 14, 15, 16
BIN_LAND, BIN_LOR, BIN_ASSIGN = 20, 21, 22
UN_ADDR_OF, UN_DEREF, UN_LNOT = 5, 6, 10
COMPARISONS = frozenset({BIN_LT, BIN_GT, BIN_LE, BIN_GE, BIN_NE})

_PRINTING_TERSE_OUTPUT = 17  # enum CXPrintingPolicyProperty
_EVAL_INT, _EVAL_STR = 1, 4  # enum CXEvalResultKind

LOOPS = frozenset({CK.FOR_STMT, CK.WHILE_STMT, CK.DO_STMT})
_TRANSPARENT = frozenset({CK.UNEXPOSED_EXPR, CK.PAREN_EXPR, CK.CSTYLE_CAST_EXPR})


class ParseError(Exception):
    """libclang could not produce a translation unit at all."""


class _SourceRangeList(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint), ("ranges", ctypes.POINTER(ci.SourceRange))]


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    """The libclang C API, with the few functions the Python bindings do not wrap."""
    ensure_libclang()
    lib = ci.conf.lib
    signatures: dict[str, tuple[list[object], object]] = {
        "clang_getCursorPrintingPolicy": ([ci.Cursor], ctypes.c_void_p),
        "clang_PrintingPolicy_setProperty": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_uint], None),
        "clang_PrintingPolicy_dispose": ([ctypes.c_void_p], None),
        "clang_getCursorPrettyPrinted": ([ci.Cursor, ctypes.c_void_p], ci._CXString),
        "clang_Cursor_Evaluate": ([ci.Cursor], ctypes.c_void_p),
        "clang_EvalResult_getKind": ([ctypes.c_void_p], ctypes.c_int),
        "clang_EvalResult_isUnsignedInt": ([ctypes.c_void_p], ctypes.c_uint),
        "clang_EvalResult_getAsUnsigned": ([ctypes.c_void_p], ctypes.c_ulonglong),
        "clang_EvalResult_getAsLongLong": ([ctypes.c_void_p], ctypes.c_longlong),
        "clang_EvalResult_getAsStr": ([ctypes.c_void_p], ctypes.c_char_p),
        "clang_EvalResult_dispose": ([ctypes.c_void_p], None),
        "clang_getCursorBinaryOperatorKind": ([ci.Cursor], ctypes.c_int),
        "clang_getCursorUnaryOperatorKind": ([ci.Cursor], ctypes.c_int),
        "clang_getSkippedRanges": (
            [ci.TranslationUnit, ci.File],
            ctypes.POINTER(_SourceRangeList),
        ),
        "clang_disposeSourceRangeList": ([ctypes.POINTER(_SourceRangeList)], None),
    }
    for name, (argtypes, restype) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = restype
    return lib


@lru_cache(maxsize=1)
def _index() -> ci.Index:
    ensure_libclang()
    return ci.Index.create()


@lru_cache(maxsize=8)
def builtin_include_dir(clang: str) -> Path | None:
    """clang's own headers (stddef.h, stdbool.h...). The PyPI libclang ships none, so the
    checks borrow the ones of the clang that compiles the policy."""
    try:
        out = subprocess.run(
            [clang, "-print-resource-dir"], capture_output=True, text=True, timeout=20, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    folder = Path(out) / "include"
    return folder if out and folder.is_dir() else None


def parse(path: Path, args: list[str], text: str | None = None) -> ci.TranslationUnit:
    unsaved = [(str(path), text)] if text is not None else None
    try:
        return _index().parse(str(path), args=args, unsaved_files=unsaved)
    except ci.TranslationUnitLoadError as exc:
        raise ParseError(f"libclang could not parse {path}") from exc


def skipped_blocks(path: Path, args: list[str], text: str) -> list[tuple[int, int]]:
    """The (first, last) lines of every block of `path` that the preprocessor skips under
    these flags (`#ifdef LSP` ... `#endif`), from a preprocessing run with the same include
    folders and macros as the compile. The bounds are the conditional directives themselves.
    Raises ParseError when libclang cannot run at all."""
    options = (
        ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD
        | ci.TranslationUnit.PARSE_SKIP_FUNCTION_BODIES
        | ci.TranslationUnit.PARSE_INCOMPLETE
    )
    try:
        tu = _index().parse(str(path), args=args, unsaved_files=[(str(path), text)], options=options)
    except ci.TranslationUnitLoadError as exc:
        raise ParseError(f"libclang could not preprocess {path}") from exc
    lib = _lib()
    found = lib.clang_getSkippedRanges(tu, ci.File.from_name(tu, str(path)))
    try:
        ranges = found.contents
        return [
            (ranges.ranges[i].start.line, ranges.ranges[i].end.line) for i in range(ranges.count)
        ]
    finally:
        lib.clang_disposeSourceRangeList(found)


# ---- locations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loc:
    """A range in the C file: 1-based lines and columns, end inclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int


def loc_of(cursor: ci.Cursor) -> Loc:
    """The written range of a cursor; inside a macro, the range of the macro's use."""
    start, end = cursor.extent.start, cursor.extent.end
    if start.file is None:
        start = end = cursor.location
    file = start.file.name if start.file else ""
    if (
        end.file is None
        or end.file.name != file
        or (end.line, end.column) < (start.line, start.column)
    ):
        return Loc(file, start.line, start.column, start.line, start.column)
    end_column = max(start.column, end.column - 1) if end.line == start.line else end.column - 1
    return Loc(file, start.line, start.column, end.line, max(1, end_column))


def own_top_level(
    tu: ci.TranslationUnit, path: Path, also: Iterable[str] = ()
) -> list[ci.Cursor]:
    """Top-level cursors written in `path` or the files `also` names (expansion location),
    without walking the rest."""
    lib = ci.conf.lib
    targets = {
        ctypes.cast(lib.clang_getFile(tu, name), ctypes.c_void_p).value
        for name in [str(path), *also]
    } - {None}
    if not targets:
        return []
    file_out = ctypes.POINTER(ctypes.c_void_p)()
    ref = ctypes.byref(file_out)
    own = []
    for cursor in tu.cursor.get_children():
        lib.clang_getInstantiationLocation(
            lib.clang_getCursorLocation(cursor), ref, None, None, None
        )
        if ctypes.cast(file_out, ctypes.c_void_p).value in targets:
            own.append(cursor)
    return own


def included_sources(tu: ci.TranslationUnit) -> list[str]:
    """C files (not headers) the policy pulls in with #include, at any depth: parts of the
    same program (scx_lavd's main.bpf.c includes util.bpf.c and five more; scx_chaos includes
    all of scx_p2dq's main.bpf.c, license included)."""
    return sorted({i.include.name for i in tu.get_includes() if i.include.name.endswith(".c")})


# ---- values and attributes ------------------------------------------------------------------


def const_int(cursor: ci.Cursor) -> int | None:
    """The value of an integer constant expression (literals, enums, macros, sizeof), else None.
    Values are returned as unsigned 64-bit when clang says the type is unsigned."""
    lib = _lib()
    result = lib.clang_Cursor_Evaluate(cursor)
    if not result:
        return None
    try:
        if lib.clang_EvalResult_getKind(result) != _EVAL_INT:
            return None
        if lib.clang_EvalResult_isUnsignedInt(result):
            return int(lib.clang_EvalResult_getAsUnsigned(result))
        return int(lib.clang_EvalResult_getAsLongLong(result))
    finally:
        lib.clang_EvalResult_dispose(result)


def const_str(cursor: ci.Cursor) -> str | None:
    lib = _lib()
    result = lib.clang_Cursor_Evaluate(cursor)
    if not result:
        return None
    try:
        if lib.clang_EvalResult_getKind(result) != _EVAL_STR:
            return None
        raw = lib.clang_EvalResult_getAsStr(result)
        return raw.decode("utf-8", errors="replace") if raw is not None else None
    finally:
        lib.clang_EvalResult_dispose(result)


def declaration_text(decl: ci.Cursor) -> str:
    """The declaration as clang prints it, without a body: attributes included, macros expanded
    (`SEC("x")` shows as `__attribute__((section("x")))`)."""
    lib = _lib()
    policy = lib.clang_getCursorPrintingPolicy(decl)
    try:
        lib.clang_PrintingPolicy_setProperty(policy, _PRINTING_TERSE_OUTPUT, 1)
        return ci._CXString.from_result(lib.clang_getCursorPrettyPrinted(decl, policy))
    finally:
        lib.clang_PrintingPolicy_dispose(policy)


def section_of(decl: ci.Cursor) -> str | None:
    text = declaration_text(decl)
    marker = '__attribute__((section("'
    start = text.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = text.find('")', start)
    return text[start:end] if end >= 0 else None


def is_weak(decl: ci.Cursor) -> bool:
    return "__attribute__((weak))" in declaration_text(decl)


def binary_op(cursor: ci.Cursor) -> int:
    return int(_lib().clang_getCursorBinaryOperatorKind(cursor))


def unary_op(cursor: ci.Cursor) -> int:
    return int(_lib().clang_getCursorUnaryOperatorKind(cursor))


def strip(cursor: ci.Cursor) -> ci.Cursor:
    """Look through implicit conversions, parentheses and casts."""
    while cursor.kind in _TRANSPARENT:
        children = list(cursor.get_children())
        if not children:
            return cursor
        cursor = children[-1]
    return cursor


def referenced_name(cursor: ci.Cursor) -> str | None:
    """The name a (possibly cast or parenthesised) DECL_REF_EXPR refers to."""
    inner = strip(cursor)
    if inner.kind == CK.DECL_REF_EXPR:
        return inner.spelling
    return None


# ---- a flat index of a function body --------------------------------------------------------


@dataclass
class Node:
    """One cursor of a function body, in pre-order. `end` is one past the last node of its
    subtree, so a subtree is the slice nodes[index:end]."""

    cursor: ci.Cursor
    kind: CK
    parent: int
    end: int = 0
    guards: frozenset[str] = frozenset()  # functions named in the conditions around it
    depth: int = 0  # conditional constructs around it (if, ?:, loops, switch, && and ||)
    in_condition: bool = False  # inside a condition or a test (!x, x == y, x && y)
    # (index of a condition node, whether it must hold) for every condition it runs under:
    # the branches of if, ?:, && and ||, and what follows an `if (c) return ...;`
    conditions: tuple[tuple[int, bool], ...] = ()


@dataclass(frozen=True)
class _Ctx:
    parent: int
    guards: frozenset[str]
    depth: int
    in_condition: bool
    conditions: tuple[tuple[int, bool], ...] = ()


class BodyIndex:
    """The flattened body of one function definition."""

    def __init__(self, body: ci.Cursor) -> None:
        self.nodes: list[Node] = []
        self._visit(body, _Ctx(-1, frozenset(), 0, False, ()))

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def subtree(self, index: int) -> list[Node]:
        return self.nodes[index : self.nodes[index].end]

    def ancestors(self, index: int) -> Iterator[Node]:
        parent = self.nodes[index].parent
        while parent >= 0:
            yield self.nodes[parent]
            parent = self.nodes[parent].parent

    def _visit(self, cursor: ci.Cursor, ctx: _Ctx) -> None:
        index = len(self.nodes)
        kind = cursor.kind
        node = Node(
            cursor, kind, ctx.parent, 0, ctx.guards, ctx.depth, ctx.in_condition, ctx.conditions
        )
        self.nodes.append(node)
        children = list(cursor.get_children())
        for position, child in enumerate(children):
            child_index = len(self.nodes)
            child_ctx = self._child_ctx(index, kind, cursor, position, len(children), ctx)
            if position > 0 and self._guards_rest(kind, cursor):
                holds = position == 1 and not (
                    kind == CK.BINARY_OPERATOR and binary_op(cursor) == BIN_LOR
                )
                child_ctx = _under(child_ctx, index + 1, holds)
            self._visit(child, child_ctx)
            if position == 0 and self._guards_rest(kind, cursor):
                ctx = _with_guards(ctx, self._function_refs(index + 1))
            if kind == CK.COMPOUND_STMT and self._returns_early(child_index):
                # `if (c) return ...;` guards the statements after it: they run when !c
                ctx = _with_guards(ctx, self._function_refs(child_index + 1))
                ctx = _under(ctx, child_index + 1, False)
        node.end = len(self.nodes)

    @staticmethod
    def _guards_rest(kind: CK, cursor: ci.Cursor) -> bool:
        """Whether the first child is a condition the other children depend on."""
        if kind in (CK.IF_STMT, CK.CONDITIONAL_OPERATOR):
            return True
        return kind == CK.BINARY_OPERATOR and binary_op(cursor) in (BIN_LAND, BIN_LOR)

    def _direct_children(self, index: int) -> list[int]:
        return [i for i in range(index + 1, self.nodes[index].end) if self.nodes[i].parent == index]

    def _returns_early(self, index: int) -> bool:
        """An `if` without else whose branch always returns."""
        if self.nodes[index].kind != CK.IF_STMT:
            return False
        branches = self._direct_children(index)[1:]
        if len(branches) != 1:
            return False
        branch = self.nodes[branches[0]]
        if branch.kind == CK.RETURN_STMT:
            return True
        statements = self._direct_children(branches[0])
        return (
            branch.kind == CK.COMPOUND_STMT
            and bool(statements)
            and self.nodes[statements[-1]].kind == CK.RETURN_STMT
        )

    def _child_ctx(
        self, index: int, kind: CK, cursor: ci.Cursor, position: int, count: int, ctx: _Ctx
    ) -> _Ctx:
        base = _Ctx(index, ctx.guards, ctx.depth, ctx.in_condition, ctx.conditions)
        if kind in (CK.IF_STMT, CK.CONDITIONAL_OPERATOR, CK.SWITCH_STMT, CK.WHILE_STMT):
            return _branch(base, is_test=position == 0)
        if kind == CK.DO_STMT:
            return _branch(base, is_test=position == count - 1)
        if kind == CK.FOR_STMT:
            return _branch(base, is_test=position < count - 1)
        if kind == CK.BINARY_OPERATOR:
            op = binary_op(cursor)
            if op in (BIN_LAND, BIN_LOR):
                return _Ctx(
                    index, ctx.guards, ctx.depth + (position > 0), True, ctx.conditions
                )
            if op in (BIN_EQ, BIN_NE):
                return _Ctx(index, ctx.guards, ctx.depth, True, ctx.conditions)
        if kind == CK.UNARY_OPERATOR and unary_op(cursor) == UN_LNOT:
            return _Ctx(index, ctx.guards, ctx.depth, True, ctx.conditions)
        return base

    def _function_refs(self, start: int) -> frozenset[str]:
        """Names of functions referenced in the subtree starting at `start` (a guard like
        `if (bpf_ksym_exists(f))` references f)."""
        names = set()
        for node in self.nodes[start : self.nodes[start].end]:
            if node.kind == CK.DECL_REF_EXPR:
                ref = node.cursor.referenced
                if ref is not None and ref.kind == CK.FUNCTION_DECL:
                    names.add(node.cursor.spelling)
        return frozenset(names)


def _branch(ctx: _Ctx, *, is_test: bool) -> _Ctx:
    if is_test:
        return _Ctx(ctx.parent, ctx.guards, ctx.depth, True, ctx.conditions)
    return _Ctx(ctx.parent, ctx.guards, ctx.depth + 1, False, ctx.conditions)


def _with_guards(ctx: _Ctx, names: frozenset[str]) -> _Ctx:
    return _Ctx(ctx.parent, ctx.guards | names, ctx.depth, ctx.in_condition, ctx.conditions)


def _under(ctx: _Ctx, condition: int, holds: bool) -> _Ctx:
    return _Ctx(
        ctx.parent, ctx.guards, ctx.depth, ctx.in_condition, (*ctx.conditions, (condition, holds))
    )


def function_body(decl: ci.Cursor) -> ci.Cursor | None:
    """The COMPOUND_STMT of a function definition (not the return-type expressions before it)."""
    body = None
    for child in decl.get_children():
        if child.kind == CK.COMPOUND_STMT:
            body = child
    return body


_ASM_KINDS = frozenset({CK.ASM_STMT, CK.MS_ASM_STMT, CK.ASM_LABEL_ATTR})


def inline_assembly(top: list[ci.Cursor], macros: MacroUse) -> list[Diagnostic]:
    """K063 on the parsed tree: inline assembly the token rules could not see written (a macro
    of the policy's own that pastes tokens built `__asm__` out of pieces). Assembly that a
    header's macro expands to (MEMBER_VPTR in the kernel's scx/common.bpf.h) is the header's,
    as it was before parsing. An explicit stack, not recursion: trees can be deep."""
    found: list[Diagnostic] = []
    stack = list(reversed(top))
    while stack:
        cursor = stack.pop()
        kind = cursor.kind
        is_file_asm = kind == CK.UNEXPOSED_DECL and declaration_text(cursor).lstrip().startswith(
            ("__asm", "asm")
        )
        if (kind in _ASM_KINDS or is_file_asm) and _built_by(cursor, macros):
            if kind == CK.ASM_STMT and _empty_template(cursor):
                continue  # emits no instruction (see security._empty_asm)
            loc = cursor.location
            found.append(
                Diagnostic(
                    Severity.ERROR,
                    "K063",
                    "inline assembly (built by a macro): the checks and the kernel's rules for "
                    "callbacks cannot see what it does",
                    loc.file.name if loc.file else None,
                    loc.line or None,
                    loc.column or None,
                    hint="write it in C; for loops use bpf_for() or can_loop from the BPF headers",
                )
            )
            continue
        stack.extend(reversed(list(cursor.get_children())))
    return found


_ASM_QUALIFIERS = frozenset(
    {"volatile", "__volatile", "__volatile__", "inline", "__inline", "__inline__", "goto"}
)


def _empty_template(cursor: ci.Cursor) -> bool:
    """`asm volatile("" ::: "memory")` as written: its template only literal `""` pieces."""
    words = [t.spelling for t in cursor.get_tokens()]
    i = 1
    while i < len(words) and words[i] in _ASM_QUALIFIERS:
        i += 1
    if i >= len(words) or words[i] != "(":
        return False
    i += 1
    start = i
    while i < len(words) and words[i] == '""':
        i += 1
    return i > start and i < len(words) and words[i] in (":", "::")


def _built_by(cursor: ci.Cursor, macros: MacroUse) -> bool:
    """Whether the policy's own text built this assembly: the word where it starts is one of
    the policy's pasting macros, or no word of the policy's that could be a header's macro."""
    loc = cursor.extent.start
    word = macros.words.get((loc.line, loc.column))
    return word is None or word in macros.pasting or word in ("asm", "__asm", "__asm__")
