"""The sandbox every run of clang and libclang on policy C goes through (bubblewrap).

A policy is untrusted input to the C preprocessor, which reads any file it is told to
(`#include`, `#embed`, `#line`, `__has_include`, `#pragma GCC dependency`) and can print its
bytes back in a diagnostic. Text checks cannot see every spelling of those (digraphs, line
splices, macros), so clang runs where no host file but the toolchain exists:

    bwrap --unshare-all --die-with-parent --new-session --clearenv --tmpfs /tmp --dev /dev
          --ro-bind <each path in `ro`> ... --bind <each folder in `rw`> ... -- COMMAND

`ro` is the toolchain (clang's prefix, the shared library folders its ELF files need, the
Python running schedc) plus the few inputs of one run: the source, the include folders schedc
chose, the cached vmlinux.h and PCH. `/etc`, `/home`, `/root`, the working folder and `/` are
never bound. `rw` is a fresh folder for the one file the run writes.

`run()` runs a command (caged or, with `sandbox = "off"`, as is) in its own process group with
the workers' wall-clock and address-space limits, and kills the group on the limit and on any
exception, KeyboardInterrupt and SystemExit included.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from schedc.lifecycle import child_group
from schedc.settings import EnvironmentProblem, Settings

# The limits of one isolated compile or check (the MCP worker's too: schedc.agent.runner).
COMPILE_TIMEOUT = 60.0  # seconds of wall clock
MEMORY_BYTES = 4 * 1024**3  # address space

SANDBOX_MODES = ("on", "off")
MINIMAL_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp"}
_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")

INSTALL_HINT = (
    "install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu "
    "kernel.apparmor_restrict_unprivileged_userns=0); for trusted local C only, "
    'SCHEDC_SANDBOX=off (or sandbox = "off" in schedc.toml) runs clang without it'
)


def limit_memory(limit: int | None) -> None:
    """Cap this process's address space (children inherit it)."""
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@dataclass(frozen=True)
class Cage:
    """How untrusted C is run: `bwrap` is the bubblewrap to use, None when the sandbox is off."""

    bwrap: str | None

    @property
    def enabled(self) -> bool:
        return self.bwrap is not None


def find_cage(settings: Settings, clang: str) -> Cage:
    """The sandbox the settings ask for; EnvironmentProblem when it is on and cannot run
    `clang` (tried once a process: `bwrap ... clang --version`)."""
    mode = (settings.sandbox or "on").strip().lower()
    if mode not in SANDBOX_MODES:
        raise EnvironmentProblem(
            f"sandbox = '{settings.sandbox}' (from {settings.sources.get('sandbox', 'settings')}) "
            "is neither 'on' nor 'off'",
            "set SCHEDC_SANDBOX=on (the default) or off",
        )
    if mode == "off":
        return Cage(None)
    name = settings.bwrap or "bwrap"
    path = _which(name)
    problem = probe(path, clang) if path else f"'{name}' is not installed or not on PATH"
    if problem:
        raise EnvironmentProblem(
            f"cannot run clang on untrusted C: the bubblewrap sandbox does not work ({problem})",
            INSTALL_HINT,
        )
    assert path is not None
    return Cage(path)


def _which(name: str) -> str | None:
    import shutil  # noqa: PLC0415

    found = shutil.which(name)
    if found:
        return found
    return name if os.path.isfile(name) and os.access(name, os.X_OK) else None


