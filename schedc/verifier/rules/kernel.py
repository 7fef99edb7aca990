"""What the kernel enforces on a sched_ext scheduler, as data: which callback may call which
kfunc, which callbacks may sleep, which kfuncs exist under which name in which kernel, and the
ops flags each kernel accepts.

Sources (see docs/checks.md): Linux 6.12 `kernel/sched/ext.c` (SCX_CALL_OP masks per callback,
scx_kf_allowed() per kfunc, bpf_scx_check_member, bpf_scx_init_member, validate_ops),
`include/linux/sched/ext.h` (enum scx_kf_mask), Linux 7.2 `kernel/sched/ext/{ext,idle,cid}.c`
(the kfunc ID sets and scx_kfunc_context_filter()), and the sched-ext/scx compat headers for
the 6.13 renames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
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


# ---- which callback may call which kfunc --------------------------------------------------------
#
# Checked against the kfunc ID sets of two kernel sources (CHECKED), and per kernel version: a
# target uses the table of the newest checked version not after it (6.13-7.1 use 6.12's, which
# may be out of date for them; nothing in between was checked, and a kfunc 6.12 lacks is not
# judged there).
#
#   Linux 6.12.117 (Debian linux-source-6.12): kernel/sched/ext.c, the sets
#     scx_kfunc_ids_{select_cpu,enqueue_dispatch,dispatch,cpu_release,unlocked,any} and each
#     kfunc's scx_kf_allowed() test (the masks SCX_CALL_OP*() sets per callback): checked at
#     run time, a wrong call ejects the scheduler.
#   Linux 7.2.13 (Debian linux-source-7.2): kernel/sched/ext/ext.c, idle.c and cid.c, the sets
#     scx_kfunc_ids_{select_cpu,enqueue_dispatch,dispatch,cpu_release,unlocked,init,idle,any,
#     cid} and scx_kfunc_context_filter() with its per-callback scx_kf_allow_flags[]: checked
#     by the verifier, a wrong call does not load. scx_bpf_task_cgroup() (in _any) checks at
#     run time that its task is one the callback was given (scx_kf_arg_task_ok()).
#
# tests/test_check_targets.py fails when a kit's BTF has a sched_ext kfunc this table lacks.

CHECKED: tuple[KernelVersion, ...] = ((6, 12), (7, 2))


def checked_version(target: KernelVersion) -> KernelVersion:
    """The checked source whose table applies to a target: the newest not after it."""
    return max((v for v in CHECKED if v <= target), default=CHECKED[0])


class Mask(Enum):
    """What the kernel allows while it runs a callback: 6.12's scx_kf_mask bits, 7.2's
    SCX_KF_ALLOW_* flags, and (TASK) whether it is called for a task."""

    SELECT_CPU = "select_cpu"
    ENQUEUE = "enqueue"
    DISPATCH = "dispatch"
    CPU_RELEASE = "cpu_release"
    REST = "rest"  # 6.12: any other callback called with the runqueue locked
    UNLOCKED = "unlocked"  # no runqueue lock held (6.12: SCX_KF_UNLOCKED, 7.2: ALLOW_UNLOCKED)
    INIT = "init"  # 7.2: SCX_KF_ALLOW_INIT (ops.init only)
    TASK = "task"  # 7.2: SCX_CALL_OP_TASK*(): the callback operates on a task (kf_tasks[])


_UNLOCKED_6_12 = (
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
_REST_6_12 = (
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
# 7.2's scx_kf_allow_flags[]: callbacks that may call context-sensitive kfuncs; any other
# callback may call only those of scx_kfunc_ids_any and _idle.
_UNLOCKED_7_2 = (
    "init_task",
    "dump",
    "cgroup_init",
    "cgroup_exit",
    "cgroup_prep_move",
    "cgroup_cancel_move",
    "cgroup_set_weight",
    "cgroup_set_bandwidth",
    "cgroup_set_idle",
    "sub_attach",
    "sub_detach",
    "cpu_online",
    "cpu_offline",
    "exit",
)
_TASK_7_2 = (  # the SCX_CALL_OP_TASK*() call sites (and scx_call_op_set_cpumask())
    "select_cpu",
    "enqueue",
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
    "enable",
    "disable",
    "exit_task",
    "cgroup_move",
)


def _masks_7_2() -> dict[str, frozenset[Mask]]:
    masks: dict[str, set[Mask]] = {
        "select_cpu": {Mask.SELECT_CPU, Mask.ENQUEUE},
        "enqueue": {Mask.SELECT_CPU, Mask.ENQUEUE},
        "dispatch": {Mask.ENQUEUE, Mask.DISPATCH},
        "cpu_release": {Mask.CPU_RELEASE},
        "init": {Mask.UNLOCKED, Mask.INIT},
        **{name: {Mask.UNLOCKED} for name in _UNLOCKED_7_2},
    }
    for name in _TASK_7_2:
        masks.setdefault(name, set()).add(Mask.TASK)
    # sched_ext_ops_cid's callbacks sit at the offsets of these (the filter indexes its table
    # by offset, SCX_MOFF_IDX), so they allow what those allow.
    for cid_name, cpu_name in _CID_CALLBACKS:
        masks[cid_name] = set(masks.get(cpu_name, set()))
    return {name: frozenset(m) for name, m in masks.items()}


_CID_CALLBACKS = (
    ("select_cid", "select_cpu"),
    ("set_cmask", "set_cpumask"),
    ("dump_cid", "dump_cpu"),
    ("cid_online", "cpu_online"),
    ("cid_offline", "cpu_offline"),
)


# Per checked version: callback → what it allows. 6.12: SCX_CALL_OP*(mask, op) in ext.c.
CALLBACK_MASKS: dict[KernelVersion, dict[str, frozenset[Mask]]] = {
    (6, 12): {
        "select_cpu": frozenset({Mask.SELECT_CPU, Mask.ENQUEUE}),
        "enqueue": frozenset({Mask.ENQUEUE}),
        "dispatch": frozenset({Mask.DISPATCH}),
        "cpu_release": frozenset({Mask.CPU_RELEASE}),
        **{name: frozenset({Mask.REST}) for name in _REST_6_12},
        **{name: frozenset({Mask.UNLOCKED}) for name in _UNLOCKED_6_12},
    },
    (7, 2): _masks_7_2(),
}
_LOCKED = frozenset({Mask.SELECT_CPU, Mask.ENQUEUE, Mask.DISPATCH, Mask.CPU_RELEASE, Mask.REST})

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

# A bpf_timer callback runs without a runqueue lock and is not sleepable. (7.2's verifier
# judges it with the flags of the callback whose program arms the timer; schedulers arm timers
# in ops.init, an unlocked callback, so the table takes it as one.)
TIMER_ROOT = "timer callback"


class Allowed(Enum):
    """Where a kfunc may be called."""

    SELECT_CPU = "ops.select_cpu"
    SELECT_CPU_OR_UNLOCKED = "ops.select_cpu, ops.enqueue and callbacks that hold no runqueue lock"
    ENQUEUE_DISPATCH = "ops.select_cpu, ops.enqueue and ops.dispatch"
    DISPATCH = "ops.dispatch"
    DISPATCH_OR_UNLOCKED = "ops.dispatch and callbacks that hold no runqueue lock"
    CPU_RELEASE = "ops.cpu_release"
    UNLOCKED = "callbacks that hold no runqueue lock (ops.init, ops.init_task, ops.exit, ...)"
    INIT = "ops.init"
    RQ_LOCKED = "callbacks that hold the runqueue lock"
    TASK = "callbacks the kernel calls for that task (ops.enqueue, ops.running, ...)"
    ANY = "any callback"


_NEEDS: dict[Allowed, frozenset[Mask]] = {  # a callback allowing any of these may call it
    Allowed.SELECT_CPU: frozenset({Mask.SELECT_CPU}),
    Allowed.SELECT_CPU_OR_UNLOCKED: frozenset({Mask.SELECT_CPU, Mask.UNLOCKED}),
    Allowed.ENQUEUE_DISPATCH: frozenset({Mask.ENQUEUE, Mask.DISPATCH}),
    Allowed.DISPATCH: frozenset({Mask.DISPATCH}),
    Allowed.DISPATCH_OR_UNLOCKED: frozenset({Mask.DISPATCH, Mask.UNLOCKED}),
    Allowed.CPU_RELEASE: frozenset({Mask.CPU_RELEASE}),
    Allowed.UNLOCKED: frozenset({Mask.UNLOCKED}),
    Allowed.INIT: frozenset({Mask.INIT}),
    Allowed.RQ_LOCKED: _LOCKED,
    Allowed.TASK: frozenset({Mask.TASK}),
}


def allows(allowed: Allowed, callback: str, target: KernelVersion = (6, 12)) -> bool:
    """Whether a kfunc with this restriction may run from this callback (or TIMER_ROOT) on a
    target kernel. A callback 6.12's table does not know (newer kernels): no opinion; 7.2's
    kernel lets a callback it does not list call only unrestricted kfuncs."""
    if allowed is Allowed.ANY:
        return True
    version = checked_version(target)
    masks = CALLBACK_MASKS[version]
    if callback == TIMER_ROOT:
        mask = frozenset({Mask.UNLOCKED})
    elif callback in masks:
        mask = masks[callback]
    elif version == (6, 12):
        return True
    else:
        mask = frozenset()
    return bool(mask & _NEEDS[allowed])


# ---- kfuncs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Where a kfunc may run on one checked kernel, and how that kernel enforces it."""

    allowed: Allowed
    sleepable: bool = False  # KF_SLEEPABLE: only in sleepable programs (struct_ops.s/)
    at_load: bool = False  # the verifier refuses the program (7.2), else a run-time error


