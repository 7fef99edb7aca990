"""What the kernel enforces on a sched_ext scheduler, as data: which callback may call which
kfunc, which callbacks may sleep, which kfuncs exist under which name in which kernel, and the
ops flags each kernel accepts.

Sources (see docs/checks.md): Linux 6.12 `kernel/sched/ext.c` (SCX_CALL_OP masks per callback,
scx_kf_allowed() per kfunc, bpf_scx_check_member, bpf_scx_init_member, validate_ops),
`include/linux/sched/ext.h` (enum scx_kf_mask), and the sched-ext/scx compat headers for the
6.13 renames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from schedc.verifier.btf import KernelFacts

KernelVersion = tuple[int, int]

MIN_KERNEL: KernelVersion = (6, 12)
DEFAULT_TARGET: KernelVersion = (6, 12)


def parse_kernel_version(text: str) -> KernelVersion:
    """`6.12` → (6, 12). Raises ValueError for anything else or anything before 6.12."""
    m = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    if not m:
        raise ValueError(f"'{text}' is not a kernel version like 6.12 or 6.13")
    version = (int(m.group(1)), int(m.group(2)))
    if version < MIN_KERNEL:
        raise ValueError(f"sched_ext exists from Linux 6.12 on; '{text}' is older")
    return version


def version_text(version: KernelVersion) -> str:
    return f"{version[0]}.{version[1]}"


def release_version(release: str) -> KernelVersion | None:
    """`7.2.13` (a kernel release) → (7, 2); None for text that does not start like one."""
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class Target:
    """A kernel a policy is checked for: its version, how findings name it (a release such as
    7.2.13, or just the version), and what its BTF says, when a BTF is known. Without facts the
    rules use the tables below (what the versions say); with them, the BTF decides which kfuncs,
    ops members and ops flags exist."""

    version: KernelVersion
    kernel: str = ""
    facts: KernelFacts | None = None

    @property
    def name(self) -> str:
        return self.kernel or version_text(self.version)

    def to_json(self) -> dict[str, object]:
        facts = self.facts.to_json() if self.facts is not None else None
        return {"version": version_text(self.version), "kernel": self.name, "facts": facts}

    @staticmethod
    def from_json(data: dict[str, object]) -> Target:
        facts = data.get("facts")
        return Target(
            parse_kernel_version(str(data["version"])),
            str(data.get("kernel") or ""),
            KernelFacts.from_json(facts) if isinstance(facts, dict) else None,
        )


# ---- callbacks --------------------------------------------------------------------------------


class Mask(Enum):
    """The scx_kf_mask bits the kernel sets while it runs a callback."""

    SELECT_CPU = "select_cpu"
    ENQUEUE = "enqueue"
    DISPATCH = "dispatch"
    CPU_RELEASE = "cpu_release"
    REST = "rest"  # any other callback called with the runqueue locked


# SCX_CALL_OP*(mask, op) in ext.c; an empty set is SCX_KF_UNLOCKED (no runqueue lock held).
CALLBACK_MASKS: dict[str, frozenset[Mask]] = {
    "select_cpu": frozenset({Mask.SELECT_CPU, Mask.ENQUEUE}),
    "enqueue": frozenset({Mask.ENQUEUE}),
    "dispatch": frozenset({Mask.DISPATCH}),
    "cpu_release": frozenset({Mask.CPU_RELEASE}),
    **{
        name: frozenset({Mask.REST})
        for name in (
            "dequeue",
            "tick",
            "runnable",
            "running",
            "stopping",
            "quiescent",
            "yield",
            "core_sched_before",
            "set_weight",
            "set_cpumask",
            "update_idle",
            "cpu_acquire",
            "enable",
            "disable",
            "exit_task",
            "dump_cpu",
            "dump_task",
        )
    },
    **{
        name: frozenset()
        for name in (
            "init_task",
            "cgroup_init",
            "cgroup_exit",
            "cgroup_prep_move",
            "cgroup_move",
            "cgroup_cancel_move",
            "cgroup_set_weight",
            "cpu_online",
            "cpu_offline",
            "init",
            "exit",
            "dump",
        )
    },
}

# bpf_scx_check_member(): the only callbacks whose programs may be sleepable (struct_ops.s/).
SLEEPABLE_CALLBACKS = frozenset(
    {
        "init_task",
        "cgroup_init",
        "cgroup_exit",
        "cgroup_prep_move",
        "cpu_online",
        "cpu_offline",
        "init",
        "exit",
    }
)

# Called for every wakeup, enqueue, dispatch or context switch: no tracing here.
HOT_CALLBACKS = frozenset(
    {
        "select_cpu",
        "enqueue",
        "dequeue",
        "dispatch",
        "tick",
        "runnable",
        "running",
        "stopping",
        "quiescent",
        "yield",
        "core_sched_before",
        "update_idle",
    }
)

TIMER_ROOT = "timer callback"  # a bpf_timer callback: runs without a runqueue lock, not sleepable

# ---- kfuncs -------------------------------------------------------------------------------------


class Allowed(Enum):
    """Where a kfunc may be called (scx_kf_allowed() and KF_SLEEPABLE in ext.c)."""

    SELECT_CPU = "ops.select_cpu"
    ENQUEUE_DISPATCH = "ops.select_cpu, ops.enqueue and ops.dispatch"
    DISPATCH = "ops.dispatch"
    DISPATCH_OR_UNLOCKED = "ops.dispatch and callbacks that hold no runqueue lock"
    CPU_RELEASE = "ops.cpu_release"
    RQ_LOCKED = "callbacks that hold the runqueue lock"
    SLEEPABLE = "sleepable programs (struct_ops.s/: ops.init, ops.init_task, ...)"
    ANY = "any callback"


def allows(allowed: Allowed, callback: str) -> bool:
    """Whether a kfunc with this restriction may run from this callback (or TIMER_ROOT)."""
    if allowed in (Allowed.ANY, Allowed.SLEEPABLE):
        return True  # sleepability is a property of the program, checked separately
    mask = CALLBACK_MASKS.get(callback, frozenset()) if callback != TIMER_ROOT else frozenset()
    if callback not in CALLBACK_MASKS and callback != TIMER_ROOT:
        return True  # a callback this table does not know (newer kernels): no opinion
    if allowed is Allowed.SELECT_CPU:
        return Mask.SELECT_CPU in mask
    if allowed is Allowed.ENQUEUE_DISPATCH:
        return bool(mask & {Mask.ENQUEUE, Mask.DISPATCH})
    if allowed is Allowed.DISPATCH:
        return Mask.DISPATCH in mask
    if allowed is Allowed.DISPATCH_OR_UNLOCKED:
        return Mask.DISPATCH in mask or not mask
    if allowed is Allowed.CPU_RELEASE:
        return Mask.CPU_RELEASE in mask
    return bool(mask)  # RQ_LOCKED


@dataclass(frozen=True)
class Kfunc:
    name: str
    allowed: Allowed
    since: KernelVersion = (6, 12)
    deprecated: KernelVersion | None = None  # the kernel warns once per boot from here on
    removed: KernelVersion | None = None
    other_name: str | None = None  # the name of the same kfunc before or after the rename


_RENAMED_IN = (6, 13)
_OLD_NAMES_REMOVED = (6, 17)
_RENAMES = [  # (6.12 name, 6.13+ name, where it may be called)
    ("scx_bpf_dispatch", "scx_bpf_dsq_insert", Allowed.ENQUEUE_DISPATCH),
    ("scx_bpf_dispatch_vtime", "scx_bpf_dsq_insert_vtime", Allowed.ENQUEUE_DISPATCH),
    ("scx_bpf_consume", "scx_bpf_dsq_move_to_local", Allowed.DISPATCH),
    ("scx_bpf_dispatch_from_dsq", "scx_bpf_dsq_move", Allowed.DISPATCH_OR_UNLOCKED),
    ("scx_bpf_dispatch_vtime_from_dsq", "scx_bpf_dsq_move_vtime", Allowed.DISPATCH_OR_UNLOCKED),
    (
        "scx_bpf_dispatch_from_dsq_set_slice",
        "scx_bpf_dsq_move_set_slice",
        Allowed.DISPATCH_OR_UNLOCKED,
    ),
    (
        "scx_bpf_dispatch_from_dsq_set_vtime",
        "scx_bpf_dsq_move_set_vtime",
        Allowed.DISPATCH_OR_UNLOCKED,
    ),
]

_RESTRICTED = {
    "scx_bpf_select_cpu_dfl": Allowed.SELECT_CPU,
    "scx_bpf_dispatch_nr_slots": Allowed.DISPATCH,
    "scx_bpf_dispatch_cancel": Allowed.DISPATCH,
    "scx_bpf_reenqueue_local": Allowed.CPU_RELEASE,
    "scx_bpf_create_dsq": Allowed.SLEEPABLE,
    "scx_bpf_task_cgroup": Allowed.RQ_LOCKED,
}


def _table() -> dict[str, Kfunc]:
    table = {name: Kfunc(name, allowed) for name, allowed in _RESTRICTED.items()}
    for old, new, allowed in _RENAMES:
        table[old] = Kfunc(
            old, allowed, deprecated=_RENAMED_IN, removed=_OLD_NAMES_REMOVED, other_name=new
        )
        table[new] = Kfunc(new, allowed, since=_RENAMED_IN, other_name=old)
    # 6.19's second scx_bpf_reenqueue_local (a ksym of its own, `___v2` in the BTF) may be
    # called from anywhere (scx compat.bpf.h: "v6.19 ... callable from anywhere").
    table["scx_bpf_reenqueue_local___v2"] = Kfunc(
        "scx_bpf_reenqueue_local___v2", Allowed.ANY, since=(6, 19)
    )
    return table


KFUNCS: dict[str, Kfunc] = _table()

INSERT_KFUNCS = frozenset({"scx_bpf_dispatch", "scx_bpf_dsq_insert"})
INSERT_VTIME_KFUNCS = frozenset({"scx_bpf_dispatch_vtime", "scx_bpf_dsq_insert_vtime"})
DRAIN_KFUNCS = frozenset({"scx_bpf_consume", "scx_bpf_dsq_move_to_local"})
MOVE_KFUNCS = frozenset(
    {
        "scx_bpf_dispatch_from_dsq",
        "scx_bpf_dispatch_vtime_from_dsq",
        "scx_bpf_dsq_move",
        "scx_bpf_dsq_move_vtime",
    }
)
# 7.1's scx_bpf_dsq_reenq(dsq_id, flags) re-enqueues a DSQ's tasks (through ops.enqueue):
# a DSQ it is given is drained.
REENQ_KFUNCS = frozenset({"scx_bpf_dsq_reenq"})
CREATE_DSQ = "scx_bpf_create_dsq"
DSQ_ITER_NEW = "bpf_iter_scx_dsq_new"

SCX_DSQ_FLAG_BUILTIN = 1 << 63
BUILTIN_DSQS = {(1 << 63) | 1: "SCX_DSQ_GLOBAL", (1 << 63) | 2: "SCX_DSQ_LOCAL"}

# Helpers and kfuncs that return NULL when there is nothing (the verifier insists on a check).
NULLABLE_LOOKUPS = frozenset(
    {
        "bpf_map_lookup_elem",
        "bpf_map_lookup_percpu_elem",
        "bpf_task_storage_get",
        "bpf_cgrp_storage_get",
        "bpf_inode_storage_get",
        "bpf_sk_storage_get",
    }
)
PRINTK_HELPERS = frozenset({"bpf_trace_printk", "bpf_trace_vprintk"})
TIMER_SET_CALLBACK = "bpf_timer_set_callback"


def kernel_symbol(name: str) -> str:
    """The name libbpf looks a ksym up by: it drops only the last `___flavour`
    (`scx_bpf_reenqueue_local___v2___compat` → `scx_bpf_reenqueue_local___v2`, a FUNC of 7.x's
    BTF), as bpf_core_essential_name_len() does."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return name[: i + 1]
    return name


