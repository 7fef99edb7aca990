"""The scx enum values a sched_ext object reads from `.rodata`, filled per kernel before it
loads, as scx's own userspace does.

scx's headers from v1.0.7 on, and the kernel's own tools/sched_ext from 6.19 on
(`scx/enums.autogen.bpf.h`), declare for each enum constant they use

    const volatile u64 __SCX_NAME __weak;
    #define SCX_NAME __SCX_NAME

so a program reads the constant from a read-only global instead of compiling in one kernel's
value. Their loader (`SCX_ENUM_INIT` in compat.h) writes each kernel's value of the enum
constant `SCX_NAME`, read from that kernel's vmlinux BTF (0 when the kernel has no such
constant), into the skeleton's `.rodata` before loading. A loader that does not leaves them 0:
`SCX_DSQ_LOCAL` is then DSQ 0 and 7.2's scx_simple is ejected ("DSQ 0 already had
FIFO-enqueued tasks").

schedc does it on the object file itself: every 8-byte symbol `__SCX_<X>` in a `.rodata`
section gets the kernel's `SCX_<X>` (from `verifier/btf.py`'s facts), written at its place in
the file, in a copy of the object for that kernel; libbpf takes a data map's initial value
from its section's bytes, so the guest loader and `bpftool struct_ops register` both see
them. Objects without such symbols are left as they are.

    enum_slots(data) -> list[EnumSlot]               where the values go (ELF sections, .symtab)
    fill_enums(data, values) -> (bytes, EnumFill)    the object with them written

The ELF reading is our own, with `struct`: the header (`e_shoff`, `e_shnum`, `e_shstrndx`),
the section headers, and the symbol table's entries (name, value, size, section).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["PREFIX", "ElfError", "EnumFill", "EnumSlot", "enum_slots", "fill_enums"]

PREFIX = "__SCX_"  # the symbol of enum constant SCX_<X> is __SCX_<X>
SLOT_SIZE = 8  # u64
U64 = (1 << 64) - 1

_ELFCLASS64 = 2
_ENDIAN = {1: "<", 2: ">"}  # EI_DATA: ELFDATA2LSB, ELFDATA2MSB
SHT_PROGBITS, SHT_SYMTAB = 1, 2
STT_OBJECT = 1
SHN_UNDEF, SHN_LORESERVE, SHN_XINDEX = 0, 0xFF00, 0xFFFF


class ElfError(ValueError):
    """The bytes are not a 64-bit ELF object this reader understands."""


@dataclass(frozen=True)
class EnumSlot:
    """One `__SCX_<X>` variable of an object: the enum constant it stands for and where its
    8 bytes are in the file."""

    name: str  # the enum constant, "SCX_DSQ_LOCAL"
    offset: int  # of its bytes in the file
    section: str  # ".rodata"


@dataclass(frozen=True)
class EnumFill:
    """What was written into one object for one kernel."""

    filled: dict[str, int] = field(default_factory=dict)  # SCX_<X> -> the kernel's value
    missing: tuple[str, ...] = ()  # constants that kernel's BTF lacks: written 0, as scx does
    # Not filled at all (the values stayed as compiled), and why: no BTF for this kernel.
    problem: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"filled": self.filled, "missing": list(self.missing), "problem": self.problem}

    def describe(self, shown: int = 4) -> str:
        """In one line: how many were filled (the first `shown` named) and every constant the
        kernel lacks; or why none were."""
        if self.problem is not None:
            return f"scx enum values (__SCX_* in .rodata) left as compiled (0): {self.problem}"
        named = ", ".join(f"{k}={v:#x}" for k, v in list(self.filled.items())[:shown])
        more = len(self.filled) - shown
        text = f"filled {len(self.filled)} scx enum value(s) in .rodata from the kernel's BTF"
        if self.filled:
            text += f" ({named}{f', and {more} more' if more > 0 else ''})"
        if self.missing:
            text += f"; {len(self.missing)} not in this kernel, written 0 as scx's loader does: "
            text += ", ".join(self.missing)
        return text


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    offset: int
    size: int
    link: int
    entsize: int


def _sections(data: bytes) -> tuple[str, list[_Section]]:
    """The byte order ('<' or '>') and the section headers, with their names."""
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if data[4] != _ELFCLASS64:
        raise ElfError("not a 64-bit ELF file (BPF objects are ELF64)")
    order = _ENDIAN.get(data[5])
    if order is None:
        raise ElfError(f"unknown ELF byte order {data[5]}")
    (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
    if shoff == 0:
        raise ElfError("the ELF file has no section headers")
    if shentsize != 64:
        raise ElfError(f"section header size {shentsize}, not 64")
    header = struct.Struct(order + "IIQQQQIIQQ")

    def raw(index: int) -> tuple[int, ...]:
        at = shoff + index * header.size
        if at + header.size > len(data):
            raise ElfError(f"section header {index} is past the end of the file")
        return header.unpack_from(data, at)

    if shnum == 0:  # more than 0xff00 sections: the count is in section 0's sh_size
        shnum = raw(0)[5]
    if shstrndx == SHN_XINDEX:
        shstrndx = raw(0)[6]
    if shnum > len(data) // header.size:
        raise ElfError(f"{shnum} section headers cannot fit in the file")
    rows = [raw(i) for i in range(shnum)]
    if not 0 <= shstrndx < shnum:
        raise ElfError(f"the section name table index {shstrndx} is out of range")
    names = _table(data, rows[shstrndx][4], rows[shstrndx][5], "section name table")
    return order, [_Section(_name(names, r[0]), r[1], r[4], r[5], r[6], r[9]) for r in rows]


def _table(data: bytes, offset: int, size: int, what: str) -> bytes:
    if offset + size > len(data):
        raise ElfError(f"the {what} runs past the end of the file")
    return data[offset : offset + size]


def _name(strings: bytes, offset: int) -> str:
    if offset >= len(strings):
        raise ElfError(f"string offset {offset} is past its string table")
    end = strings.find(b"\0", offset)
    return strings[offset : end if end >= 0 else len(strings)].decode("utf-8", "replace")


def _is_rodata(section: _Section) -> bool:
    return section.type == SHT_PROGBITS and (
        section.name == ".rodata" or section.name.startswith(".rodata.")
    )


def enum_slots(data: bytes) -> list[EnumSlot]:
    """Every 8-byte object symbol `__SCX_<X>` defined in a `.rodata` section, in file order.
    Raises ElfError for bytes that are not a readable ELF64 object."""
    order, sections = _sections(data)
    symbol = struct.Struct(order + "IBBHQQ")
    slots: dict[int, EnumSlot] = {}
    for table in sections:
        if table.type != SHT_SYMTAB:
            continue
        if table.entsize != symbol.size:
            raise ElfError(f"symbol table entries of {table.entsize} bytes, not {symbol.size}")
        if not 0 <= table.link < len(sections):
            raise ElfError("the symbol table's string table index is out of range")
        strtab = sections[table.link]
        strings = _table(data, strtab.offset, strtab.size, "symbol string table")
        entries = _table(data, table.offset, table.size, "symbol table")
        for at in range(0, len(entries) - symbol.size + 1, symbol.size):
            st_name, st_info, _other, shndx, value, size = symbol.unpack_from(entries, at)
            if size != SLOT_SIZE or st_info & 0xF != STT_OBJECT:
                continue
            if shndx in (SHN_UNDEF, SHN_XINDEX) or shndx >= min(SHN_LORESERVE, len(sections)):
                continue
            name = _name(strings, st_name)
            if not name.startswith(PREFIX) or len(name) == len(PREFIX):
                continue
            home = sections[shndx]
            if not _is_rodata(home) or value + SLOT_SIZE > home.size:
                continue
            offset = home.offset + value
            slots.setdefault(offset, EnumSlot(name[2:], offset, home.name))
    return [slots[k] for k in sorted(slots)]


def fill_enums(data: bytes, values: Mapping[str, int]) -> tuple[bytes, EnumFill]:
    """The object with each slot set to the kernel's value of its enum constant (`values`:
    SCX_* name -> value, as `KernelFacts.enums`), as a u64 in the object's byte order; a
    constant `values` lacks is set to 0, as scx's loader does. An object without slots comes
    back as it was (the same bytes) with an empty EnumFill."""
    slots = enum_slots(data)
    if not slots:
        return data, EnumFill()
    order = _ENDIAN[data[5]]  # enum_slots checked it
    out = bytearray(data)
    filled: dict[str, int] = {}
    missing: list[str] = []
    for slot in slots:
        value = values.get(slot.name)
        if value is None:
            missing.append(slot.name)
        else:
            filled[slot.name] = value & U64  # a negative enumerator, as C converts it to u64
        struct.pack_into(order + "Q", out, slot.offset, 0 if value is None else value & U64)
    return bytes(out), EnumFill(filled, tuple(missing))
