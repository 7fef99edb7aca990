"""clang and bpftool: vmlinux.h from BTF (cached by hash), a precompiled runtime header, and
the `clang -target bpf` step with its messages turned into diagnostics."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from schedc.compiler import cage
from schedc.compiler.cage import Cage, find_cage
from schedc.diagnostics import Diagnostic, Severity
from schedc.paths import within
from schedc.settings import (
    DEFAULT_KERNEL_DIR,
    EnvironmentProblem,
    Settings,
    cache_root,
    find_bpftool,
    find_btf,
    find_clang,
    find_libclang,
    is_embedded_btf,
)

RUNTIME_HEADER = "schedc_runtime.bpf.h"
_PCH_TIMEOUT = 300.0  # vmlinux.h, once per toolchain; our own header, not a policy
_CLANG_MSG = re.compile(
    r"^(?P<file>[^\n:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|note|fatal error): "
    r"(?P<msg>.*?)(?: \[(?P<flag>-W[^\]]+)\])?$"
)


def runtime_dir() -> Path:
    """The folder holding the runtime header (an include directory for policies)."""
    return Path(str(resources.files("schedc.codegen_templates")))


def target_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "x86", "aarch64": "arm64", "arm64": "arm64", "s390x": "s390"}.get(
        machine, machine
    )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks (BTF files are several MiB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write through a temporary file in the same folder: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Toolchain:
    clang: str
    vmlinux_dir: Path
    btf: Path
    btf_hash: str
    libbpf_include: Path | None
    cache: Path
    cage: Cage  # how policy C is run: in bubblewrap, or (sandbox = "off") as is
    libclang: str | None = None  # the libclang of clang's own LLVM, for the checks' parser

    @property
    def base_flags(self) -> list[str]:
        flags = [
            "-target",
            "bpf",
            "-O2",
            "-g",
            "-mcpu=v3",
            "-mlittle-endian",
            f"-D__TARGET_ARCH_{target_arch()}",
            "-Wall",
            "-Wno-compare-distinct-pointer-types",
            "-Wno-unused-function",
            "-fno-color-diagnostics",
            "-fno-caret-diagnostics",
            "-fno-crash-diagnostics",  # no preprocessed reproducers of the policy in /tmp
        ]
        return flags

    def include_flags(self, extra: list[Path] | None = None) -> list[str]:
        dirs = [runtime_dir(), self.vmlinux_dir]
        if self.libbpf_include is not None:
            dirs.append(self.libbpf_include)
        dirs.extend(extra or [])
        flags: list[str] = []
        for d in dirs:
            flags += ["-I", str(d)]
        return flags + ["-idirafter", "/usr/include"]

    def include_dirs(self, extra: Iterable[Path] = ()) -> list[Path]:
        """The folders include_flags() names, in order."""
        dirs = [runtime_dir(), self.vmlinux_dir]
        if self.libbpf_include is not None:
            dirs.append(self.libbpf_include)
        return [*dirs, *extra, Path("/usr/include")]

    def visible(
        self, source: Path, include_dirs: Iterable[Path] = (), inputs: Iterable[Path] = ()
    ) -> list[Path | tuple[Path, Path]]:
        """Everything a caged clang run on `source` may read: the toolchain, the include
        folders, `source` itself, the headers beside it and the other `inputs` (read-only)."""
        paths: list[Path | tuple[Path, Path]] = [*cage.clang_paths(self.clang)]
        for folder in self.include_dirs(include_dirs):
            named = Path(os.path.abspath(folder))
            paths.append((Path(os.path.realpath(named)), named))
        for path in [source, *inputs, *beside(source)]:
            named = Path(os.path.abspath(path))
            paths.append((Path(os.path.realpath(named)), named))
        return paths


def _vmlinux_header(settings: Settings, btf: Path, btf_hash: str, cache: Path) -> Path:
    if is_embedded_btf(btf):
        return DEFAULT_KERNEL_DIR  # shipped with its vmlinux.h: no bpftool needed
    folder = cache / "vmlinux" / btf_hash[:16]
    header = folder / "vmlinux.h"
    if header.is_file():
        return folder
    bpftool = find_bpftool(settings)
    proc = subprocess.run(
        [bpftool, "btf", "dump", "file", str(btf), "format", "c"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0 or b"struct sched_ext_ops" not in proc.stdout:
        raise EnvironmentProblem(
            f"bpftool could not turn {btf} into vmlinux.h: "
            + (proc.stderr.decode(errors="replace").strip()[-400:] or "no output"),
            "check that SCHEDC_BTF names a raw vmlinux BTF file and SCHEDC_BPFTOOL a working bpftool",
        )
    write_atomic(header, proc.stdout)
    return folder


def load_toolchain(settings: Settings) -> Toolchain:
    clang = find_clang(settings)
    btf = find_btf(settings)
    cache = cache_root(settings)
    btf_hash = file_sha256(btf)
    vmlinux_dir = _vmlinux_header(settings, btf, btf_hash, cache)
    libbpf = Path(settings.libbpf_include) if settings.libbpf_include else None
    if libbpf is not None and not (libbpf / "bpf" / "bpf_helpers.h").is_file():
        raise EnvironmentProblem(
            f"SCHEDC_LIBBPF_INCLUDE={libbpf} has no bpf/bpf_helpers.h",
            "point it at the include folder of libbpf >= 1.2 (the one that contains bpf/)",
        )
    return Toolchain(
        clang, vmlinux_dir, btf, btf_hash, libbpf, cache, find_cage(settings, clang),
        find_libclang(clang),
    )


def beside(source: Path) -> list[Path]:
    """The headers next to a policy, which it may include by name: `*.h` files of its folder
    that are (or link to) files in that same folder, and the `*.bpf.c` sources there (scx_lavd's
    main.bpf.c includes util.bpf.c). Nothing else of the folder is visible."""
    folder = Path(os.path.abspath(source)).parent
    real_folder = os.path.realpath(folder)
    try:
        names = sorted(p for p in folder.iterdir() if p.name.endswith((".h", ".bpf.c")))
    except OSError:
        return []
    return [
        p
        for p in names
        if os.path.dirname(os.path.realpath(p)) == real_folder and os.path.isfile(p)
    ]


def _cwd() -> Path | None:
    try:
        return Path(os.getcwd())
    except OSError:
        return None


def runtime_pch(tc: Toolchain) -> Path | None:
    """The runtime header with vmlinux.h, precompiled once per clang, BTF, header and include
    folders. Parsing vmlinux.h is most of a compile; with the PCH a policy compiles in a
    fraction. A PCH records the absolute paths of the headers it read, so the header's path is
    part of the key: two checkouts of schedc share a cache without using each other's PCH.
    clang also refuses a PCH whose header's modification time changed (a `git checkout` or a
    reinstall rewrites the same text), so that time is part of the key too."""
    header = runtime_dir() / RUNTIME_HEADER
    stamp = str(header.stat().st_mtime_ns)
    parts = [
        tc.clang,
        tc.btf_hash,
        str(header.resolve()),
        file_sha256(header),
        stamp,
        *tc.base_flags,
    ]
    key = hashlib.sha256("\0".join([*parts, *tc.include_flags()]).encode()).hexdigest()[:16]
    pch = tc.cache / "pch" / key / "runtime.pch"
    if pch.is_file():
        return pch
    pch.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=pch.parent, prefix=".runtime.pch.", suffix=".tmp"))
    try:
        tmp = work / "runtime.pch"
        try:
            proc = cage.run(
                tc.cage,
                [
                    tc.clang,
                    *tc.base_flags,
                    *tc.include_flags(),
                    "-x",
                    "c-header",
                    str(header),
                    "-o",
                    str(tmp),
                ],
                ro=tc.visible(header),
                rw=[work],
                timeout=_PCH_TIMEOUT,
            )
        except OSError:
            return None
        if proc.returncode != 0 or proc.timed_out or not tmp.is_file():
            return None  # compile without it; the error, if real, shows in the compile itself
        os.replace(tmp, pch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return pch


def parse_clang_output(text: str) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    for line in text.splitlines():
        m = _CLANG_MSG.match(line)
        if not m:
            continue
        sev = m.group("sev")
        severity = (
            Severity.ERROR
            if "error" in sev
            else (Severity.WARNING if sev == "warning" else Severity.NOTE)
        )
        code = (
            "C001"
            if severity is Severity.ERROR
            else ("C002" if severity is Severity.WARNING else "C003")
        )
        lno, col = int(m.group("line")), int(m.group("col"))
        msg = m.group("msg")
        if m.group("flag"):
            msg += f" [{m.group('flag')}]"
        diags.append(Diagnostic(severity, code, msg, m.group("file"), lno, col, lno, col))
    return diags


def compile_c(
    tc: Toolchain,
    c_path: Path,
    out: Path,
    *,
    include_dirs: list[Path] | None = None,
    use_pch: bool = True,
    extra_flags: list[str] | None = None,
    inputs: Iterable[Path] = (),
) -> list[Diagnostic]:
    """clang -target bpf in the sandbox; the object is written atomically and only on success.
    `inputs` are other files clang may read (the DSL source the #line directives name)."""
    out = Path(os.path.abspath(out))  # the sandbox binds folders by their absolute path
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        return _compile_into(tc, c_path, out, work, include_dirs, use_pch, extra_flags, inputs)
    finally:  # every path, Ctrl-C and SystemExit included: no half object is left
        shutil.rmtree(work, ignore_errors=True)


def _compile_into(
    tc: Toolchain,
    c_path: Path,
    out: Path,
    work: Path,
    include_dirs: list[Path] | None,
    use_pch: bool,
    extra_flags: list[str] | None,
    inputs: Iterable[Path],
) -> list[Diagnostic]:
    tmp = work / out.name
    cmd = [tc.clang, *tc.base_flags, *tc.include_flags(include_dirs)]
    visible = tc.visible(c_path, include_dirs or [], inputs)
    if use_pch:
        pch = runtime_pch(tc)
        if pch is not None:
            cmd += ["-include-pch", str(pch)]
            visible.append(pch)
    # "-x c": the source is C whatever its name (an --emit-c file named "policy.txt" or "c"
    # would otherwise be taken for a linker input and never compiled)
    cmd += [*(extra_flags or []), "-x", "c", "-c", str(c_path), "-o", str(tmp)]
    proc = cage.run(tc.cage, cmd, ro=visible, rw=[work], chdir=_cwd())
    if proc.timed_out:
        raise EnvironmentProblem(
            f"clang did not finish in {cage.COMPILE_TIMEOUT:g} s",
            "check the machine's load; a policy that takes this long to build is not one the "
            "kernel would load quickly either",
        )
    stderr = proc.stderr.decode("utf-8", errors="replace")
    diags = confine(parse_clang_output(stderr), visible, c_path)
    folders = [Path(os.path.abspath(c_path)).parent, *tc.include_dirs(include_dirs or [])]
    diags = explain_hidden(diags, folders)
    if proc.returncode != 0 or not tmp.is_file():
        if not any(d.severity is Severity.ERROR for d in diags):
            why = f"killed by signal {proc.signal}" if proc.signal else f"exit {proc.returncode}"
            diags.append(
                Diagnostic(
                    Severity.ERROR,
                    "C001",
                    "clang failed: " + (stderr.strip()[-500:] or why),
                    str(c_path),
                )
            )
        return diags
    os.replace(tmp, out)
    return diags


_NOT_FOUND = re.compile(r"'([^']+)' file not found")
HIDDEN_HINT = (
    "clang runs in a sandbox that shows it only the *.h and *.bpf.c files beside the policy "
    "and the -I folders (not links out of them): name the file *.h or pass its folder with "
    "-I DIR"
)


def hidden_header(message: str, folders: Iterable[Path]) -> Path | None:
    """For clang's "'NAME' file not found": the host file NAME would have been, if it exists
    in one of `folders` (the sandbox did not show it). Existence only: nothing is read."""
    m = _NOT_FOUND.search(message)
    if m is None or os.path.isabs(m.group(1)):
        return None
    for folder in folders:
        candidate = Path(folder) / m.group(1)
        if os.path.lexists(candidate):
            return candidate
    return None


SYSTEM_INCLUDE = Path("/usr/include")
STUBS_32_HINT = (
    "glibc's gnu/stubs.h picks gnu/stubs-32.h for the BPF target (it is not x86_64): install "
    "the 32-bit stubs (Debian: apt-get install libc6-dev-i386), as scx's and libbpf's builds "
    "need too"
)


def multiarch_folder(message: str, include: Path = SYSTEM_INCLUDE) -> Path | None:
    """For clang's "'NAME' file not found": the host's multiarch include folder that has NAME
    (/usr/include/x86_64-linux-gnu), which `-target bpf` does not search. Existence only."""
    m = _NOT_FOUND.search(message)
    if m is None or os.path.isabs(m.group(1)):
        return None
    for folder in sorted(include.glob("*-linux-*")):
        if folder.is_dir() and os.path.lexists(folder / m.group(1)):
            return folder
    return None


def _hint_for_missing(message: str, folders: list[Path]) -> str | None:
    if hidden_header(message, folders):
        return HIDDEN_HINT
    if "'gnu/stubs-32.h' file not found" in message:
        return STUBS_32_HINT
    system = multiarch_folder(message)
    if system is not None and system not in folders:
        return (
            f"this system header is in {system}, the host's multiarch headers, which clang "
            f"does not search for -target bpf: pass -I {system} (scx's build adds it for its "
            "BPF code)"
        )
    return None


def explain_hidden(diags: list[Diagnostic], folders: Iterable[Path]) -> list[Diagnostic]:
    """Hints for headers clang did not find: outside what the sandbox shows, or system
    headers the BPF target does not search."""
    folders = list(folders)
    out = []
    for d in diags:
        hint = (
            _hint_for_missing(d.message, folders) if d.code == "C001" and d.hint is None else None
        )
        out.append(replace(d, hint=hint) if hint is not None else d)
    return out


def confine(
    diags: list[Diagnostic], visible: Iterable[Path | tuple[Path, Path]], source: Path
) -> list[Diagnostic]:
    """Diagnostics placed in a file the sandbox did not show (a `#line` naming a host file)
    move to the source, without line: showing them would read that host file's lines."""
    roots = [str(v[1] if isinstance(v, tuple) else v) for v in visible]
    out = []
    for d in diags:
        if d.file is None or within(d.file, roots, resolve=False):
            out.append(d)
            continue
        where = f"{d.file}:{d.line}" if d.line else d.file
        out.append(
            replace(
                d,
                message=f"{d.message} (at {where})",
                file=str(source),
                line=None,
                column=None,
                end_line=None,
                end_column=None,
            )
        )
    return out


LINK_ERROR = "C004"


def link_objects(
    tc: Toolchain, bpftool: str, units: list[tuple[Path, Path]], out: Path, policy: Path
) -> list[Diagnostic]:
    """`bpftool gen object OUT UNIT...`: the BPF objects of one policy's C files as one object
    (libbpf's static linker resolves their `extern`s); `units` are (object, C source) pairs, and
    messages name the sources. In the sandbox like clang: the objects are built from untrusted
    C. The object is written atomically and only on success."""
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        tmp = work / out.name
        real = Path(os.path.realpath(bpftool))
        ro: list[Path | tuple[Path, Path]] = [real, *cage.library_paths([real])]
        if Path(bpftool).is_absolute() and Path(bpftool) != real:
            ro.append((real, Path(bpftool)))
        objects = [os.path.abspath(obj) for obj, _ in units]
        ro += [Path(obj) for obj in objects]
        cmd = [bpftool, "gen", "object", str(tmp), *objects]
        proc = cage.run(tc.cage, cmd, ro=ro, rw=[work])
        if proc.returncode == 0 and tmp.is_file():
            os.replace(tmp, out)
            return []
        said = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        said = [ln.removeprefix("libbpf: ").strip() for ln in said if ln.strip()]
        why = "; ".join(said[-3:]) if said else f"bpftool exited with status {proc.returncode}"
        for obj, (_, source) in zip(objects, units, strict=True):
            why = why.replace(obj, str(source))
        if proc.timed_out:
            why = f"bpftool did not finish in {cage.COMPILE_TIMEOUT:g} s"
        return [
            Diagnostic(
                Severity.ERROR,
                LINK_ERROR,
                f"linking {len(units)} units into one object failed: {why}",
                str(policy),
                hint="each symbol may be defined in one unit only (mark the others `extern`), "
                "and an `extern` must have the same type where it is defined",
            )
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
