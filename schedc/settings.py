"""Where schedc finds its tools: options, then SCHEDC_* environment, then a config file, then
discovery on the host. Nothing here names a path of one particular machine."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

HOST_BTF = Path("/sys/kernel/btf/vmlinux")
# The embedded default: a minimal BTF of Linux 6.12 (the types generated policies need) and its
# vmlinux.h, used when no BTF is configured and this host's kernel has no sched_ext, so that a
# DSL policy compiles on any machine with clang (docs/compile.md, "Without a kernel kit").
DEFAULT_KERNEL_DIR = Path(__file__).resolve().parent / "codegen_templates" / "default_kernel"
EMBEDDED_BTF = DEFAULT_KERNEL_DIR / "vmlinux.btf"
HOST_SYSFS = Path("/sys")  # where the host's sched_ext, BTF and BPF file system are seen
HOST_CHOICES = ("auto", "yes", "no")  # the `host` setting
MIN_CLANG = 16
MIN_BPFTOOL = (7, 2)


class EnvironmentProblem(Exception):
    """A missing or unusable tool: exit status 2, with the exact remedy in `remedy`."""

    def __init__(self, message: str, remedy: str) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.remedy}"


@dataclass(frozen=True)
class Settings:
    clang: str | None = None
    bpftool: str | None = None
    btf: str | None = None
    kernel: str | None = None
    libbpf_include: str | None = None
    libbpf: str | None = None  # libbpf.so >= 1.2, for the sandbox's quiet loader
    # The kernel's .config, for objects with `__kconfig` externs: libbpf reads it from /boot or
    # /proc/config.gz, which a sandbox guest lacks (its /boot is the host's). A kit's
    # kernel.config fills it per kernel of the matrix.
    kconfig: str | None = None
    # The kernel's tools/sched_ext, a test input only (scripts/fetch-kernel-examples.sh).
    kernel_examples: str | None = None
    cache_dir: str | None = None
    accel: str = "tcg"
    vm_cpus: int = 2
    vm_memory: str = "1G"
    sandbox: str = "on"  # "off": clang and libclang run on policy C without bubblewrap
    bwrap: str | None = None  # the bubblewrap binary (default: bwrap on PATH)
    keep_sandbox: str | None = None  # set: keep the guest's files after a boot, for a look
    # The kernel matrix: kit folders (or bzImage files), each one more kernel that verify, test
    # and bench run every policy on (one boot per kernel). Empty: only `kernel` above.
    kernels: tuple[str, ...] = ()
    # Whether this host's own kernel is one more kernel of the matrix (host_choice): "auto"
    # when it can load sched_ext objects (never for run tests, which attach), "yes" always
    # (run tests too, or an error), "no" never.
    host: str = "auto"
    # Set on the matrix's entry for the host's kernel (never read from a config).
    on_host: bool = False
    # `--set NAME=VALUE` of verify, test and bench: param values the DSL policies are built with
    # (dsl/tunables.py); given on the command line (or by an MCP call) only.
    params: tuple[str, ...] = ()
    # The absolute URI of the folder docs/errors.md and docs/checks.md are served from (e.g.
    # https://github.com/OWNER/schedc/blob/COMMIT/docs/): SARIF's helpUri of each rule is its
    # section there. None: SARIF output has no helpUri.
    sarif_base_uri: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def with_overrides(self, **values: str | Sequence[str] | None) -> Settings:
        given: dict[str, object] = {k: v for k, v in values.items() if v is not None}
        if "kernels" in given:
            given["kernels"] = _kernel_list(given["kernels"], "option")
        if "host" in given:
            given["host"] = _host_choice(given["host"], "option")
        if "params" in given:
            given["params"] = tuple(str(v) for v in given["params"])  # type: ignore[union-attr]
        if not given:
            return self
        srcs = dict(self.sources)
        srcs.update({k: "option" for k in given})
        return replace(self, sources=srcs, **given)


_ENV = {
    "clang": "SCHEDC_CLANG",
    "bpftool": "SCHEDC_BPFTOOL",
    "btf": "SCHEDC_BTF",
    "kernel": "SCHEDC_KERNEL",
    "libbpf_include": "SCHEDC_LIBBPF_INCLUDE",
    "libbpf": "SCHEDC_LIBBPF",
    "kconfig": "SCHEDC_KCONFIG",
    "kernel_examples": "SCHEDC_KERNEL_EXAMPLES",
    "cache_dir": "SCHEDC_CACHE",
    "accel": "SCHEDC_ACCEL",
    "vm_cpus": "SCHEDC_VM_CPUS",
    "vm_memory": "SCHEDC_VM_MEMORY",
    "sandbox": "SCHEDC_SANDBOX",
    "bwrap": "SCHEDC_BWRAP",
    "keep_sandbox": "SCHEDC_KEEP_SANDBOX",
    "kernels": "SCHEDC_KERNELS",  # a list: kit folders separated by ':' (os.pathsep)
    "host": "SCHEDC_HOST",  # auto | yes | no
    "sarif_base_uri": "SCHEDC_SARIF_BASE_URI",
}


def default_repo_location() -> Path:
    """The policy repository: SCHEDC_REPO, else the XDG data directory."""
    explicit = os.environ.get("SCHEDC_REPO")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "schedc" / "policies"


# ---- settings of one command or test, from the environment only ------------------------------
# Not config-file keys (they are not in _ENV): each belongs to one part of schedc, and its
# docs list it there (docs/agent.md: the MCP limits, the model and its price). This module is
# still the only one that reads SCHEDC_* (tests/test_pipeline.py insists).

DEFAULT_MCP_QUEUE = 4  # calls that may wait for an MCP worker (SCHEDC_MCP_QUEUE)


def _environment_count(name: str, default: int, least: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EnvironmentProblem(f"{name} is '{raw}', not a number", f"set {name}=N") from None
    if value < least:
        raise EnvironmentProblem(f"{name} is {value}", f"set {name} to {least} or more")
    return value


WARM_SANDBOX_ENV = "SCHEDC_WARM_SANDBOX"


def warm_pool_dir() -> Path | None:
    """The warm sandbox pool of the process that keeps one (`schedc mcp`, set by
    schedc.verifier.warm.WarmPool for itself and its children), or None."""
    value = os.environ.get(WARM_SANDBOX_ENV)
    return Path(value) if value else None


def set_warm_pool_dir(path: Path | None) -> None:
    """Names the warm sandbox pool for this process and the ones it starts (None: no pool)."""
    if path is None:
        os.environ.pop(WARM_SANDBOX_ENV, None)
    else:
        os.environ[WARM_SANDBOX_ENV] = str(path)


def mcp_workers() -> int:
    """SCHEDC_MCP_WORKERS: the agent runner's worker processes at once (default the CPU
    count, at least 1); EnvironmentProblem for a value that is not such a number."""
    return _environment_count("SCHEDC_MCP_WORKERS", max(1, os.cpu_count() or 1), 1)


def mcp_queue() -> int:
    """SCHEDC_MCP_QUEUE: calls that may wait for a free worker (default DEFAULT_MCP_QUEUE)."""
    return _environment_count("SCHEDC_MCP_QUEUE", DEFAULT_MCP_QUEUE, 0)


def synthesis_model() -> str | None:
    """SCHEDC_MODEL: the model `schedc synthesize` asks when --model is not given (None:
    the command's default)."""
    return os.environ.get("SCHEDC_MODEL") or None


def synthesis_price() -> str | None:
    """SCHEDC_PRICE as given ("IN,OUT", USD per million tokens; agent/synthesize.py's `price`
    reads it), None when unset or empty."""
    return os.environ.get("SCHEDC_PRICE") or None


def crash_point() -> str | None:
    """SCHEDC_TEST_KILL_AT, a test hook: the point at which the repository's writer kills
    itself (write, staged or committed; repo/gitstore.py), None when unset."""
    return os.environ.get("SCHEDC_TEST_KILL_AT")


def as_environment(settings: Settings) -> dict[str, str]:
    """The SCHEDC_* variables that give a child process these settings (the ones that are set)."""
    env = {}
    for key, name in _ENV.items():
        value = getattr(settings, key)
        if isinstance(value, tuple):
            value = os.pathsep.join(value)
        if value is not None and value != "":
            env[name] = str(value)
    return env


PROJECT_CONFIG = "schedc.toml"
# Settings whose values are paths: a relative one in a config file is relative to the file's
# folder. The tools' (clang, bpftool, bwrap) only with a "/" in it: a bare name such as
# "clang-19" is looked up on PATH.
_PATH_KEYS = frozenset(
    {
        "btf",
        "kernel",
        "libbpf_include",
        "libbpf",
        "kconfig",
        "kernel_examples",
        "cache_dir",
        "kernels",
    }
)
_TOOL_KEYS = frozenset({"clang", "bpftool", "bwrap"})


def config_paths() -> list[Path]:
    """Where the config file is looked for, in order (the first that exists is used):
    SCHEDC_CONFIG alone when set; else schedc.toml in the working folder or the nearest
    folder above it that has one (as git finds .git), then ~/.config/schedc/config.toml."""
    explicit = os.environ.get("SCHEDC_CONFIG")
    if explicit:
        return [Path(explicit)]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    here = Path.cwd()
    project = next(
        (f / PROJECT_CONFIG for f in (here, *here.parents) if (f / PROJECT_CONFIG).is_file()),
        Path(PROJECT_CONFIG),
    )
    if project.parent == here:
        project = Path(PROJECT_CONFIG)  # the working folder's: named as before
    return [project, xdg / "schedc" / "config.toml"]


def _relative_to(folder: Path, key: str, value: object) -> object:
    """A setting from a config file in `folder`: a relative path is taken from the file's
    folder, not from wherever schedc was started."""
    if key not in _PATH_KEYS and key not in _TOOL_KEYS:
        return value
    if isinstance(value, list):
        return [_relative_to(folder, key, v) for v in value]
    if not isinstance(value, str) or not value or value.startswith(("/", "~")):
        return value
    if key in _TOOL_KEYS and "/" not in value:
        return value
    return str(folder / value)


def config_warnings() -> list[str]:
    """What is wrong but harmless in the config file in use: keys schedc does not know (a typo
    such as `btff` would otherwise leave the setting silently unset). Empty when there is no
    config file, or it cannot be read (load_settings reports that as an error)."""
    for path in config_paths():
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return []
        section = data.get("schedc", data)
        if not isinstance(section, dict):
            return []
        out = []
        for key in section:
            if key in _ENV:
                continue
            close = difflib.get_close_matches(key, list(_ENV), n=1)
            did = f"did you mean '{close[0]}'? " if close else ""
            out.append(
                f"{path}: unknown setting '{key}' is ignored; {did}the settings are "
                f"{', '.join(sorted(_ENV))} (README, Settings)"
            )
        return out
    return []


def _kernel_list(value: object, where: str) -> tuple[str, ...]:
    """The `kernels` setting as a tuple: a TOML list, an os.pathsep-separated string (the
    environment), or a sequence of strings (options)."""
    if isinstance(value, str):
        items = [v for v in value.split(os.pathsep) if v.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise EnvironmentProblem(
            f"'kernels' (from {where}) must be a list of kit folders, not {value!r}",
            'write kernels = ["/path/to/kit-6.12", "/path/to/kit-7.2"] (SCHEDC_KERNELS: '
            "folders separated by ':')",
        )
    return tuple(str(Path(v).expanduser().absolute()) for v in items)


def _host_choice(value: object, where: str) -> str:
    if value not in HOST_CHOICES:
        raise EnvironmentProblem(
            f"'host' (from {where}) must be one of {', '.join(HOST_CHOICES)}, not {value!r}",
            'write host = "auto" (the host\'s kernel joins the matrix when it has sched_ext), '
            '"yes" or "no" (SCHEDC_HOST, --host-kernel)',
        )
    return str(value)


def load_settings(**overrides: str | Sequence[str] | None) -> Settings:
    """Settings from a config file, then the environment, then the given options (last wins)."""
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for path in config_paths():
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise EnvironmentProblem(
                f"cannot read config file {path}: {exc}", "fix the TOML syntax or remove the file"
            ) from exc
        section = data.get("schedc", data)
        for key in _ENV:
            if key in section:
                value = section[key]
                values[key] = _relative_to(path.parent, key, value)
                sources[key] = str(path)
        break
    for key, env in _ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
            sources[key] = env
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
            sources[key] = "option"
    if "vm_cpus" in values:
        values["vm_cpus"] = int(str(values["vm_cpus"]))
    if "kernels" in values:
        values["kernels"] = _kernel_list(values["kernels"], sources["kernels"])
    if "host" in values:
        values["host"] = _host_choice(values["host"], sources["host"])
    if "params" in values:  # --set NAME=VALUE, given as options only
        values["params"] = tuple(str(v) for v in values["params"])  # type: ignore[attr-defined]
    typed = {
        k: (v if k in ("vm_cpus", "kernels", "params") else str(v)) for k, v in values.items()
    }
    return Settings(sources=sources, **typed)  # type: ignore[arg-type]


def cache_root(settings: Settings) -> Path:
    if settings.cache_dir:
        root = Path(settings.cache_dir)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "schedc"
    root.mkdir(parents=True, exist_ok=True)
    return root


@lru_cache(maxsize=16)
def _version(path: str, flag: str, pattern: str) -> tuple[int, ...] | None:
    """The numbers `pattern` finds in what `path flag` prints, or None if it does not run."""
    try:
        out = subprocess.run(
            [path, flag], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(pattern, out)
    return tuple(int(g) for g in m.groups()) if m else None


def _clang_major(path: str) -> int | None:
    found = _version(path, "--version", r"clang version (\d+)")
    return found[0] if found else None


def llvm_lib_dir(clang: str) -> Path:
    """The lib folder of this clang's own LLVM (…/lib beside the real …/bin/clang)."""
    return Path(os.path.realpath(shutil.which(clang) or clang)).parent.parent / "lib"


def find_libclang(clang: str) -> str | None:
    """The libclang of this clang's own LLVM (lib/libclang-N.so.1 beside bin/clang, as Debian's
    libclang1-N installs it), for the Python bindings: the checks then parse with the version
    that compiles. None when that LLVM has none."""
    lib = llvm_lib_dir(clang)
    for pattern in ("libclang-*.so.*", "libclang.so.*", "libclang.so"):
        found = sorted(lib.glob(pattern))
        if found:
            return str(found[0])
    return None


def find_clang(settings: Settings) -> str:
    """A clang >= 16 that can target BPF: SCHEDC_CLANG, else the newest clang-N on PATH."""
    if settings.clang:
        path = shutil.which(settings.clang) or settings.clang
        major = _clang_major(path)
        if major is None:
            raise EnvironmentProblem(
                f"clang '{settings.clang}' (from {settings.sources.get('clang', 'settings')}) does not run",
                "point SCHEDC_CLANG at a working clang >= 16, e.g. /usr/bin/clang-19",
            )
        if major < MIN_CLANG:
            raise EnvironmentProblem(
                f"clang '{path}' is version {major}; sched_ext needs clang >= {MIN_CLANG}",
                "install clang-19 (apt-get install clang-19) and set SCHEDC_CLANG=clang-19",
            )
        return path
    for name in [f"clang-{v}" for v in range(25, MIN_CLANG - 1, -1)] + ["clang"]:
        path = shutil.which(name)
        if path and (_clang_major(path) or 0) >= MIN_CLANG:
            return path
    raise EnvironmentProblem(
        f"no clang >= {MIN_CLANG} found on PATH",
        "install one (Debian 12: apt-get install clang-19) or set SCHEDC_CLANG to its path",
    )


# Where a bpftool is looked for when none is set, after PATH: Debian's `bpftool` package puts it
# in /usr/sbin (not on a normal user's PATH), Ubuntu's linux-tools in /usr/lib/linux-tools-*.
BPFTOOL_PLACES: tuple[str, ...] = ("/usr/sbin/bpftool", "/usr/lib/linux-tools*/bpftool")
BPFTOOL_REMEDY = (
    "install one: Debian's bpftool package (apt-get install bpftool; scripts/setup.sh does it "
    "when it is given no --kit) turns a BTF into vmlinux.h, which is all compile and check "
    "need; or set SCHEDC_BPFTOOL (`bpftool` in schedc.toml) to a bpftool, such as a sched_ext "
    "sandbox kit's: loading sched_ext objects (verify, test, bench) needs bpftool >= 7.2"
)


def find_bpftool(settings: Settings) -> str:
    if settings.bpftool:
        where = settings.sources.get("bpftool", "settings")
        path = shutil.which(settings.bpftool) or settings.bpftool
        if not os.path.exists(path):
            raise EnvironmentProblem(
                f"bpftool '{settings.bpftool}' (from {where}) does not exist", BPFTOOL_REMEDY
            )
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise EnvironmentProblem(
                f"bpftool '{settings.bpftool}' (from {where}) is not an executable file",
                BPFTOOL_REMEDY,
            )
        return path
    path = shutil.which("bpftool")
    if path:
        return path
    for place in BPFTOOL_PLACES:
        for cand in sorted(Path("/").glob(place.lstrip("/")), reverse=True):
            if os.access(cand, os.X_OK) and cand.is_file():
                return str(cand)
    raise EnvironmentProblem(
        "no bpftool found (none set, none on PATH, none in " + ", ".join(BPFTOOL_PLACES) + "): "
        "schedc needs it to turn the kernel's BTF into vmlinux.h",
        BPFTOOL_REMEDY,
    )


def _bpftool_version(path: str) -> tuple[int, ...] | None:
    return _version(path, "version", r"v(\d+)\.(\d+)")


def bpftool_problem(settings: Settings) -> str | None:
    """None when a bpftool that can load sched_ext objects is at hand, else why not."""
    try:
        bpftool = find_bpftool(settings)
    except EnvironmentProblem as exc:
        return exc.message
    version = _bpftool_version(bpftool)
    if version is None:
        return f"bpftool '{bpftool}' does not run or print its version"
    if version < MIN_BPFTOOL:
        return f"bpftool '{bpftool}' is v{version[0]}.{version[1]}, too old for sched_ext objects"
    return None


def is_embedded_btf(path: Path) -> bool:
    """Whether `path` is the embedded default BTF (which comes with its own vmlinux.h)."""
    try:
        return path.resolve() == EMBEDDED_BTF
    except OSError:
        return False


def btf_has_sched_ext(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return b"\x00sched_ext_ops\x00" in data


def find_btf(settings: Settings) -> Path:
    """The BTF that vmlinux.h is generated from: --btf / SCHEDC_BTF, else the host's if it has
    sched_ext, else the embedded minimal one (EMBEDDED_BTF)."""
    if settings.btf:
        path = Path(settings.btf)
        if not path.is_file():
            raise EnvironmentProblem(
                f"BTF file '{path}' (from {settings.sources.get('btf', 'settings')}) does not exist",
                "pass --btf with the vmlinux BTF of a sched_ext kernel "
                "(e.g. the vmlinux.btf of a sandbox kit)",
            )
        if not btf_has_sched_ext(path):
            raise EnvironmentProblem(
                f"BTF file '{path}' has no 'struct sched_ext_ops': that kernel lacks sched_ext",
                "use the BTF of a kernel built with CONFIG_SCHED_CLASS_EXT=y",
            )
        return path
    if btf_has_sched_ext(HOST_BTF):
        return HOST_BTF
    if (DEFAULT_KERNEL_DIR / "vmlinux.h").is_file() and btf_has_sched_ext(EMBEDDED_BTF):
        return EMBEDDED_BTF
    raise EnvironmentProblem(
        "no BTF with sched_ext: this host's kernel has no sched_ext and no --btf was given",
        "pass --btf FILE or set SCHEDC_BTF to the vmlinux BTF of a sched_ext kernel "
        "(a sched_ext sandbox kit has one: vmlinux.btf; see the README's Settings)",
    )


# ---- the kernel matrix ------------------------------------------------------------------------


def kernel_release(bzimage: Path) -> str | None:
    """The release of an x86 bzImage ("6.12.117"), from the version string its setup header
    points at (boot protocol: `kernel_version` at 0x20E, an offset from 0x200); None when the
    file is not a bzImage."""
    try:
        with bzimage.open("rb") as f:
            head = f.read(0x10000)
    except OSError:
        return None
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        return None
    offset = int.from_bytes(head[0x20E:0x210], "little") + 0x200
    text = head[offset : offset + 256].split(b"\0", 1)[0].decode("ascii", "replace")
    release = text.split(" ", 1)[0]
    return release if re.match(r"\d+\.\d+", release) else None


def _kit_library(kit: Path) -> str | None:
    """The kit's libbpf.so.X.Y.Z: the real ELF file (copies of kits can turn links into text)."""
    for lib in sorted(kit.glob("lib/libbpf.so.*.*.*")):
        try:
            with lib.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    return str(lib)
        except OSError:
            continue
    return None


def kit_settings(settings: Settings, entry: str, where: str) -> Settings:
    """`settings` with one kernel of the matrix in place: a kit folder gives its bzImage,
    vmlinux.btf, bpftool, include/, lib/libbpf.so and kernel.config; a bzImage file gives only
    the kernel (the other tools stay as set)."""
    path = Path(entry)
    if path.is_file():
        return replace(settings, kernel=str(path), sources={**settings.sources, "kernel": where})
    if not (path / "bzImage").is_file():
        raise EnvironmentProblem(
            f"kernel '{entry}' (from {where}) is neither a kit folder with a bzImage nor a "
            "bzImage file",
            "list sandbox kit folders in `kernels` (SCHEDC_KERNELS, --kernel): each holds "
            "bzImage, vmlinux.btf, bpftool, include/bpf and lib/libbpf.so.*",
        )
    values: dict[str, str] = {"kernel": str(path / "bzImage")}
    if (path / "vmlinux.btf").is_file():
        values["btf"] = str(path / "vmlinux.btf")
    if (path / "bpftool").is_file():
        values["bpftool"] = str(path / "bpftool")
    if (path / "include" / "bpf").is_dir():
        values["libbpf_include"] = str(path / "include")
    library = _kit_library(path)
    if library:
        values["libbpf"] = library
    if (path / "kernel.config").is_file():
        values["kconfig"] = str(path / "kernel.config")
    return replace(settings, sources={**settings.sources, **dict.fromkeys(values, where)}, **values)


def _rank(source: str | None) -> int:
    """How explicit a setting's source is: an option, the environment, a config file."""
    if source is None:
        return 0
    if source == "option":
        return 3
    return 2 if source in _ENV.values() else 1


def _kits(settings: Settings) -> list[Settings]:
    if not settings.kernels:
        return [settings]
    where = settings.sources.get("kernels", "settings")
    single = settings.sources.get("kernel")
    if settings.kernel and single != where and _rank(single) >= _rank(where):
        return [settings]
    return [kit_settings(settings, entry, f"kernels in {where}") for entry in settings.kernels]


def host_kernel_problem(
    settings: Settings,
    *,
    attach: bool = False,
    sysfs: Path = HOST_SYSFS,
    euid: int | None = None,
) -> str | None:
    """None when this host's own kernel can load sched_ext objects (and, with `attach`, have
    one attached: nothing is attached now), else why not. The one check behind verify --host,
    bench --host and the host as a kernel of the matrix; `sysfs` and `euid` are for tests."""
    sched_ext = sysfs / "kernel" / "sched_ext"
    if not sched_ext.is_dir():
        return f"this host's kernel has no sched_ext ({sched_ext} is missing)"
    if (os.geteuid() if euid is None else euid) != 0:
        return "loading BPF programs on the host needs root (CAP_BPF and CAP_SYS_ADMIN)"
    if not (sysfs / "fs" / "bpf").is_dir():
        return f"{sysfs / 'fs' / 'bpf'} (the BPF file system) is not mounted on this host"
    btf = sysfs / "kernel" / "btf" / "vmlinux"
    if not btf_has_sched_ext(btf):
        return f"this host's BTF ({btf}) has no 'struct sched_ext_ops'"
    if attach:
        state_file = sched_ext / "state"
        try:
            state = state_file.read_text().strip()
        except OSError as exc:
            return f"cannot read {state_file}: {exc.strerror}"
        if state != "disabled":
            return (
                f"a sched_ext scheduler is already attached on this host ({state_file} is "
                f"'{state}'); detach it first"
            )
    return bpftool_problem(settings)


@dataclass(frozen=True)
class HostChoice:
    """Whether the host's kernel is in the matrix: its entry, or why not (`reason`, for
    `host = "auto"`; None when the setting leaves it out)."""

    entry: Settings | None
    reason: str | None


def host_choice(
    settings: Settings,
    *,
    attach: bool,
    sysfs: Path = HOST_SYSFS,
    euid: int | None = None,
) -> HostChoice:
    """The host as one more kernel of the matrix, by the `host` setting: "auto" adds it when
    host_kernel_problem finds nothing, and never for a run that attaches (`attach`): attaching
    to a real machine is never done by default; "yes" adds it or raises EnvironmentProblem
    with the reason; "no" never. Its entry is named by `uname -r` and reads the host's BTF."""
    if settings.host == "no" or settings.on_host:
        return HostChoice(None, None)
    if settings.host == "auto" and attach:
        return HostChoice(
            None, 'this run attaches schedulers: the host joins it only with host = "yes"'
        )
    trouble = host_kernel_problem(settings, attach=attach, sysfs=sysfs, euid=euid)
    if trouble is not None:
        if settings.host == "yes":
            where = settings.sources.get("host", "settings")
            raise EnvironmentProblem(
                f"host = yes (from {where}), but this host's kernel cannot be in the matrix: "
                f"{trouble}",
                "run as root on a kernel with CONFIG_SCHED_CLASS_EXT=y (and nothing attached), "
                'or set host = "auto" or "no" (SCHEDC_HOST, --host-kernel)',
            )
        return HostChoice(None, trouble)
    btf = str(sysfs / "kernel" / "btf" / "vmlinux")
    entry = replace(
        settings,
        kernel=None,
        btf=btf,
        kernels=(),
        on_host=True,
        sources={**settings.sources, "kernel": "host", "btf": "host"},
    )
    return HostChoice(entry, None)


def kernel_matrix(
    settings: Settings,
    *,
    attach: bool,
    sysfs: Path = HOST_SYSFS,
    euid: int | None = None,
) -> list[Settings]:
    """One Settings per kernel that verify, test and bench run on: each entry of `kernels`
    (in the order given), or just these settings when no matrix is set; then the host's
    kernel when host_choice adds it (alone when no sandbox kernel is set at all). A single
    `kernel` given more explicitly than the matrix, or as explicitly but elsewhere
    (SCHEDC_KERNEL beside SCHEDC_KERNELS), replaces it: `kernels` and `kernel` in one config
    file make a matrix. `attach`: the caller attaches schedulers (a run test, a bench)."""
    kits = _kits(settings)
    host = host_choice(settings, attach=attach, sysfs=sysfs, euid=euid).entry
    if host is None:
        return kits
    if not settings.kernel and not settings.kernels:
        return [host]
    return [*kits, host]


def kernel_name(settings: Settings) -> str:
    """How reports name the kernel of these settings: its release (the host's: `uname -r`),
    else its file's path."""
    if settings.on_host:
        return os.uname().release
    if not settings.kernel:
        return "host"
    return kernel_release(Path(settings.kernel)) or settings.kernel


def each_kernel(
    settings: Settings, progress: Callable[[str], None] | None, *, attach: bool
) -> Iterator[tuple[Settings, str, Callable[[str], None] | None]]:
    """The matrix's kernels in turn, as (settings, release, progress): in a matrix of several,
    each is announced ("kernel 2/2: Linux 7.2.13") and its progress messages say its release."""
    return each_of(kernel_matrix(settings, attach=attach), progress)


def each_of(
    kernels: Sequence[Settings], progress: Callable[[str], None] | None
) -> Iterator[tuple[Settings, str, Callable[[str], None] | None]]:
    """each_kernel over a matrix already made (kernel_matrix, verify's matrix_of)."""
    for n, kernel in enumerate(kernels, 1):
        name = kernel_name(kernel)
        say = progress
        if progress is not None and len(kernels) > 1:
            progress(f"kernel {n}/{len(kernels)}: Linux {name}")
            say = _tagger(progress, name)
        yield kernel, name, say


def _tagger(progress: Callable[[str], None], name: str) -> Callable[[str], None]:
    return lambda message: progress(f"[{name}] {message}")