@lru_cache(maxsize=8)
def probe(bwrap: str, clang: str) -> str | None:
    """None when `bwrap` can build this module's sandbox here and run `clang` in it, else why
    not. Cached: once a process."""
    argv = bwrap_argv(bwrap, clang_paths(clang), [], None) + [clang, "--version"]
    try:
        proc = subprocess.run(
            argv, capture_output=True, timeout=30, check=False, env=dict(MINIMAL_ENV)
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{bwrap}: {exc}"
    if proc.returncode != 0:
        said = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"{bwrap} exited with status {proc.returncode}" + (f": {said[-1]}" if said else "")
    return None


# ---- what a sandbox sees --------------------------------------------------------------------


@lru_cache(maxsize=32)
def _ldd(binary: str) -> tuple[str, ...]:
    """The shared libraries (and the ELF interpreter) `binary` loads, as the loader names them."""
    try:
        out = subprocess.run(
            ["ldd", binary],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=MINIMAL_ENV,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(m.group(1) for m in map(_LDD_PATH.search, out.splitlines()) if m)


def library_paths(binaries: Iterable[str | Path]) -> list[Path | tuple[Path, Path]]:
    """Binds for the libraries of `binaries`: each folder a needed library is in, at the name
    the loader uses and at its real path (/lib is often a link to /usr/lib), and the ELF
    interpreter. These are the system's library folders: packaged code, no user data."""
    binds: dict[str, Path | tuple[Path, Path]] = {}
    for binary in binaries:
        for lib in _ldd(str(binary)):
            named = Path(lib)
            real = Path(os.path.realpath(lib))
            if "ld-linux" in named.name or named.name.startswith("ld64"):
                binds[str(named)] = (real, named)  # the interpreter, at its fixed path
            for folder in {named.parent, real.parent}:
                real_folder = Path(os.path.realpath(folder))
                binds[str(folder)] = real_folder if folder == real_folder else (real_folder, folder)
    return list(binds.values())


def clang_paths(clang: str) -> list[Path | tuple[Path, Path]]:
    """clang's own installation (e.g. /usr/lib/llvm-19: binary, builtin headers) and its
    libraries, plus the clang name schedc runs if it is a link into that installation."""
    real = Path(os.path.realpath(clang))
    prefix = real.parent.parent if real.parent.name == "bin" else real.parent
    paths: list[Path | tuple[Path, Path]] = [prefix, *library_paths([real])]
    if Path(clang).is_absolute() and Path(clang) != real:
        paths.append((real, Path(clang)))
        # clang looks for its builtin headers (limits.h, stddef.h) beside the name it runs as
        # (/usr/bin/clang-19: /usr/lib/clang/19, links into the installation on Debian).
        seen = Path(clang).parent.parent / "lib" / "clang"
        own = prefix / "lib" / "clang"
        if seen.is_dir() and os.path.realpath(seen) != os.path.realpath(own):
            paths += [(v, seen / v.name) for v in sorted(own.glob("*")) if (seen / v.name).exists()]
    return paths


def python_paths(libclang: str | None = None) -> list[Path | tuple[Path, Path]]:
    """What running schedc's own Python in the sandbox needs: the interpreter's installation,
    the virtual environment, the schedc package, ctypes' libraries, and `libclang` (the
    toolchain's, which the worker loads) with the libraries it needs."""
    import schedc  # noqa: PLC0415

    paths: list[Path | tuple[Path, Path]] = []
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        paths.append(Path(os.path.realpath(prefix)))
        if os.path.realpath(prefix) != prefix:
            paths.append((Path(os.path.realpath(prefix)), Path(prefix)))
    paths.append(Path(os.path.realpath(Path(schedc.__file__).parent)))
    binaries: list[str] = [os.path.realpath(sys.executable)]
    if libclang:
        binaries.append(os.path.realpath(libclang))
    import _ctypes  # noqa: PLC0415

    binaries.append(os.path.realpath(_ctypes.__file__))
    paths += library_paths(binaries)
    return paths


def bwrap_argv(
    bwrap: str,
    ro: Iterable[Path | tuple[Path, Path]],
    rw: Iterable[Path],
    chdir: Path | None,
) -> list[str]:
    """The bubblewrap command line of a sandbox that sees only `ro` (read-only; a (source,
    destination) pair binds source at destination) and `rw`, then runs what follows it."""
    argv = [
        bwrap,
        "--unshare-all",  # network, IPC, PID, UTS, cgroup and user namespaces of its own
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    for key, value in MINIMAL_ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--tmpfs", "/tmp", "--dev", "/dev"]
    seen: set[tuple[str, str]] = set()
    for item in ro:
        src, dest = item if isinstance(item, tuple) else (item, item)
        key = (str(src), str(dest))
        if key in seen or not os.path.exists(src):
            continue
        seen.add(key)
        argv += ["--ro-bind", str(src), str(dest)]
    for folder in rw:
        argv += ["--bind", str(folder), str(folder)]
    if chdir is not None and str(chdir) != "/":
        argv += ["--dir", str(chdir), "--chdir", str(chdir)]  # exists, empty: names resolve
    argv.append("--")
    return argv


# ---- running --------------------------------------------------------------------------------


@dataclass
class Outcome:
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    argv: list[str] = field(default_factory=list)

    @property
    def signal(self) -> int | None:
        """The signal that ended the command (bubblewrap reports a child's as 128 + N)."""
        if self.returncode < 0:
            return -self.returncode
        if self.returncode > 128 and self.returncode - 128 in _FATAL_SIGNALS:
            return self.returncode - 128
        return None


_FATAL_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE, signal.SIGKILL}
)


def run(
    cage: Cage,
    command: Sequence[str],
    *,
    ro: Iterable[Path | tuple[Path, Path]] = (),
    rw: Iterable[Path] = (),
    chdir: Path | None = None,
    stdin: bytes | None = None,
    timeout: float = COMPILE_TIMEOUT,
    memory: int | None = MEMORY_BYTES,
) -> Outcome:
    """Run `command` in the cage (or as is when the sandbox is off) and wait for it."""
    if cage.bwrap is not None:
        argv = bwrap_argv(cage.bwrap, ro, rw, chdir) + list(command)
        cwd = None
    else:
        argv, cwd = list(command), chdir
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd if cwd is not None and cwd.is_dir() else None,
            env=dict(MINIMAL_ENV),
            start_new_session=True,  # its own process group: killed as one
            preexec_fn=(lambda: limit_memory(memory)) if memory else None,  # noqa: PLW1509
        )
        timed_out = False
        # Registered with lifecycle: a SIGTERM to schedc kills the group at once, even while
        # this thread waits; the block's end kills it on a limit, an error, Ctrl-C or SystemExit.
        try:
            with child_group(proc):
                if stdin is not None:
                    assert proc.stdin is not None
                    try:
                        proc.stdin.write(stdin)
                        proc.stdin.close()
                    except BrokenPipeError:  # it died before reading: its status says why
                        pass
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
        finally:  # killed by child_group on the way out; reaped here
            proc.wait()
        out.seek(0)
        err.seek(0)
        return Outcome(proc.returncode, out.read(), err.read(), timed_out, argv)
