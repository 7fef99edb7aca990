"""Loads sched_ext objects through libbpf (ctypes) inside the sandbox guest, keeping the verifier
log small.

`bpftool -d prog loadall` makes the kernel log every instruction and every state (log level
1|2|4), hundreds of MB for a complex but valid program, and writing that log is most of the
load time. This loader asks the kernel only for its statistics (level 4) and, when an object is
rejected, loads it a second time with the instruction trace (level 1|4) for the rejected program
only, to get the kernel's message and the `; <source> @ file:line` lines before it.

It runs in the guest, which sees the host's root file system, as

    python3 -m schedc.verifier.guest_loader --libbpf LIBBPF_SO [--kconfig FILE] --out OUTDIR \
        OBJ0 OBJ1 ...

and writes for object N, in order, OUTDIR/N.json and then OUTDIR/N.rc (0 when it loaded, else
1), each renamed into place whole. N.json holds

    {"object": path, "ok": bool, "error": str | null, "log": str, "seconds": float,
     "stage": "open" | "prepare" | "verifier" | null,
     "programs": [{"name", "loaded", "insns_processed", "states", "peak_states",
                   "verification_time_us"}]}

`stage` says where a load that failed stopped (null when it loaded): "open" (libbpf could not
parse the object), "prepare" (libbpf failed before any program reached the kernel's verifier:
externs, kconfig, maps, BTF, attach targets) or "verifier" (the kernel rejected a program).
`--kconfig` is the kernel's .config, handed to libbpf for `__kconfig` externs (the guest's /boot
is the host's, and the kits' kernels have no /proc/config.gz).

`programs` are those the kernel verified, in load order: all of them when the object loaded; the
ones accepted before the rejected one, and the rejected one (loaded false), when it did not.
`log` is the rejected program's verifier log followed by libbpf's own warnings.

Nothing but the standard library is imported, so that the guest's Python starts fast.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MIN_LIBBPF = (1, 2)
# Log levels of the kernel verifier (BPF_LOG_LEVEL1, BPF_LOG_STATS).
LOG_TRACE = 1
LOG_STATS = 4
# The statistics of one program are a few hundred bytes. If the kernel's log outgrows the
# buffer, the load fails with ENOSPC, so there is plenty of room.
STATS_BUF = 1 << 20
# The instruction trace of a rejected program, up to the rejection. The kernel keeps the end of
# a log that does not fit (and then fails with ENOSPC), and the end is the part that matters.
TRACE_BUF = 16 << 20
# libbpf_print_level: LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG.
LIBBPF_INFO = 1

# --- parsing the kernel's log and libbpf's messages (no libbpf needed) -------------------------

_PROCESSED = re.compile(r"^processed (\d+) insns \(limit \d+\).*?\btotal_states (\d+)", re.M)
_VTIME = re.compile(r"^verification time (\d+) usec", re.M)
_PEAK = re.compile(r"^processed \d+ insns .*?\bpeak_states (\d+)", re.M)
# The closing stats lines; 7.x adds "stack depth N max M" and "insns processed N".
_STATS_LINE = re.compile(
    r"^(verification time \d+|stack depth [\d+]+(?: max \d+)?$|processed \d+ insns|"
    r"insns processed \d+$)"
)
_PROG_FAILED = re.compile(r"prog '([^']+)': BPF program load failed")
# libbpf lines that are a generic summary rather than the cause.
# ("failed to prepare load attributes" follows the cause, e.g. a missing attach target.)
_LIBBPF_NOISE = re.compile(
    r"failed to load(?: object|: -?\d+)|skipping optional step|failed to prepare load attributes"
)
# ("not resolved": a strong extern; "no BTF-based attach target": fentry without a FUNC.)
_LIBBPF_ERROR = re.compile(
    r"fail|error|invalid|not found|not resolved|no BTF-based attach target|unsupported|can't|"
    r"cannot|unknown",
    re.I,
)


@dataclass(frozen=True)
class Stats:
    insns_processed: int | None
    states: int | None
    verification_time_us: int | None
    peak_states: int | None = None


def parse_stats(log: str) -> Stats:
    """The closing statistics of one program's verifier log (any log level that includes 4)."""
    processed = _PROCESSED.search(log)
    vtime = _VTIME.search(log)
    return Stats(
        insns_processed=int(processed.group(1)) if processed else None,
        states=int(processed.group(2)) if processed else None,
        verification_time_us=int(vtime.group(1)) if vtime else None,
        peak_states=int(peak.group(1)) if (peak := _PEAK.search(log)) else None,
    )


