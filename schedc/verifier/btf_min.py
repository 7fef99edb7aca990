"""A minimal kernel BTF: the types generated policies and the runtime header need, cut from a
full vmlinux BTF, so that `schedc compile` works on a machine with clang and no kernel kit.

The cut keeps, complete (every member, the real size and offsets):
- the structs and unions the C names (`struct task_struct`, `struct sched_ext_ops`, ...),
- those the objects reach through CO-RE relocations (`p->cgroups->dfl_cgrp->kn->name`; the
  list comes from `bpftool gen min_core_btf` on objects built against the full BTF),
- and every struct or union a kept one holds by value (a member's layout needs it).
A pointer to any other struct or union points to a forward declaration of it (an anonymous one
becomes `void *`). Enums are kept whole when the C names one of their values or they are the
type of a kept member; typedefs, integers and the rest when something kept refers to them.
Functions, variables and data sections are dropped (the runtime header declares the kfuncs).

The result is ordinary BTF: `bpftool btf dump file F format c` turns it into a vmlinux.h, and
objects compiled against it carry CO-RE relocations that libbpf resolves against the running
kernel's BTF, as with the full one. scripts/make_default_btf.py builds the shipped copy
(schedc/codegen_templates/default_kernel/); docs/compile.md, "Without a kernel kit".
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable

from schedc.verifier.btf import (
    ARRAY,
    CONST,
    ENUM,
    ENUM64,
    FLOAT,
    FUNC_PROTO,
    FWD,
    INT,
    PTR,
    RESTRICT,
    STRUCT,
    TYPE_TAG,
    TYPEDEF,
    UNION,
    VOLATILE,
    Btf,
    BtfError,
    BtfType,
    read_btf,
)

_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
# Kinds a cut keeps; their size_or_type is a type id for these:
_REFERS = {PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC_PROTO, TYPE_TAG}
_KEPT_KINDS = _REFERS | {INT, ARRAY, STRUCT, UNION, ENUM, FWD, ENUM64, FLOAT}
_MODIFIERS = {TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG}
_RECORDS = (STRUCT, UNION)
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")
_RECORD_NAME = re.compile(r"\b(?:struct|union)\s+([A-Za-z_]\w*)")


def _refs(t: BtfType) -> list[int]:
    """The type ids `t` refers to (members, elements, parameters, targets)."""
    ids: list[int] = [t.size_or_type] if t.kind in _REFERS else []
    if t.kind == ARRAY and t.array is not None:
        ids += [t.array[0], t.array[1]]
    ids += [m[1] for m in t.members] + [p[1] for p in t.params]
    return ids


def _by_value(btf: Btf, ref: int) -> list[int]:
    """The record a member of type `ref` holds by value (through typedefs, qualifiers and
    arrays; not through pointers), as a list of zero or one id."""
    for _ in range(64):
        t = btf.get(ref)
        if t is None:
            return []
        if t.kind in _RECORDS:
            return [ref]
        if t.kind in _MODIFIERS:
            ref = t.size_or_type
        elif t.kind == ARRAY and t.array is not None:
            ref = t.array[0]
        else:
            return []
    raise BtfError("a chain of more than 64 typedefs, qualifiers and arrays")


def c_names(texts: Iterable[str]) -> tuple[set[str], set[str]]:
    """(every identifier, the struct and union names) of C sources: what a cut must keep."""
    idents: set[str] = set()
    records: set[str] = set()
    for text in texts:
        idents.update(_IDENT.findall(text))
        records.update(_RECORD_NAME.findall(text))
    return idents, records


def cut(btf: Btf, idents: set[str], complete: set[str]) -> list[BtfType]:
    """The minimal BTF of the module docstring, as types in id order from 1: `complete` names
    the structs and unions kept whole (what the C names and what CO-RE reaches), `idents` every
    identifier of the C (enum values and typedef names among them)."""
    types = btf.types
    records_by_name: dict[str, list[int]] = {}
    roots: list[int] = []  # the enums whose values the C uses, the typedefs it names
    for i, t in enumerate(types):
        if t is None:
            continue
        if t.kind in _RECORDS and t.name:
            records_by_name.setdefault(t.name, []).append(i)
        elif t.kind in (ENUM, ENUM64) and (
            t.name in idents or any(name in idents for name, _ in t.values)
        ):
            roots.append(i)
        elif t.kind == TYPEDEF and t.name in idents:
            roots.append(i)

    # Whole records: the named ones and what a root holds by value, then whatever they hold
    # by value, to a fixed point.
    whole: set[int] = {i for name in complete for i in records_by_name.get(name, [])}
    for i in roots:
        whole.update(_by_value(btf, i))
    pending = list(whole)
    while pending:
        for ref in _refs(types[pending.pop()]):  # type: ignore[arg-type]
            for held in _by_value(btf, ref):
                if held not in whole:
                    whole.add(held)
                    pending.append(held)

    # Everything else reachable from them. A record that is not whole is not followed: a
    # reference to it becomes a forward declaration (void, for an anonymous one).
    def cut_off(ref: int) -> bool:
        t = btf.get(ref)
        return t is not None and t.kind in _RECORDS and ref not in whole

    keep: set[int] = set()
    pending = sorted(whole) + roots
    while pending:
        i = pending.pop()
        t = btf.get(i)
        if i in keep or t is None:
            continue
        if t.kind not in _KEPT_KINDS:
            raise BtfError(f"type {i} of kind {t.kind} cannot be kept in a cut")
        keep.add(i)
        pending += [ref for ref in _refs(t) if not cut_off(ref)]

    new_id: dict[int, int] = {0: 0}
    for i in sorted(keep):
        new_id[i] = len(new_id)
    forwards: list[BtfType] = []
    for i in sorted(keep):
        for ref in _refs(types[i]):  # type: ignore[arg-type]
            target = btf.get(ref)
            if cut_off(ref) and target is not None and target.name and ref not in new_id:
                new_id[ref] = len(new_id)
                forwards.append(BtfType(FWD, target.name, 0, target.kind == UNION, 0))

    def ref(old: int) -> int:
        return new_id.get(old, 0)  # 0 (void): an anonymous record behind a pointer

    out: list[BtfType] = []
    for i in sorted(keep):
        t = types[i]
        assert t is not None
        out.append(
            BtfType(
                t.kind,
                t.name,
                t.vlen,
                t.kind_flag,
                ref(t.size_or_type) if t.kind in _REFERS else t.size_or_type,
                members=[(n, ref(m), off) for n, m, off in t.members],
                params=[(n, ref(p)) for n, p in t.params],
                values=list(t.values),
                array=(ref(t.array[0]), ref(t.array[1]), t.array[2]) if t.array else None,
                int_info=t.int_info,
            )
        )
    return out + forwards


def write_btf(types: list[BtfType]) -> bytes:
    """Raw BTF (little-endian) of `types`, ids from 1 in list order."""
    strings = bytearray(b"\0")
    offsets = {"": 0}

    def name_off(name: str) -> int:
        if name not in offsets:
            offsets[name] = len(strings)
            strings.extend(name.encode() + b"\0")
        return offsets[name]

    body = bytearray()
    for t in types:
        info = (t.kind << 24) | (t.vlen & 0xFFFF) | (int(t.kind_flag) << 31)
        body += _TYPE.pack(name_off(t.name), info, t.size_or_type)
        if t.kind == INT:
            body += struct.pack("<I", t.int_info)
        elif t.kind == ARRAY and t.array is not None:
            body += struct.pack("<III", *t.array)
        elif t.kind in _RECORDS:
            for n, m, off in t.members:
                body += struct.pack("<III", name_off(n), m, off)
        elif t.kind == ENUM:
            for n, v in t.values:
                body += struct.pack("<Ii" if t.kind_flag else "<II", name_off(n), v)
        elif t.kind == ENUM64:
            for n, v in t.values:
                v &= (1 << 64) - 1
                body += struct.pack("<III", name_off(n), v & 0xFFFFFFFF, v >> 32)
        elif t.kind == FUNC_PROTO:
            for n, p in t.params:
                body += struct.pack("<II", name_off(n), p)
    header = _HEADER.pack(0xEB9F, 1, 0, _HEADER.size, 0, len(body), len(body), len(strings))
    return header + bytes(body) + bytes(strings)


def minimal_btf(full: bytes, sources: Iterable[str], core_btf: bytes | None = None) -> bytes:
    """The cut of `full` for C `sources`; `core_btf` is `bpftool gen min_core_btf`'s output for
    objects of those sources (its named records are kept whole too)."""
    idents, records = c_names(sources)
    if core_btf is not None:
        records |= {
            t.name for t in read_btf(core_btf).types if t and t.kind in _RECORDS and t.name
        }
    return write_btf(cut(read_btf(full), idents, records))
