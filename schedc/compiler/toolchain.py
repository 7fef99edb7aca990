"""clang and bpftool: vmlinux.h from BTF (cached by hash), a precompiled runtime header, and
the `clang -target bpf` step with its messages turned into diagnostics."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from schedc.diagnostics import Diagnostic, Severity
from schedc.settings import (
    EnvironmentProblem,
    Settings,
    cache_root,
    find_bpftool,
    find_btf,
    find_clang,
)

RUNTIME_HEADER = "schedc_runtime.bpf.h"
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


def _sha256(path: Path) -> str:
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


def _vmlinux_header(settings: Settings, btf: Path, btf_hash: str, cache: Path) -> Path:
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
    btf_hash = _sha256(btf)
    vmlinux_dir = _vmlinux_header(settings, btf, btf_hash, cache)
    libbpf = Path(settings.libbpf_include) if settings.libbpf_include else None
    if libbpf is not None and not (libbpf / "bpf" / "bpf_helpers.h").is_file():
        raise EnvironmentProblem(
            f"SCHEDC_LIBBPF_INCLUDE={libbpf} has no bpf/bpf_helpers.h",
            "point it at the include folder of libbpf >= 1.2 (the one that contains bpf/)",
        )
    return Toolchain(clang, vmlinux_dir, btf, btf_hash, libbpf, cache)


def runtime_pch(tc: Toolchain) -> Path | None:
    """The runtime header with vmlinux.h, precompiled once per (clang, BTF, header) triple.
    Parsing vmlinux.h is most of a compile; with the PCH a policy compiles in a fraction."""
    header = runtime_dir() / RUNTIME_HEADER
    key = hashlib.sha256(
        "\0".join([tc.clang, tc.btf_hash, _sha256(header), " ".join(tc.base_flags)]).encode()
    ).hexdigest()[:16]
    pch = tc.cache / "pch" / key / "runtime.pch"
    if pch.is_file():
        return pch
    pch.parent.mkdir(parents=True, exist_ok=True)
    tmp = pch.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run(
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
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        return None  # compile without it; the error, if real, shows in the compile itself
    os.replace(tmp, pch)
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
    cwd: Path | None = None,
    extra_flags: list[str] | None = None,
) -> list[Diagnostic]:
    """clang -target bpf; the object is written atomically and only on success."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    cmd = [tc.clang, *tc.base_flags, *tc.include_flags(include_dirs)]
    if use_pch:
        pch = runtime_pch(tc)
        if pch is not None:
            cmd += ["-include-pch", str(pch)]
    cmd += [*(extra_flags or []), "-c", str(c_path), "-o", tmp]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, check=False, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:
        Path(tmp).unlink(missing_ok=True)
        raise EnvironmentProblem(
            "clang did not finish in 300 s", "check the machine's load"
        ) from exc
    diags = parse_clang_output(proc.stderr)
    if proc.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        if not any(d.severity is Severity.ERROR for d in diags):
            diags.append(
                Diagnostic(
                    Severity.ERROR,
                    "C001",
                    "clang failed: " + (proc.stderr.strip()[-500:] or f"exit {proc.returncode}"),
                    str(c_path),
                )
            )
        return diags
    os.replace(tmp, out)
    return diags
