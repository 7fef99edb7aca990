"""Host control: attach a compiled policy to this machine's kernel and leave it running, say
what is attached, detach it (`schedc run`, `schedc status`, `schedc stop`; docs/run.md).

The scheduler is attached with `bpftool struct_ops register OBJ DIR`, which pins the
struct_ops link in DIR on the BPF file system: the link, and so the scheduler, outlives the
command, and removing the pin detaches it (`.struct_ops.link` maps cannot be unregistered by
id). What schedc attached is written down in RUN_DIR/attached.json; `status` trusts that record
only when the kernel agrees (the state is `enabled`, root/ops names the same scheduler and the
enable sequence number has not moved since), so a scheduler the watchdog ejected, or one that
another tool attached after ours, is never reported as ours.

A scheduler attached by another tool (scx_loader, an scx_* binary, bpftool) is left alone
unless asked (`--replace`, `stop --force`): then scx_loader is asked over D-Bus to stop it
when it is the one running it (so that it does not start it again), else the kernel's SysRq-S
(sched_ext's own emergency switch back to the fair class) disables it.

Nothing here runs in tests on the machine that runs the tests: the tests run these commands in
the sandbox guest (tests/test_host_control_vm.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from schedc.settings import HOST_SYSFS, Settings, find_bpftool, host_kernel_problem

RUN_DIR = Path("/run/schedc")  # attached.json: what schedc attached, while it is attached
RECORD = "attached.json"
PIN_ROOT = "fs/bpf/schedc-run"  # under the sysfs root: one folder of pinned links per attach
SCX_LOADER = ("org.scx.Loader", "/org/scx/Loader", "org.scx.Loader")  # service, path, iface
ENABLE_WAIT_S = 5.0  # for `enabled` after the link is made (ops.init runs first)
DISABLE_WAIT_S = 10.0  # for `disabled` after the pin goes (tasks move back to the fair class)


class HostControlError(Exception):
    """What stops a run or stop: `message`, `hint`, and whether it is an environment problem
    (exit 2: no sched_ext, not root, another scheduler attached) or the policy's (exit 1: it
    did not load, or the kernel ejected it)."""

    def __init__(self, message: str, hint: str | None = None, *, environment: bool = True):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.environment = environment


@dataclass(frozen=True)
class Attachment:
    """What schedc attached: the record in RUN_DIR/attached.json."""

    policy: str  # the stored name (NAME), or the source file's path
    attached_at: str  # ISO 8601, UTC
    ops: str = ""  # the scheduler's name as the kernel shows it (root/ops)
    pin: str = ""  # the folder of pinned links; removing it detaches
    enable_seq: int | None = None  # the kernel's enable_seq right after it was enabled
    commit: str | None = None  # the repository commit it was built from
    version: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    verification: str | None = None  # the stored verification's status ("verified", ...)

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "ops": self.ops,
            "pin": self.pin,
            "enable_seq": self.enable_seq,
            "attached_at": self.attached_at,
            "commit": self.commit,
            "version": self.version,
            "params": dict(self.params),
            "verification": self.verification,
        }

    @staticmethod
    def from_json(data: object) -> Attachment | None:
        if not isinstance(data, dict):
            return None
        try:
            params = data.get("params") or {}
            return Attachment(
                policy=str(data["policy"]),
                ops=str(data["ops"]),
                pin=str(data["pin"]),
                enable_seq=None if data.get("enable_seq") is None else int(data["enable_seq"]),
                attached_at=str(data["attached_at"]),
                commit=None if data.get("commit") is None else str(data["commit"]),
                version=None if data.get("version") is None else int(data["version"]),
                params={str(k): str(v) for k, v in dict(params).items()},
                verification=data.get("verification") and str(data["verification"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class HostStatus:
    """What is attached now, as the kernel says (`state`, `ops`, `enable_seq`), whose it is
    (`by_schedc`: schedc's record, when the kernel agrees with it), scx_loader's view when it
    is on the system bus, and `stale`: schedc's record of a scheduler the kernel no longer
    runs (ejected by the watchdog or an error, or replaced by another tool)."""

    sched_ext: bool  # this kernel has sched_ext
    state: str | None  # enabled, enabling, disabling, disabled (None without sched_ext)
    ops: str | None  # root/ops: the attached scheduler's name
    enable_seq: int | None
    by_schedc: Attachment | None = None
    stale: Attachment | None = None
    scx_loader: str | None = None  # scx_loader's CurrentScheduler, when it answers
    exit_reason: str | None = None  # the kernel log's last "disabled (...)" line

    @property
    def attached(self) -> bool:
        return self.state not in (None, "disabled")

    @property
    def owner(self) -> str:
        """`schedc`, `scx_loader`, `other` or `none`."""
        if not self.attached:
            return "none"
        if self.by_schedc is not None:
            return "schedc"
        if self.scx_loader:
            return "scx_loader"
        return "other"

    def to_json(self) -> dict[str, object]:
        return {
            "sched_ext": self.sched_ext,
            "state": self.state,
            "ops": self.ops,
            "enable_seq": self.enable_seq,
            "owner": self.owner,
            "attached_by_schedc": self.by_schedc.to_json() if self.by_schedc else None,
            "stale_record": self.stale.to_json() if self.stale else None,
            "scx_loader": self.scx_loader,
            "exit_reason": self.exit_reason,
        }


@dataclass(frozen=True)
class Host:
    """Where the kernel's files are seen: the real ones by default."""

    sysfs: Path = HOST_SYSFS
    run_dir: Path = RUN_DIR
    sysrq: Path = Path("/proc/sysrq-trigger")

    @property
    def sched_ext(self) -> Path:
        return self.sysfs / "kernel" / "sched_ext"

    @property
    def pins(self) -> Path:
        return self.sysfs / PIN_ROOT


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def read_record(host: Host) -> Attachment | None:
    raw = _read(host.run_dir / RECORD)
    if raw is None:
        return None
    try:
        return Attachment.from_json(json.loads(raw))
    except ValueError:
        return None


def _write_record(host: Host, attachment: Attachment) -> None:
    host.run_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = host.run_dir / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(attachment.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, host.run_dir / RECORD)


def _drop_record(host: Host) -> None:
    (host.run_dir / RECORD).unlink(missing_ok=True)


_DISABLED = re.compile(r"sched_ext: BPF scheduler \"([^\"]*)\" disabled \((.*)\)")


def exit_reason(ops: str | None = None) -> str | None:
    """The kernel log's last `sched_ext: BPF scheduler "NAME" disabled (REASON)` line (of
    `ops` when given), with the lines the kernel printed after it (the error's details)."""
    try:
        log = subprocess.run(
            ["dmesg"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    lines = log.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        m = _DISABLED.search(lines[i])
        if m and (ops is None or m.group(1) == ops):
            details = [
                re.sub(r"^\[[^\]]*\]\s*", "", line).strip()
                for line in lines[i + 1 : i + 4]
                if "sched_ext" in line
            ]
            return "; ".join([f"{m.group(1)}: {m.group(2)}", *details])
    return None


def scx_loader_current() -> str | None:
    """scx_loader's CurrentScheduler over the system bus (busctl), or None: no busctl, no
    bus, no scx_loader, or nothing running ("unknown")."""
    busctl = shutil.which("busctl")
    if busctl is None:
        return None
    service, path, iface = SCX_LOADER
    try:
        proc = subprocess.run(
            [busctl, "--system", "--json=short", "get-property", service, path, iface,
             "CurrentScheduler"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    name = data.get("data") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name and name != "unknown" else None


def _scx_loader_stop() -> bool:
    busctl = shutil.which("busctl")
    if busctl is None:
        return False
    service, path, iface = SCX_LOADER
    try:
        proc = subprocess.run(
            [busctl, "--system", "call", service, path, iface, "StopScheduler"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def host_status(
    host: Host | None = None, *, loader: Callable[[], str | None] | None = None
) -> HostStatus:
    """What is attached now (read only: nothing is changed, a stale record included)."""
    host = host or Host()
    if not host.sched_ext.is_dir():
        return HostStatus(False, None, None, None)
    state = _read(host.sched_ext / "state")
    ops = _read(host.sched_ext / "root" / "ops") or None
    seq = _int(_read(host.sched_ext / "enable_seq"))
    record = read_record(host)
    ours = (
        record is not None
        and state == "enabled"
        and ops == record.ops
        and (record.enable_seq is None or seq == record.enable_seq)
        and _our_pin(host, record.pin)
    )
    attached = state not in (None, "disabled")
    loader_name = (loader or scx_loader_current)() if attached and not ours else None
    reason = None
    if record is not None and not ours:
        reason = exit_reason(record.ops)
    return HostStatus(
        True,
        state,
        ops if attached else None,
        seq,
        by_schedc=record if ours else None,
        stale=None if ours else record,
        scx_loader=loader_name,
        exit_reason=reason,
    )


def _wait_state(host: Host, wanted: set[str], seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while True:
        state = _read(host.sched_ext / "state")
        if state in wanted or time.monotonic() >= deadline:
            return state
        time.sleep(0.05)


def _our_pin(host: Host, pin: str) -> bool:
    """Whether `pin` is one of schedc's pin folders: a real folder right under host.pins. A
    record naming anything else (another folder, a symbolic link) was not written by schedc,
    and nothing it names is ever removed."""
    path = Path(pin)
    if not pin or path.name == ".." or path.parent != host.pins:
        return False
    return path.is_dir() and not path.is_symlink()


def _remove_pins(folder: Path) -> None:
    """Unpin every link in `folder` (files of the BPF file system) and remove it."""
    if not folder.exists():
        return
    for pin in folder.iterdir():
        pin.unlink(missing_ok=True)
    folder.rmdir()


def _clean_stale(host: Host, status: HostStatus) -> None:
    """Forget a record the kernel no longer agrees with, and unpin what it pinned (only ever
    a folder of schedc's pins); an unreadable record is forgotten too."""
    if status.stale is not None:
        if _our_pin(host, status.stale.pin):
            _remove_pins(Path(status.stale.pin))
        _drop_record(host)
    elif status.by_schedc is None:
        _drop_record(host)  # not JSON, or not a record: nothing in it can be trusted


def detach(
    *,
    force: bool = False,
    host: Host | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    loader: Callable[[], str | None] | None = None,
) -> tuple[HostStatus, HostStatus]:
    """Detach what is attached: schedc's own by removing its pin; another tool's only with
    `force` (scx_loader's StopScheduler when it runs it, else SysRq-S). (before, after)."""
    host = host or Host()
    before = host_status(host, loader=loader)
    if not before.sched_ext:
        raise HostControlError(
            f"this kernel has no sched_ext ({host.sched_ext} is missing): nothing to stop"
        )
    _clean_stale(host, before)
    if not before.attached:
        return before, host_status(host, loader=loader)
    if before.by_schedc is not None:
        progress(f"detaching {before.by_schedc.policy} (scheduler {before.ops})")
        _remove_pins(Path(before.by_schedc.pin))
        _drop_record(host)
    elif not force:
        who = f"scx_loader's {before.scx_loader}" if before.scx_loader else "another tool"
        raise HostControlError(
            f"the attached scheduler '{before.ops}' was not attached by schedc ({who})",
            "stop it with the tool that started it, or pass --force (scx_loader's "
            "StopScheduler when it runs it, else SysRq-S, which switches every task back "
            "to the kernel's default scheduler)",
        )
    elif before.scx_loader and _scx_loader_stop():
        progress(f"asked scx_loader to stop {before.scx_loader}")
    else:
        progress(f"disabling '{before.ops}' with SysRq-S")
        try:
            host.sysrq.write_text("S", encoding="utf-8")
        except OSError as exc:
            raise HostControlError(
                f"cannot write {host.sysrq}: {exc.strerror}", "run as root"
            ) from None
    state = _wait_state(host, {"disabled"}, DISABLE_WAIT_S)
    after = host_status(host, loader=loader)
    if state != "disabled":
        raise HostControlError(
            f"'{before.ops}' is still attached {DISABLE_WAIT_S:g} s later (state: {state}): "
            "another process holds its link",
            "find it with `bpftool link show` and stop it",
        )
    return before, after


def preflight(settings: Settings, host: Host | None = None) -> None:
    """Raises HostControlError unless this machine can have a scheduler attached by schedc:
    a kernel with sched_ext and its BTF, root, the BPF file system, a new enough bpftool."""
    host = host or Host()
    trouble = host_kernel_problem(settings, attach=False, sysfs=host.sysfs)
    if trouble is not None:
        raise HostControlError(
            f"cannot attach on this machine: {trouble}",
            "run on a kernel with CONFIG_SCHED_CLASS_EXT=y, as root, with a bpftool >= 7.2 "
            "(SCHEDC_BPFTOOL); to try a policy without one, use `schedc verify --run` "
            "(the sandbox guest)",
        )


def refuse_attached(status: HostStatus) -> None:
    """Raises HostControlError when a scheduler is attached (for a run without --replace)."""
    if not status.attached:
        return
    if status.by_schedc is not None:
        whose = f"{status.by_schedc.policy}, by schedc"
    elif status.scx_loader:
        whose = f"by scx_loader: {status.scx_loader}"
    else:
        whose = "by another tool"
    raise HostControlError(
        f"a sched_ext scheduler is already attached: '{status.ops}' ({whose})",
        "stop it first (schedc stop), or pass --replace",
    )


def attach(
    obj: Path,
    attachment: Attachment,
    settings: Settings,
    *,
    replace: bool = False,
    settle_s: float = 1.0,
    host: Host | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    loader: Callable[[], str | None] | None = None,
) -> HostStatus:
    """Attach the compiled `obj` (the record's `ops`, `pin` and `enable_seq` are filled in here) and
    check that the kernel still runs it `settle_s` later. With `replace`, what is attached is
    detached first (as `detach(force=True)`); without it, an attached scheduler is an error."""
    host = host or Host()
    preflight(settings, host)
    before = host_status(host, loader=loader)
    if before.attached:
        if not replace:
            refuse_attached(before)
        detach(force=True, host=host, progress=progress, loader=loader)
    else:
        _clean_stale(host, before)
    bpftool = find_bpftool(settings)
    seq_before = _int(_read(host.sched_ext / "enable_seq"))
    host.pins.mkdir(parents=True, exist_ok=True)
    pin = host.pins / f"{_safe(attachment.policy)}-{os.getpid()}-{time.time_ns()}"
    pin.mkdir()
    progress(f"attaching {attachment.policy}")
    proc = subprocess.run(
        [bpftool, "struct_ops", "register", str(obj), str(pin)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        _remove_pins(pin)
        log = [line for line in (proc.stderr + proc.stdout).strip().splitlines() if line]
        raise HostControlError(
            f"the kernel did not accept {attachment.policy}: "
            + (log[-1] if log else f"bpftool exited {proc.returncode}"),
            "schedc verify shows the verifier's log for it",
            environment=False,
        )
    # Ours is the scheduler enabled after seq_before: its name is what the kernel shows.
    state = _wait_state(host, {"enabled", "disabled"}, ENABLE_WAIT_S)
    seq = _int(_read(host.sched_ext / "enable_seq"))
    ops = _read(host.sched_ext / "root" / "ops") or ""
    ours = state == "enabled" and seq != seq_before
    if ours:
        time.sleep(settle_s)  # the first ticks: an error or a stall shows here
        state = _read(host.sched_ext / "state")
        ours = state == "enabled" and _int(_read(host.sched_ext / "enable_seq")) == seq
    if not ours:
        _remove_pins(pin)
        reason = exit_reason()
        raise HostControlError(
            f"the kernel detached {attachment.policy} right after attaching it"
            + (f": {reason}" if reason else f" (state: {state})"),
            "schedc verify --run shows what it does in the sandbox guest",
            environment=False,
        )
    _write_record(host, dataclasses.replace(attachment, ops=ops, pin=str(pin), enable_seq=seq))
    return host_status(host, loader=loader)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64] or "scheduler"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