def verifier_message(log: str) -> str | None:
    """The kernel's complaint: the last line of a program's log that is not a stats line."""
    meaningful = [ln.strip() for ln in log.splitlines()]
    meaningful = [ln for ln in meaningful if ln and not _STATS_LINE.match(ln)]
    return meaningful[-1] if meaningful else None


def loader_message(messages: Sequence[str]) -> str | None:
    """libbpf's last complaint, without its "libbpf: " prefix (for a load that failed before,
    or without, a verifier log)."""
    lines = [ln for m in messages for ln in m.splitlines()]
    complaints = [
        ln.removeprefix("libbpf: ").strip()
        for ln in lines
        if _LIBBPF_ERROR.search(ln) and not _LIBBPF_NOISE.search(ln)
    ]
    if complaints:
        return complaints[-1]
    rest = [ln.removeprefix("libbpf: ").strip() for ln in lines if ln.strip()]
    return rest[-1] if rest else None


def failed_program(messages: Sequence[str]) -> str | None:
    """The program that libbpf says the kernel rejected ("prog 'x': BPF program load failed")."""
    for message in reversed(messages):
        match = _PROG_FAILED.search(message)
        if match:
            return match.group(1)
    return None


# --- libbpf through ctypes ----------------------------------------------------------------------

_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
# On x86-64 a va_list argument is a pointer to this 24-byte record; copying it is va_copy.
_VA_LIST_SIZE = 24