@dataclass(frozen=True)
class Kfunc:
    name: str
    contexts: tuple[tuple[KernelVersion, Context], ...]  # per checked source version
    seen_in: tuple[KernelVersion, ...] = ()  # the checked sources whose ID sets list it
    since: KernelVersion = (6, 12)  # for renamed kfuncs: the version the name came in
    deprecated: KernelVersion | None = None  # the kernel warns once per boot from here on
    removed: KernelVersion | None = None
    other_name: str | None = None  # the name of the same kfunc before or after the rename

    def context(self, target: KernelVersion) -> Context | None:
        """Where it may run on a target: by the newest checked table not after the target.
        None when no such table has it (a kfunc newer than that source is not judged there;
        one the kernel lacks is K050's business)."""
        before = [(v, c) for v, c in self.contexts if v <= target]
        return max(before, key=lambda vc: vc[0])[1] if before else None


_RUN = Context  # 6.12: scx_kf_allowed() at run time


def _load(allowed: Allowed, sleepable: bool = False) -> Context:
    return Context(allowed, sleepable, at_load=True)


_ANY = Context(Allowed.ANY)

# Linux 6.12: every kfunc of the six sets; those not listed here are in scx_kfunc_ids_any.
_RESTRICTED_6_12: dict[str, Context] = {
    "scx_bpf_select_cpu_dfl": _RUN(Allowed.SELECT_CPU),
    "scx_bpf_dispatch": _RUN(Allowed.ENQUEUE_DISPATCH),
    "scx_bpf_dispatch_vtime": _RUN(Allowed.ENQUEUE_DISPATCH),
    "scx_bpf_dispatch_nr_slots": _RUN(Allowed.DISPATCH),
    "scx_bpf_dispatch_cancel": _RUN(Allowed.DISPATCH),
    "scx_bpf_consume": _RUN(Allowed.DISPATCH),
    "scx_bpf_dispatch_from_dsq_set_slice": _RUN(Allowed.DISPATCH_OR_UNLOCKED),
    "scx_bpf_dispatch_from_dsq_set_vtime": _RUN(Allowed.DISPATCH_OR_UNLOCKED),
    "scx_bpf_dispatch_from_dsq": _RUN(Allowed.DISPATCH_OR_UNLOCKED),
    "scx_bpf_dispatch_vtime_from_dsq": _RUN(Allowed.DISPATCH_OR_UNLOCKED),
    "scx_bpf_reenqueue_local": _RUN(Allowed.CPU_RELEASE),
    "scx_bpf_create_dsq": Context(Allowed.ANY, sleepable=True, at_load=True),
    "scx_bpf_task_cgroup": _RUN(Allowed.RQ_LOCKED),
}
_ANY_6_12 = (
    "scx_bpf_kick_cpu",
    "scx_bpf_dsq_nr_queued",
    "scx_bpf_destroy_dsq",
    "bpf_iter_scx_dsq_new",
    "bpf_iter_scx_dsq_next",
    "bpf_iter_scx_dsq_destroy",
    "scx_bpf_exit_bstr",
    "scx_bpf_error_bstr",
    "scx_bpf_dump_bstr",
    "scx_bpf_cpuperf_cap",
    "scx_bpf_cpuperf_cur",
    "scx_bpf_cpuperf_set",
    "scx_bpf_nr_cpu_ids",
    "scx_bpf_get_possible_cpumask",
    "scx_bpf_get_online_cpumask",
    "scx_bpf_put_cpumask",
    "scx_bpf_get_idle_cpumask",
    "scx_bpf_get_idle_smtmask",
    "scx_bpf_put_idle_cpumask",
    "scx_bpf_test_and_clear_cpu_idle",
    "scx_bpf_pick_idle_cpu",
    "scx_bpf_pick_any_cpu",
    "scx_bpf_task_running",
    "scx_bpf_task_cpu",
    "scx_bpf_cpu_rq",
)

