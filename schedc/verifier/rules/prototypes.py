"""A kfunc's prototype as the C declares it, compared with the kernel's BTF as libbpf compares
them when it resolves a `__ksym` extern (bpf_core_types_are_compat() in tools/lib/bpf/
relo_core.c): typedefs and qualifiers do not matter, every integer is compatible with every
integer, a struct with any struct, but the parameter counts and the kinds (integer, enum,
pointer, struct, union, void) must match, through pointers too. A mismatch there makes libbpf
refuse the object ("func_proto ... incompatible with vmlinux"), or, for a `__weak` extern,
leave the kfunc unresolved as if the kernel lacked it.

What libbpf accepts but is still not the kernel's prototype (an integer of another width or
signedness, a pointer to a struct of another name) is a difference of its own: the value is
truncated or extended on its way, or the wrong object is passed.

Shapes are the text btf.type_shape() gives for the kernel's side.
"""

from __future__ import annotations

from dataclasses import dataclass

from clang import cindex as ci
from clang.cindex import CursorKind as CK
from clang.cindex import TypeKind as TK

from schedc.verifier.btf import Prototype

_INTS = {
    TK.SCHAR: "s",
    TK.SHORT: "s",
    TK.INT: "s",
    TK.LONG: "s",
    TK.LONGLONG: "s",
    TK.INT128: "s",
    TK.UCHAR: "u",
    TK.USHORT: "u",
    TK.UINT: "u",
    TK.ULONG: "u",
    TK.ULONGLONG: "u",
    TK.UINT128: "u",
    TK.CHAR16: "u",
    TK.CHAR32: "u",
    TK.WCHAR: "s",
}
_FLOATS = frozenset({TK.FLOAT, TK.DOUBLE, TK.LONGDOUBLE, TK.HALF, TK.FLOAT128})
_ARRAYS = frozenset({TK.CONSTANTARRAY, TK.INCOMPLETEARRAY, TK.VARIABLEARRAY})


def clang_shape(type_: ci.Type, depth: int = 0) -> str:
    """The shape of a C type, in btf.type_shape()'s terms."""
    t = type_.get_canonical()
    if depth > 16:
        return "..."
    if t.kind == TK.VOID:
        return "void"
    if t.kind == TK.BOOL:
        return "u8"
    if t.kind in (TK.CHAR_S, TK.CHAR_U):
        return "char8"
    if t.kind in _INTS:
        return f"{_INTS[t.kind]}{8 * t.get_size()}"
    if t.kind == TK.POINTER:
        return "*" + clang_shape(t.get_pointee(), depth + 1)
    if t.kind == TK.ENUM:
        return "enum"
    if t.kind == TK.RECORD:
        decl = t.get_declaration()
        word = "union" if decl.kind == CK.UNION_DECL else "struct"
        return f"{word} {decl.spelling}"
    if t.kind in _ARRAYS:
        return "array"
    if t.kind in (TK.FUNCTIONPROTO, TK.FUNCTIONNOPROTO):
        return "func"
    if t.kind in _FLOATS:
        return "float"
    return "?"


def parameter_shape(type_: ci.Type) -> str:
    """A parameter's shape: C adjusts a parameter of function or array type to a pointer
    (`bool (less)(...)` is `bool (*less)(...)`), and so does the BTF clang writes."""
    t = type_.get_canonical()
    if t.kind in (TK.FUNCTIONPROTO, TK.FUNCTIONNOPROTO):
        return "*func"
    if t.kind in _ARRAYS:
        return "*" + clang_shape(t.element_type)
    return clang_shape(t)


def declared_prototype(decl: ci.Cursor) -> Prototype:
    """A function declaration's prototype: its text (as the C spells it) and shapes."""
    args = list(decl.get_arguments())
    return Prototype(
        decl.result_type.spelling,
        tuple((a.spelling, a.type.spelling) for a in args),
        (clang_shape(decl.result_type), *(parameter_shape(a.type) for a in args)),
    )


def _kind(shape: str) -> str:
    if shape.startswith(("s", "u")) and shape[1:].isdigit() or shape == "char8":
        return "integer"
    if shape.startswith(("struct ", "union ")):
        return shape.split(" ", 1)[0]
    return shape


@dataclass(frozen=True)
class Mismatch:
    where: str  # "the return type", "parameter 2 (node)", "the parameter count"
    refused: bool  # libbpf refuses it; else it loads but is not the kernel's prototype
    why: str


def _compare(local: str, kernel: str) -> tuple[bool, str] | None:
    """None when the shapes agree; else (libbpf refuses it, what differs)."""
    pointers = 0
    while local.startswith("*") and kernel.startswith("*"):
        local, kernel, pointers = local[1:], kernel[1:], pointers + 1
    to = "a pointer to " * pointers
    mine = "a pointer" if local.startswith("*") else _says(local)
    theirs = "a pointer" if kernel.startswith("*") else _says(kernel)
    why = f"{to}{mine} where the kernel has {to}{theirs}"
    if local.startswith("*") or kernel.startswith("*") or _kind(local) != _kind(kernel):
        return True, why
    if local == kernel:
        return None
    if "char8" in (local, kernel) and {local, kernel} <= {"char8", "s8", "u8"}:
        return None  # plain char: signed in BPF C, unsigned in the kernel (-funsigned-char)
    return False, why


def _says(shape: str) -> str:
    if shape == "char8":
        return "a char"
    if _kind(shape) == "integer":
        signed = "signed" if shape[0] == "s" else "unsigned"
        return f"a {shape[1:]}-bit {signed} integer"
    if shape == "void":
        return "void"
    if shape.startswith(("struct ", "union ")):
        return shape
    return f"an {shape}" if shape[0] in "aeiou" else f"a {shape}"


def mismatches(local: Prototype, kernel: Prototype) -> list[Mismatch]:
    """How a declared prototype differs from the kernel's, refused ones first."""
    if len(local.params) != len(kernel.params):
        return [
            Mismatch(
                "the parameter count",
                True,
                f"{len(local.params)} parameter(s) where the kernel has {len(kernel.params)}",
            )
        ]
    found = []
    names = ["the return type"] + [
        f"parameter {i + 1}" + (f" ({n})" if n else "") for i, (n, _) in enumerate(kernel.params)
    ]
    for where, mine, theirs in zip(names, local.shapes, kernel.shapes, strict=False):
        differs = _compare(mine, theirs)
        if differs is not None:
            found.append(Mismatch(where, *differs))
    return sorted(found, key=lambda m: not m.refused)