def essential_name(name: str) -> str:
    """A kfunc's kernel name: libbpf drops a `___flavour` suffix (`foo___new` → `foo`) when it
    resolves ksyms, so one object can declare several flavours of a kfunc."""
    while True:
        m = re.search(r"[^_]___[^_][A-Za-z0-9_]*$", name)
        if not m:
            return name
        name = name[: m.start() + 1]


# ---- ops flags (enum scx_ops_flags) -------------------------------------------------------------

OPS_FLAGS: list[tuple[str, int, KernelVersion]] = [
    ("SCX_OPS_KEEP_BUILTIN_IDLE", 1 << 0, (6, 12)),
    ("SCX_OPS_ENQ_LAST", 1 << 1, (6, 12)),
    ("SCX_OPS_ENQ_EXITING", 1 << 2, (6, 12)),
    ("SCX_OPS_SWITCH_PARTIAL", 1 << 3, (6, 12)),
    ("SCX_OPS_ENQ_MIGRATION_DISABLED", 1 << 4, (6, 14)),
    ("SCX_OPS_ALLOW_QUEUED_WAKEUP", 1 << 5, (6, 15)),
    ("SCX_OPS_BUILTIN_IDLE_PER_NODE", 1 << 6, (6, 15)),
    ("SCX_OPS_HAS_CGROUP_WEIGHT", 1 << 16, (6, 12)),
]
SCX_OPS_ENQ_LAST = 1 << 1
OPS_NAME_LEN = 128  # SCX_OPS_NAME_LEN
WATCHDOG_MAX_MS = 30_000  # SCX_WATCHDOG_MAX_TIMEOUT
INT_MAX = 2**31 - 1


def known_ops_flags(target: KernelVersion) -> int:
    mask = 0
    for _, bit, since in OPS_FLAGS:
        if since <= target:
            mask |= bit
    return mask


def flag_name(bit: int) -> str:
    return next((name for name, value, _ in OPS_FLAGS if value == bit), hex(bit))


def flag_since(bit: int) -> KernelVersion | None:
    for _, value, since in OPS_FLAGS:
        if value == bit:
            return since
    return None


# license_is_gpl_compatible() in include/linux/license.h
GPL_COMPATIBLE = frozenset(
    {"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL"}
)