# Linux 7.2: the verifier's filter. A kfunc in several sets may run where any of them allows.
_RESTRICTED_7_2: dict[str, Context] = {
    **{  # scx_kfunc_ids_select_cpu and _unlocked
        name: _load(Allowed.SELECT_CPU_OR_UNLOCKED)
        for name in ("scx_bpf_select_cpu_dfl", "scx_bpf_select_cpu_and", "__scx_bpf_select_cpu_and")
    },
    **{  # scx_kfunc_ids_enqueue_dispatch
        name: _load(Allowed.ENQUEUE_DISPATCH)
        for name in (
            "scx_bpf_dsq_insert",
            "scx_bpf_dsq_insert___v2",
            "scx_bpf_dsq_insert_vtime",
            "__scx_bpf_dsq_insert_vtime",
        )
    },
    **{  # scx_kfunc_ids_dispatch
        name: _load(Allowed.DISPATCH)
        for name in (
            "scx_bpf_dispatch_nr_slots",
            "scx_bpf_dispatch_cancel",
            "scx_bpf_dsq_move_to_local",
            "scx_bpf_dsq_move_to_local___v2",
            "scx_bpf_sub_dispatch",
        )
    },
    **{  # scx_kfunc_ids_dispatch and _unlocked
        name: _load(Allowed.DISPATCH_OR_UNLOCKED)
        for name in (
            "scx_bpf_dsq_move_set_slice",
            "scx_bpf_dsq_move_set_vtime",
            "scx_bpf_dsq_move",
            "scx_bpf_dsq_move_vtime",
        )
    },
    "scx_bpf_reenqueue_local": _load(Allowed.CPU_RELEASE),  # scx_kfunc_ids_cpu_release
    "scx_bpf_create_dsq": _load(Allowed.UNLOCKED, sleepable=True),  # scx_kfunc_ids_unlocked
    "scx_bpf_cid_override": _load(Allowed.INIT, sleepable=True),  # scx_kfunc_ids_init
    "scx_bpf_task_cgroup": _RUN(Allowed.TASK),  # _any, with scx_kf_arg_task_ok()
}
_ANY_7_2 = (  # scx_kfunc_ids_any, _idle and _cid
    "scx_bpf_task_set_slice",
    "scx_bpf_task_set_dsq_vtime",
    "scx_bpf_kick_cpu",
    "scx_bpf_kick_cid",
    "scx_bpf_dsq_nr_queued",
    "scx_bpf_destroy_dsq",
    "scx_bpf_dsq_peek",
    "scx_bpf_dsq_reenq",
    "scx_bpf_reenqueue_local___v2",
    "bpf_iter_scx_dsq_new",
    "bpf_iter_scx_dsq_next",
    "bpf_iter_scx_dsq_destroy",
    "scx_bpf_exit_bstr",
    "scx_bpf_error_bstr",
    "scx_bpf_dump_bstr",
    "scx_bpf_cpuperf_cap",
    "scx_bpf_cpuperf_cur",
    "scx_bpf_cpuperf_set",
    "scx_bpf_cidperf_cap",
    "scx_bpf_cidperf_cur",
    "scx_bpf_cidperf_set",
    "scx_bpf_nr_node_ids",
    "scx_bpf_nr_cpu_ids",
    "scx_bpf_nr_cids",
    "scx_bpf_nr_online_cids",
    "scx_bpf_this_cid",
    "scx_bpf_get_possible_cpumask",
    "scx_bpf_get_online_cpumask",
    "scx_bpf_put_cpumask",
    "scx_bpf_task_running",
    "scx_bpf_task_cpu",
    "scx_bpf_task_cid",
    "scx_bpf_cpu_rq",
    "scx_bpf_locked_rq",
    "scx_bpf_cpu_curr",
    "scx_bpf_cid_curr",
    "scx_bpf_tid_to_task",
    "scx_bpf_now",
    "scx_bpf_events",
    "scx_bpf_cpu_node",
    "scx_bpf_get_idle_cpumask_node",
    "scx_bpf_get_idle_cpumask",
    "scx_bpf_get_idle_smtmask_node",
    "scx_bpf_get_idle_smtmask",
    "scx_bpf_put_idle_cpumask",
    "scx_bpf_test_and_clear_cpu_idle",
    "scx_bpf_pick_idle_cpu_node",
    "scx_bpf_pick_idle_cpu",
    "scx_bpf_pick_any_cpu_node",
    "scx_bpf_pick_any_cpu",
    "scx_bpf_cid_to_cpu",
    "scx_bpf_cpu_to_cid",
    "scx_bpf_cid_topo",
)

