"""Shared fixtures: real tools from the settings, skipped with the remedy when absent.

CI forbids skips (.ci/run fails a run whose summary counts one, and sets SCHEDC_REQUIRE_TOOLS=1):
with SCHEDC_REQUIRE_TOOLS set, a missing tool or sandbox is a failure, not a skip, and so is any
other skip (`pytest.importorskip`, `pytest.skip`): a green run means every test really ran.

Only a test marked `@pytest.mark.vm` may boot the sandbox guest: for every other test `vng` on
PATH is a stand-in that fails at once and the test fails with the reason, so that
`-m "not vm"` never boots (the boot would cost a minute of TCG and hide a missing marker).
"""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedc.compiler.toolchain import Toolchain, load_toolchain
from schedc.settings import EnvironmentProblem, Settings, load_settings

# A shell without job control starts a background job (`pytest … &` in a script) with SIGINT
# ignored, and every child inherits that: the tests that interrupt a schedc command or an MCP
# worker with SIGINT (a user's Ctrl-C) would then test nothing. Python's own handler is reset to
# the default across exec, so the processes the tests start get SIGINT as a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.sched"))


def _configured_kernels() -> tuple[str, ...]:
    # pytest-xdist workers inherit the SCHEDC_KERNELS set below: the whole matrix is kept in
    # SCHEDC_TEST_MATRIX for them.
    kept = os.environ.get("SCHEDC_TEST_MATRIX")
    if kept:
        return tuple(kept.split(os.pathsep))
    try:
        return load_settings().kernels
    except EnvironmentProblem:
        return ()  # a broken config: the tests that load settings say so


# The kernel matrix as configured (schedc.toml's `kernels`, SCHEDC_KERNELS). The suite runs on
# its first kernel only, one boot per test (CI time is budgeted): the environment says so to
# this process and to every schedc it starts. tests/test_matrix.py runs the whole matrix.
MATRIX = _configured_kernels()
if len(MATRIX) > 1:
    os.environ["SCHEDC_TEST_MATRIX"] = os.pathsep.join(MATRIX)
    os.environ["SCHEDC_KERNELS"] = MATRIX[0]
MATRIX_REMEDY = (
    "the kernel matrix needs two sandbox kits: run scripts/setup.sh --kit ../shared/sandbox "
    "--kit ../shared/sandbox-7.2 (or set SCHEDC_KERNELS=KIT1:KIT2)"
)


def skip_or_fail(reason: str) -> None:
    """Skip a test whose tool is missing, or fail it where tools are required (CI)."""
    if os.environ.get("SCHEDC_REQUIRE_TOOLS"):
        pytest.fail(f"required tool missing (SCHEDC_REQUIRE_TOOLS is set): {reason}")
    pytest.skip(reason)


def kernel_examples_dir() -> Path | None:
    """The kernel's tools/sched_ext (a test input): SCHEDC_KERNEL_EXAMPLES or `kernel_examples`
    in schedc.toml, which scripts/setup.sh --kit writes."""
    root = load_settings().kernel_examples
    if not root:
        return None
    base = Path(root)
    for cand in (
        base / "tools" / "sched_ext",
        base / "linux-source-6.12" / "tools" / "sched_ext",
        base,
    ):
        if (cand / "scx_simple.bpf.c").is_file():
            return cand
    return None


KERNEL_EXAMPLES_REMEDY = (
    "the kernel's example schedulers are not available: run scripts/setup.sh --kit KIT (it "
    "fetches them), or scripts/fetch-kernel-examples.sh DEST and set SCHEDC_KERNEL_EXAMPLES=DEST"
)


def sandbox_uses(progress: list[str]) -> int:
    """How many guest jobs progress messages announce: a boot of its own ("booting sandbox
    kernel") or a job in the warm sandbox guest (`schedc mcp` keeps one)."""
    return sum("booting sandbox kernel" in m or "in the warm sandbox guest" in m for m in progress)


def needs_sandbox(settings: Settings) -> None:
    """Skip (or, in CI, fail) a test that boots the sandbox guest when there is none."""
    from schedc.verifier.sandbox import sandbox_problem  # noqa: PLC0415

    problem = sandbox_problem(settings)
    if problem:
        skip_or_fail(problem)


def require_module(name: str, remedy: str) -> object:
    """The module, or a skip (a failure where tools are required) naming the remedy: use this,
    not `pytest.importorskip`, so that CI counts the missing module as a failure."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(name)
    except ImportError as error:
        skip_or_fail(f"{name} is not installed ({error}): {remedy}")
        raise AssertionError("unreachable") from None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With SCHEDC_REQUIRE_TOOLS set, a skip from anywhere (importorskip, a bare pytest.skip)
    is reported as a failure, as CI counts it; an xfail stays an xfail."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("SCHEDC_REQUIRE_TOOLS")
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but SCHEDC_REQUIRE_TOOLS is set (CI runs every test): {reason}"


BOOT_GUARD_MESSAGE = "booted the sandbox guest but is not marked @pytest.mark.vm"


@pytest.fixture(scope="session")
def _boot_guard_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a `vng` that records the attempt and fails at once."""
    folder = tmp_path_factory.mktemp("boot-guard")
    vng = folder / "vng"
    vng.write_text(
        "#!/bin/sh\n"
        f"echo \"$$ $*\" >> '{folder / 'booted'}'\n"
        f"echo 'schedc tests: this test {BOOT_GUARD_MESSAGE}' >&2\n"
        "exit 97\n"
    )
    vng.chmod(vng.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.fixture(autouse=True)
def _no_boot_without_vm_marker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """A test without the vm marker that boots the guest (in this process or in a schedc it
    starts with this PATH) fails, naming the marker."""
    if request.node.get_closest_marker("vm") is not None:
        yield
        return
    folder: Path = request.getfixturevalue("_boot_guard_dir")
    record = folder / "booted"
    record.unlink(missing_ok=True)
    monkeypatch.setenv("PATH", os.pathsep.join([str(folder), os.environ.get("PATH", os.defpath)]))
    yield
    if record.exists():
        tried = record.read_text()
        record.unlink()
        pytest.fail(f"{request.node.nodeid} {BOOT_GUARD_MESSAGE} (vng {tried.strip()})")


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    cache = os.environ.get("SCHEDC_CACHE") or str(tmp_path_factory.mktemp("schedc-cache"))
    return load_settings(cache_dir=cache)


@pytest.fixture(scope="session")
def matrix_settings(settings: Settings) -> Settings:
    """The settings with every kernel of the configured matrix (at least two, or skip/fail)."""
    if len(MATRIX) < 2:
        skip_or_fail(MATRIX_REMEDY)
    return settings.with_overrides(kernels=MATRIX)


@pytest.fixture(scope="session")
def toolchain(settings: Settings) -> Toolchain:
    try:
        return load_toolchain(settings)
    except EnvironmentProblem as problem:
        skip_or_fail(f"{problem.message} ({problem.remedy})")
        raise AssertionError("unreachable") from None
