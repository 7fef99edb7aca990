"""What a kernel's BTF says about sched_ext: its kfuncs (names and prototypes), the members of
its ops structs (`struct sched_ext_ops`, 7.x's `sched_ext_ops_cid`) and its `SCX_*` enum
values. Read from the raw `vmlinux.btf` of a kit with a small parser of our own.

The format (Documentation/bpf/btf.rst): a header (magic 0xEB9F, version, flags, header length,
then the offset and length of the type section and of the string section, relative to the end
of the header), the types one after another (ids from 1; 0 is void), each a 12-byte
`struct btf_type` (name offset, info: kind in bits 24-28 and vlen in bits 0-15, size or type)
followed by data whose length depends on the kind, and NUL-terminated strings.

    read_btf(data) -> Btf                       every type, in id order
    kernel_facts(path, cache) -> KernelFacts    the sched_ext facts, cached by the file's hash
    python -m schedc.verifier.btf FILE...       the same checks, for the kit-building script

A kit whose BTF still has the long prototype of a kfunc with an implicit argument (built with
pahole < 1.26) is broken: `kernel_facts` raises EnvironmentProblem with the explanation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schedc.compiler.toolchain import file_sha256
from schedc.settings import EnvironmentProblem

MAGIC = 0xEB9F
FACTS_FORMAT = 2  # bump when KernelFacts changes shape: old cache files are then ignored

# BTF_KIND_*
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC = 9, 10, 11, 12, 13, 14, 15
FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = 16, 17, 18, 19

_TYPE = struct.Struct("<III")
_HEADER = struct.Struct("<HBBIIIII")


class BtfError(ValueError):
    """The bytes are not BTF this parser understands."""


@dataclass
class BtfType:
    kind: int
    name: str
    vlen: int
    kind_flag: bool
    size_or_type: int
    at: int = 0  # the record's byte offset in the file
    # kind-specific data: members (name, type, offset) of STRUCT/UNION, (name, type) params of
    # FUNC_PROTO, (name, value) of ENUM/ENUM64, (type, index, count) of ARRAY, the component
    # index of DECL_TAG
    members: list[tuple[str, int, int]] = field(default_factory=list)
    params: list[tuple[str, int]] = field(default_factory=list)
    values: list[tuple[str, int]] = field(default_factory=list)
    array: tuple[int, int, int] | None = None
    component: int = -1
    int_info: int = 0  # INT: encoding (bits 24-27: 1 signed, 2 char, 4 bool), offset, bits


@dataclass
class Btf:
    types: list[BtfType | None]  # index = type id; types[0] is void (None)

    def get(self, type_id: int) -> BtfType | None:
        return self.types[type_id] if 0 < type_id < len(self.types) else None


def read_btf(data: bytes) -> Btf:
    """Every type of a raw BTF blob (little-endian, as x86 kernels write it)."""
    if len(data) < _HEADER.size:
        raise BtfError("too short for a BTF header")
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(
        data
    )
    if magic != MAGIC:
        raise BtfError(f"bad magic 0x{magic:04x} (a raw BTF file starts with 0xEB9F)")
    if version != 1:
        raise BtfError(f"BTF version {version}; this parser reads version 1")
    types_at, strings_at = hdr_len + type_off, hdr_len + str_off
    if types_at + type_len > len(data) or strings_at + str_len > len(data):
        raise BtfError("the header points past the end of the file")
    strings = data[strings_at : strings_at + str_len]

    def name(offset: int) -> str:
        if offset >= len(strings):
            raise BtfError(f"string offset {offset} is past the string section")
        end = strings.find(b"\0", offset)
        return strings[offset : end if end >= 0 else len(strings)].decode("utf-8", "replace")

    types: list[BtfType | None] = [None]
    pos, end = types_at, types_at + type_len
    while pos < end:
        if pos + _TYPE.size > end:
            raise BtfError(f"a type record is cut off at byte {pos}")
        name_off, info, size_or_type = _TYPE.unpack_from(data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        t = BtfType(kind, name(name_off), vlen, bool(info >> 31), size_or_type, pos)
        pos += _TYPE.size
        if kind in (INT, VAR, DECL_TAG):
            if kind == DECL_TAG:
                t.component = struct.unpack_from("<i", data, pos)[0]
            elif kind == INT:
                t.int_info = struct.unpack_from("<I", data, pos)[0]
            pos += 4
        elif kind == ARRAY:
            t.array = struct.unpack_from("<III", data, pos)
            pos += 12
        elif kind in (STRUCT, UNION):
            for i in range(vlen):
                m_name, m_type, m_off = struct.unpack_from("<III", data, pos + 12 * i)
                t.members.append((name(m_name), m_type, m_off))
            pos += 12 * vlen
        elif kind == ENUM:
            signed = t.kind_flag
            for i in range(vlen):
                v_name, value = struct.unpack_from("<Ii" if signed else "<II", data, pos + 8 * i)
                t.values.append((name(v_name), value))
            pos += 8 * vlen
        elif kind == ENUM64:
            for i in range(vlen):
                v_name, lo, hi = struct.unpack_from("<III", data, pos + 12 * i)
                value = (hi << 32) | lo
                if t.kind_flag and value >= 1 << 63:
                    value -= 1 << 64
                t.values.append((name(v_name), value))
            pos += 12 * vlen
        elif kind == FUNC_PROTO:
            for i in range(vlen):
                p_name, p_type = struct.unpack_from("<II", data, pos + 8 * i)
                t.params.append((name(p_name), p_type))
            pos += 8 * vlen
        elif kind == DATASEC:
            pos += 12 * vlen
        elif kind not in (PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG):
            raise BtfError(f"unknown BTF kind {kind} (type {len(types)})")
        types.append(t)
    if pos != end:
        raise BtfError("the last type record runs past the type section")
    return Btf(types)


def type_text(btf: Btf, type_id: int, depth: int = 0) -> str:
    """A type as C spells it, roughly: `u64`, `struct task_struct *`, `const struct cpumask *`."""
    t = btf.get(type_id)
    if t is None:
        return "void"
    if depth > 16:
        return "..."
    if t.kind in (INT, FLOAT, TYPEDEF):
        return t.name
    if t.kind in (STRUCT, UNION, ENUM, ENUM64, FWD):
        word = {STRUCT: "struct", UNION: "union", FWD: "union" if t.kind_flag else "struct"}
        return f"{word.get(t.kind, 'enum')} {t.name or '(anon)'}"
    inner = type_text(btf, t.size_or_type, depth + 1)
    if t.kind == PTR:
        return f"{inner}*" if inner.endswith("*") else f"{inner} *"
    if t.kind in (CONST, VOLATILE, RESTRICT):
        word = {CONST: "const", VOLATILE: "volatile", RESTRICT: "restrict"}[t.kind]
        return f"{inner} {word}" if inner.endswith("*") else f"{word} {inner}"
    if t.kind == ARRAY and t.array is not None:
        return f"{type_text(btf, t.array[0], depth + 1)}[{t.array[2]}]"
    if t.kind == FUNC_PROTO:
        return f"{inner} (*)(...)"
    return inner  # TYPE_TAG: the tagged type


def type_shape(btf: Btf, type_id: int, depth: int = 0) -> str:
    """A type as libbpf compares a kfunc's prototype with the kernel's: typedefs and qualifiers
    skipped, integers by width and signedness (`u64`, `s32`, `char8` for plain char whose
    signedness differs between kernel and BPF builds, `bool` as `u8`), `enum`, `struct NAME`,
    `union NAME`, and a pointer as `*` before what it points to. rules/prototypes.py gives the
    same text for a C type."""
    t = btf.get(type_id)
    if t is None:
        return "void"
    if depth > 16:
        return "..."
    if t.kind in (TYPEDEF, CONST, VOLATILE, RESTRICT, TYPE_TAG):
        return type_shape(btf, t.size_or_type, depth + 1)
    if t.kind == INT:
        encoding = (t.int_info >> 24) & 0xF
        if encoding & 4:
            return "u8"
        if t.name == "char":
            return "char8"
        return f"{'s' if encoding & 1 else 'u'}{8 * t.size_or_type}"
    if t.kind == PTR:
        return "*" + type_shape(btf, t.size_or_type, depth + 1)
    if t.kind in (ENUM, ENUM64):
        return "enum"
    if t.kind in (STRUCT, UNION, FWD):
        union = t.kind == UNION or (t.kind == FWD and t.kind_flag)
        return f"{'union' if union else 'struct'} {t.name}"
    return {ARRAY: "array", FUNC_PROTO: "func", FLOAT: "float"}.get(t.kind, "?")


# ---- the sched_ext facts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Prototype:
    """A kfunc's BTF prototype: its return type and (name, type) parameters, as text, and the
    shape (type_shape) of the return type and of each parameter, in that order."""

    returns: str
    params: tuple[tuple[str, str], ...]
    shapes: tuple[str, ...] = ()

    def text(self, name: str) -> str:
        params = ", ".join(f"{t} {n}" if not t.endswith("*") else f"{t}{n}" for n, t in self.params)
        head = f"{self.returns} " if not self.returns.endswith("*") else self.returns
        return f"{head}{name}({params or 'void'})"


SCX_PREFIXES = ("scx_bpf_", "bpf_iter_scx_", "__scx_bpf_")
OPS_STRUCT_PREFIX = "sched_ext_ops"
IMPLICIT_SUFFIX = "_impl"


@dataclass(frozen=True)
class KernelFacts:
    """The sched_ext facts of one kernel's BTF (JSON-able, so the sandboxed rule worker can get
    them in its request)."""

    btf_hash: str
    kfuncs: dict[str, Prototype]  # sched_ext kfuncs (and every `bpf_kfunc`-tagged one)
    ops: dict[str, tuple[str, ...]]  # sched_ext_ops (and sched_ext_ops_cid): member names
    enums: dict[str, int]  # every SCX_* enumerator
    ops_flags: dict[str, int]  # enum scx_ops_flags: the flags an ops struct may set
    tagged: bool  # whether the BTF marks kfuncs with the `bpf_kfunc` decl tag (pahole >= 1.26)

    @property
    def ops_flags_mask(self) -> int:
        if "SCX_OPS_ALL_FLAGS" in self.ops_flags:
            return self.ops_flags["SCX_OPS_ALL_FLAGS"]
        mask = 0
        for value in self.ops_flags.values():
            mask |= value
        return mask

    def has_kfunc(self, name: str) -> bool:
        return name in self.kfuncs

    def to_json(self) -> dict[str, object]:
        return {
            "format": FACTS_FORMAT,
            "btf_hash": self.btf_hash,
            "kfuncs": {
                n: [p.returns, [list(a) for a in p.params], list(p.shapes)]
                for n, p in self.kfuncs.items()
            },
            "ops": {n: list(m) for n, m in self.ops.items()},
            "enums": self.enums,
            "ops_flags": self.ops_flags,
            "tagged": self.tagged,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> KernelFacts:
        if data.get("format") != FACTS_FORMAT:
            raise ValueError(f"kernel facts of format {data.get('format')!r}")
        kfuncs = {
            str(n): Prototype(
                str(r), tuple((str(a), str(b)) for a, b in ps), tuple(str(x) for x in shapes)
            )
            for n, (r, ps, shapes) in dict(data["kfuncs"]).items()  # type: ignore[call-overload]
        }
        return cls(
            btf_hash=str(data["btf_hash"]),
            kfuncs=kfuncs,
            ops={str(n): tuple(m) for n, m in dict(data["ops"]).items()},  # type: ignore[call-overload]
            enums={str(k): int(v) for k, v in dict(data["enums"]).items()},  # type: ignore[call-overload]
            ops_flags={str(k): int(v) for k, v in dict(data["ops_flags"]).items()},  # type: ignore[call-overload]
            tagged=bool(data["tagged"]),
        )


def facts_of(btf: Btf, btf_hash: str = "") -> KernelFacts:
    """The sched_ext facts of parsed BTF. Kfuncs are the FUNCs a `bpf_kfunc` decl tag marks
    (pahole >= 1.26 writes them) and, in BTF without those tags (6.12's kit), the FUNCs with a
    sched_ext kfunc name (`scx_bpf_*`, `bpf_iter_scx_*`)."""
    tagged_ids = {
        t.size_or_type
        for t in btf.types
        if t is not None and t.kind == DECL_TAG and t.name == "bpf_kfunc" and t.component == -1
    }
    kfuncs: dict[str, Prototype] = {}
    ops: dict[str, tuple[str, ...]] = {}
    enums: dict[str, int] = {}
    ops_flags: dict[str, int] = {}
    for type_id, t in enumerate(btf.types):
        if t is None:
            continue
        if t.kind == FUNC and (type_id in tagged_ids or t.name.startswith(SCX_PREFIXES)):
            proto = btf.get(t.size_or_type)
            if proto is not None and proto.kind == FUNC_PROTO:
                kfuncs[t.name] = Prototype(
                    type_text(btf, proto.size_or_type),
                    tuple((n, type_text(btf, p)) for n, p in proto.params),
                    tuple(
                        type_shape(btf, p)
                        for p in (proto.size_or_type, *(p for _, p in proto.params))
                    ),
                )
        elif t.kind == STRUCT and t.name.startswith(OPS_STRUCT_PREFIX) and t.name not in ops:
            ops[t.name] = tuple(m[0] for m in t.members)
        elif t.kind in (ENUM, ENUM64):
            for name, value in t.values:
                if name.startswith("SCX_"):
                    enums.setdefault(name, value)
            if t.name == "scx_ops_flags":
                ops_flags = dict(t.values)
    return KernelFacts(btf_hash, kfuncs, ops, enums, ops_flags, bool(tagged_ids))


def implicit_argument_problems(facts: KernelFacts) -> list[str]:
    """Kfuncs with an implicit argument (`foo` beside `foo_impl`, KF_IMPLICIT_ARGS) whose BPF
    prototype still has as many parameters as the kernel's `foo_impl`: resolve_btfids did not
    shorten it, because pahole < 1.26 wrote no `bpf_kfunc` decl tags."""
    bad = []
    for name, impl in facts.kfuncs.items():
        if not name.endswith(IMPLICIT_SUFFIX):
            continue
        short = facts.kfuncs.get(name[: -len(IMPLICIT_SUFFIX)])
        if short is not None and len(short.params) >= len(impl.params):
            bad.append(name[: -len(IMPLICIT_SUFFIX)])
    return sorted(bad)


def broken_kit_problem(path: Path, facts: KernelFacts) -> EnvironmentProblem | None:
    bad = implicit_argument_problems(facts)
    if not bad:
        return None
    first = bad[0]
    long_form = facts.kfuncs[first].text(first)
    return EnvironmentProblem(
        f"the BTF {path} keeps the long prototype of {len(bad)} kfunc(s) with an implicit "
        f"argument ({long_form}, beside {first}{IMPLICIT_SUFFIX}): every scheduler that calls "
        'them fails to load there with "func_proto ... incompatible with vmlinux"; the kit is '
        "broken, not the program",
        "rebuild the kernel with pahole >= 1.26 (Debian 12 has 1.24; build pahole from source): "
        "it writes the bpf_kfunc decl tags resolve_btfids needs to shorten those prototypes",
    )


def kernel_facts(path: Path, cache: Path | None = None) -> KernelFacts:
    """The sched_ext facts of a raw BTF file, parsed once per file content: with `cache` (a
    folder), kept there as `btf/HASH.json`. Raises EnvironmentProblem for a file that is not
    BTF, has no sched_ext, or comes from a broken kit (see broken_kit_problem)."""
    try:
        btf_hash = file_sha256(path)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot read the BTF file {path}: {exc.strerror or exc}",
            "point SCHEDC_BTF (or the kit in `kernels`) at a raw vmlinux BTF file",
        ) from exc
    stored = cache / "btf" / f"{btf_hash[:32]}.json" if cache is not None else None
    facts = _cached(stored, btf_hash)
    if facts is None:
        try:
            facts = facts_of(read_btf(path.read_bytes()), btf_hash)
        except BtfError as exc:
            raise EnvironmentProblem(
                f"{path} is not a raw BTF file: {exc}",
                "use the kit's vmlinux.btf (or `bpftool btf dump file /sys/kernel/btf/vmlinux "
                "format raw` is not it: copy /sys/kernel/btf/vmlinux itself)",
            ) from exc
        if stored is not None:
            _store(stored, facts)
    if "sched_ext_ops" not in facts.ops:
        raise EnvironmentProblem(
            f"the BTF {path} has no 'struct sched_ext_ops': that kernel lacks sched_ext",
            "use the BTF of a kernel built with CONFIG_SCHED_CLASS_EXT=y",
        )
    problem = broken_kit_problem(path, facts)
    if problem is not None:
        raise problem
    return facts


def _cached(stored: Path | None, btf_hash: str) -> KernelFacts | None:
    if stored is None or not stored.is_file():
        return None
    try:
        facts = KernelFacts.from_json(json.loads(stored.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an old or damaged cache file: parse again
    return facts if facts.btf_hash == btf_hash else None


def _store(stored: Path, facts: KernelFacts) -> None:
    stored.parent.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_suffix(f".{hashlib.sha256(str(stored).encode()).hexdigest()[:8]}.tmp")
    tmp.write_text(json.dumps(facts.to_json()), encoding="utf-8")
    tmp.replace(stored)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m schedc.verifier.btf FILE...`: the checks `kernel_facts` makes of a kit's BTF
    (raw BTF, sched_ext present, not broken by an old pahole), for scripts that build kits
    (scripts/build-sandbox-kernel.sh). Exit 0 when every file passes, 1 with the reason."""
    parser = argparse.ArgumentParser(
        prog="python3 -m schedc.verifier.btf",
        description="Check that raw vmlinux BTF files are usable sched_ext kit BTF.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="VMLINUX_BTF")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            facts = kernel_facts(path)
        except EnvironmentProblem as problem:
            print(f"{path}: {problem}", file=sys.stderr)
            status = 1
            continue
        ops = ", ".join(sorted(facts.ops))
        tags = "with" if facts.tagged else "without"
        print(f"ok {path}: {len(facts.kfuncs)} kfuncs ({tags} bpf_kfunc tags), ops {ops}")
    return status


if __name__ == "__main__":
    sys.exit(main())