_SETS: dict[KernelVersion, dict[str, Context]] = {
    (6, 12): {**_RESTRICTED_6_12, **{name: _ANY for name in _ANY_6_12}},
    (7, 2): {**_RESTRICTED_7_2, **{name: _ANY for name in _ANY_7_2}},
}

_RENAMED_IN = (6, 13)
_OLD_NAMES_REMOVED = (6, 17)
_RENAMES = [  # (6.12 name, 6.13+ name)
    ("scx_bpf_dispatch", "scx_bpf_dsq_insert"),
    ("scx_bpf_dispatch_vtime", "scx_bpf_dsq_insert_vtime"),
    ("scx_bpf_consume", "scx_bpf_dsq_move_to_local"),
    ("scx_bpf_dispatch_from_dsq", "scx_bpf_dsq_move"),
    ("scx_bpf_dispatch_vtime_from_dsq", "scx_bpf_dsq_move_vtime"),
    ("scx_bpf_dispatch_from_dsq_set_slice", "scx_bpf_dsq_move_set_slice"),
    ("scx_bpf_dispatch_from_dsq_set_vtime", "scx_bpf_dsq_move_set_vtime"),
]


def _table() -> dict[str, Kfunc]:
    contexts: dict[str, list[tuple[KernelVersion, Context]]] = {}
    for version, kfuncs in _SETS.items():
        for name, context in kfuncs.items():
            contexts.setdefault(name, []).append((version, context))
    table = {
        name: Kfunc(name, tuple(found), seen_in=tuple(v for v, _ in found))
        for name, found in contexts.items()
    }
    for old, new in _RENAMES:
        table[old] = replace(
            table[old], deprecated=_RENAMED_IN, removed=_OLD_NAMES_REMOVED, other_name=new
        )
        # 6.13-7.1 (no checked source of theirs) judge the new name as 6.12 judged the old one
        inherited = ((6, 12), dict(table[old].contexts)[(6, 12)])
        table[new] = replace(
            table[new],
            contexts=(inherited, *table[new].contexts),
            since=_RENAMED_IN,
            other_name=old,
        )
    # 6.19's second scx_bpf_reenqueue_local (a ksym of its own, `___v2` in the BTF) may be
    # called from anywhere (scx compat.bpf.h: "v6.19 ... callable from anywhere").
    v2 = "scx_bpf_reenqueue_local___v2"
    table[v2] = replace(table[v2], since=(6, 19))
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