class OpenOptions(ctypes.Structure):
    """struct bpf_object_open_opts up to `kconfig` (libbpf.h); libbpf takes a smaller `sz` from
    an older caller, and the fields after it are then zero."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_attach_prog_fd", ctypes.c_uint32),  # removed from libbpf, its place kept
        ("kconfig", ctypes.c_char_p),
    ]


class LibbpfProblem(Exception):
    """libbpf cannot be used at all (missing, or too old)."""


@dataclass
class ProgramLoad:
    name: str
    autoload: bool
    fd: int
    log: str


@dataclass
class Attempt:
    err: int  # bpf_object__load's result: 0, or a negative errno
    programs: list[ProgramLoad]
    messages: list[str] = field(default_factory=list)
    opened: bool = True


class Libbpf:
    def __init__(self, path: str, kconfig: bytes | None = None) -> None:
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError as exc:
            raise LibbpfProblem(f"cannot load libbpf '{path}': {exc}") from exc
        for name, res, args in (
            ("libbpf_major_version", ctypes.c_uint32, []),
            ("libbpf_minor_version", ctypes.c_uint32, []),
            ("libbpf_set_print", ctypes.c_void_p, [_PRINT_FN]),
            ("libbpf_strerror", ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]),
            ("bpf_object__open_file", ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]),
            ("bpf_object__load", ctypes.c_int, [ctypes.c_void_p]),
            ("bpf_object__close", None, [ctypes.c_void_p]),
            ("bpf_object__next_program", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
            ("bpf_program__name", ctypes.c_char_p, [ctypes.c_void_p]),
            ("bpf_program__autoload", ctypes.c_bool, [ctypes.c_void_p]),
            ("bpf_program__fd", ctypes.c_int, [ctypes.c_void_p]),
            ("bpf_program__set_log_level", ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32]),
            (
                "bpf_program__set_log_buf",
                ctypes.c_int,
                [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t],
            ),
        ):
            try:
                func = getattr(lib, name)
            except AttributeError as exc:
                raise LibbpfProblem(f"libbpf '{path}' has no {name}: too old") from exc
            func.restype, func.argtypes = res, args
        self.lib = lib
        self.version = (lib.libbpf_major_version(), lib.libbpf_minor_version())
        if self.version < MIN_LIBBPF:
            have = ".".join(map(str, self.version))
            raise LibbpfProblem(f"libbpf '{path}' is {have}; need >= 1.2")
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        self._vsnprintf = libc.vsnprintf
        self._vsnprintf.restype = ctypes.c_int
        self._vsnprintf.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_void_p,
        ]
        self._copy_va_list = platform.machine() in ("x86_64", "AMD64")
        self.messages: list[str] = []
        self.options = open_options(kconfig)  # kept referenced: libbpf copies the text at open
        self._print = _PRINT_FN(self._on_print)  # kept referenced while libbpf may call it
        lib.libbpf_set_print(self._print)

    def _on_print(self, level: int, fmt: bytes | None, ap: int | None) -> int:
        if level > LIBBPF_INFO or fmt is None:
            return 0
        try:
            # One call consumes the va_list: keep a copy for a second try with a bigger buffer.
            saved = ctypes.create_string_buffer(_VA_LIST_SIZE)
            if self._copy_va_list and ap:
                ctypes.memmove(saved, ap, _VA_LIST_SIZE)
            buf = ctypes.create_string_buffer(4096)
            n = self._vsnprintf(buf, len(buf), fmt, ap)
            if n >= len(buf) and self._copy_va_list and ap:
                buf = ctypes.create_string_buffer(n + 1)
                n = self._vsnprintf(buf, len(buf), fmt, ctypes.addressof(saved))
            self.messages.append(buf.value.decode("utf-8", "replace"))
        except Exception as exc:  # never let an exception unwind through libbpf
            self.messages.append(f"(libbpf message lost: {exc})")
        return 0

    def strerror(self, err: int) -> str:
        buf = ctypes.create_string_buffer(256)
        self.lib.libbpf_strerror(err, buf, len(buf))
        return buf.value.decode("utf-8", "replace") or f"error {err}"

    def attempt(self, path: str, trace: str | None = None) -> Attempt:
        """Opens and loads the object once and closes it again. Every program logs its stats;
        the program named by `trace` also logs its instruction trace."""
        self.messages = []
        opts = ctypes.byref(self.options) if self.options is not None else None
        obj = self.lib.bpf_object__open_file(os.fsencode(path), opts)
        if not obj:
            return Attempt(-(ctypes.get_errno() or 1), [], self.messages, opened=False)
        buffers: list[ctypes.Array[ctypes.c_char]] = []  # alive until the object is closed
        handles: list[tuple[int, str]] = []
        try:
            prog = self.lib.bpf_object__next_program(obj, None)
            while prog:
                name = (self.lib.bpf_program__name(prog) or b"?").decode("utf-8", "replace")
                level, size = (LOG_STATS, STATS_BUF)
                if name == trace:
                    level, size = (LOG_TRACE | LOG_STATS, TRACE_BUF)
                buf = ctypes.create_string_buffer(size)
                buffers.append(buf)
                self.lib.bpf_program__set_log_level(prog, level)
                self.lib.bpf_program__set_log_buf(prog, buf, size)
                handles.append((prog, name))
                prog = self.lib.bpf_object__next_program(obj, prog)
            err = self.lib.bpf_object__load(obj)
            programs = [
                ProgramLoad(
                    name=name,
                    autoload=bool(self.lib.bpf_program__autoload(prog)),
                    fd=self.lib.bpf_program__fd(prog),
                    log=buf.value.decode("utf-8", "replace"),
                )
                for (prog, name), buf in zip(handles, buffers, strict=True)
            ]
            return Attempt(err, programs, self.messages)
        finally:
            self.lib.bpf_object__close(obj)


def open_options(kconfig: bytes | None) -> OpenOptions | None:
    """bpf_object_open_opts with the kernel's config as `kconfig`, or None (libbpf's defaults)."""
    if kconfig is None:
        return None
    opts = OpenOptions()
    opts.sz = ctypes.sizeof(OpenOptions)
    opts.kconfig = kconfig
    return opts


# --- one object ---------------------------------------------------------------------------------


def _program_json(name: str, loaded: bool, log: str) -> dict[str, object]:
    stats = parse_stats(log)
    return {
        "name": name,
        "loaded": loaded,
        "insns_processed": stats.insns_processed,
        "states": stats.states,
        "verification_time_us": stats.verification_time_us,
        "peak_states": stats.peak_states,
    }


def _rejected(first: Attempt) -> ProgramLoad | None:
    """The program whose load failed. libbpf unloads every program when the object fails, so
    fds do not tell: libbpf names it, else it is the last one with a complaint in its log."""
    named = failed_program(first.messages)
    for prog in first.programs:
        if prog.name == named:
            return prog
    complaining = [p for p in first.programs if verifier_message(p.log)]
    return complaining[-1] if complaining else None


def load_stage(first: Attempt, rejected: ProgramLoad | None) -> str:
    """Where a failed load stopped: "open", "prepare" (no program reached the kernel's
    verifier: libbpf failed on externs, kconfig, maps, BTF or an attach target first) or
    "verifier"."""
    if not first.opened:
        return "open"
    if rejected is not None or failed_program(first.messages):
        return "verifier"
    return "prepare"


def load_object(libbpf: Libbpf, path: str) -> dict[str, object]:
    """Loads one object (and unloads it); the JSON record described in the module docstring."""
    first = libbpf.attempt(path)
    if first.err == 0:
        loaded = [p for p in first.programs if p.autoload and p.fd >= 0]
        return {
            "object": path,
            "ok": True,
            "programs": [_program_json(p.name, True, p.log) for p in loaded],
            "error": None,
            "log": "".join(first.messages),
            "stage": None,
        }
    rejected = _rejected(first)
    stage = load_stage(first, rejected)
    log = ""
    if rejected is not None:
        # Again, with the instruction trace of the rejected program.
        second = libbpf.attempt(path, trace=rejected.name)
        again = next((p for p in second.programs if p.name == rejected.name and p.log), None)
        if again is not None:
            rejected = again
        log = rejected.log
    programs = []
    for prog in first.programs:
        if rejected is not None and prog.name == rejected.name:
            programs.append(_program_json(prog.name, False, rejected.log))
            break
        if prog.log:  # verified before the rejected one
            programs.append(_program_json(prog.name, True, prog.log))
    error = (
        (verifier_message(rejected.log) if rejected is not None else None)
        or loader_message(first.messages)
        or f"libbpf could not {'load' if first.opened else 'open'} the object: "
        f"{libbpf.strerror(-first.err)}"
    )
    if log and not log.endswith("\n"):
        log += "\n"
    return {
        "object": path,
        "ok": False,
        "programs": programs,
        "error": error,
        "log": log + "".join(first.messages),
        "stage": stage,
    }


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def run(
    libbpf_path: str, outdir: Path, objects: Sequence[str], kconfig: Path | None = None
) -> int:
    """Loads every object in turn and writes its results; 0 when all of them loaded. With
    `kconfig`, libbpf takes the kernel's config from that file."""
    libbpf: Libbpf | None = None
    problem: str | None = None
    try:
        text = kconfig.read_bytes() if kconfig is not None else None
        libbpf = Libbpf(libbpf_path, text)
    except LibbpfProblem as exc:
        problem = str(exc)
    except OSError as exc:
        problem = f"cannot read the kernel config '{kconfig}': {exc.strerror or exc}"
    all_ok = True
    for n, path in enumerate(objects):
        started = time.monotonic()
        record: dict[str, object]
        if libbpf is None:
            record = {
                "object": path,
                "ok": False,
                "programs": [],
                "error": problem,
                "log": "",
                "stage": "open",
            }
        else:
            try:
                record = load_object(libbpf, path)
            except Exception as exc:  # one bad object must not stop the others
                record = {
                    "object": path,
                    "ok": False,
                    "programs": [],
                    "error": f"the guest loader failed: {type(exc).__name__}: {exc}",
                    "log": "".join(libbpf.messages),
                }
        record["seconds"] = round(time.monotonic() - started, 3)
        all_ok = all_ok and bool(record["ok"])
        _write(outdir / f"{n}.json", json.dumps(record, indent=1) + "\n")
        _write(outdir / f"{n}.rc", "0\n" if record["ok"] else "1\n")
    return 0 if all_ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m schedc.verifier.guest_loader",
        description="Load BPF objects through libbpf and record the kernel verifier's verdict.",
    )
    parser.add_argument("--libbpf", required=True, help="libbpf shared library (>= 1.2)")
    parser.add_argument("--out", required=True, type=Path, help="folder for N.json and N.rc")
    parser.add_argument(
        "--kconfig", type=Path, help="the kernel's .config, for objects with __kconfig externs"
    )
    parser.add_argument("objects", nargs="+", metavar="OBJ")
    args = parser.parse_args(argv)
    return run(args.libbpf, args.out, args.objects, args.kconfig)


if __name__ == "__main__":
    sys.exit(main())
