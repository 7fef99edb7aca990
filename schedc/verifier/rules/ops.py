"""Rules on what the kernel reads when it loads a scheduler: the license, the sched_ext_ops
definition, its fields, and the programs its callbacks point to."""

from __future__ import annotations

import re
from collections.abc import Callable

from clang import cindex as ci
from clang.cindex import CursorKind as CK
from clang.cindex import TypeKind

from schedc.diagnostics import Diagnostic
from schedc.verifier.rules.base import CheckContext
from schedc.verifier.rules.clang import (
    BodyIndex,
    const_int,
    const_str,
    referenced_name,
    section_of,
    strip,
)
from schedc.verifier.rules.kernel import (
    GPL_COMPATIBLE,
    INT_MAX,
    OPS_NAME_LEN,
    SCX_OPS_ENQ_LAST,
    SLEEPABLE_CALLBACKS,
    WATCHDOG_MAX_MS,
    flag_name,
    flag_since,
    known_ops_flags,
    version_text,
)
from schedc.verifier.rules.model import Function, OpsMember, OpsStruct

STRUCT_OPS_SECTIONS = (".struct_ops", ".struct_ops.link")
_U64_POINTEE_KINDS = (TypeKind.ULONGLONG, TypeKind.LONGLONG, TypeKind.ULONG, TypeKind.LONG)


# ---- license ------------------------------------------------------------------------------


def _licenses(ctx: CheckContext) -> list[ci.Cursor]:
    return [c for c in ctx.model.top if c.kind == CK.VAR_DECL and section_of(c) == "license"]


def linked_unit(ctx: CheckContext) -> bool:
    """A file with no sched_ext_ops and no struct_ops program is one unit of a scheduler built
    from several objects that are linked (`bpftool gen object`; scx_wd40, scx_layered's
    timer.bpf.c, scx_rusty's sdt_alloc.bpf.c, which has a license of its own): no loader loads
    it on its own, so K001 and K003 do not apply."""
    if ctx.model.ops:
        return False
    return not any(
        c.kind == CK.FUNCTION_DECL and (section_of(c) or "").startswith("struct_ops")
        for c in ctx.model.top
    )


def check_license(ctx: CheckContext) -> list[Diagnostic]:
    licenses = _licenses(ctx)
    if not licenses and linked_unit(ctx):
        return []
    if not licenses:
        return [
            ctx.diag(
                "K001",
                "no license: the sched_ext kfuncs are GPL-only, so the kernel refuses to "
                "load a program that does not declare a GPL-compatible license",
                None,
                'add: char _license[] SEC("license") = "GPL";',
            )
        ]
    diags = []
    for decl in licenses:
        value = _initializer_string(decl)
        if value is not None and value not in GPL_COMPATIBLE:
            diags.append(
                ctx.diag(
                    "K002",
                    f'license "{value}" is not GPL-compatible: the kernel rejects calls to '
                    "the GPL-only sched_ext kfuncs from this program",
                    decl,
                    'use "GPL" (or "Dual BSD/GPL", "Dual MIT/GPL", "GPL v2")',
                )
            )
    return diags


def _initializer_string(decl: ci.Cursor) -> str | None:
    for child in decl.get_children():
        if child.kind not in (CK.UNEXPOSED_ATTR, CK.TYPE_REF):
            return const_str(strip(child))
    return None


# ---- sched_ext_ops ------------------------------------------------------------------------


def check_ops(ctx: CheckContext) -> list[Diagnostic]:
    if not ctx.model.ops and not linked_unit(ctx):
        return [
            ctx.diag(
                "K003",
                "no struct sched_ext_ops is defined: there is no scheduler to load",
                None,
                'define one: SEC(".struct_ops.link") struct sched_ext_ops my_ops = { .enqueue = '
                '(void *)my_enqueue, ..., .name = "my_sched" };',
            )
        ]
    diags: list[Diagnostic] = []
    for ops in ctx.model.ops:
        missing = _ops_type_missing(ctx, ops)
        if missing is not None:
            diags.append(missing)
            continue
        diags += _ops_members_missing(ctx, ops)
        diags += _ops_section(ctx, ops)
        diags += _ops_name(ctx, ops)
        diags += _ops_flags(ctx, ops)
        diags += _ops_ranges(ctx, ops)
    return diags


def _ops_type_missing(ctx: CheckContext, ops: OpsStruct) -> Diagnostic | None:
    """K003 from the target's BTF: an ops struct of a type that kernel has no struct_ops for
    (7.x's `struct sched_ext_ops_cid` on 6.12)."""
    if ctx.facts is None or ops.type_name in ctx.facts.ops:
        return None
    known = ", ".join(f"struct {n}" for n in sorted(ctx.facts.ops))
    return ctx.diag(
        "K003",
        f"{ops.name} is a struct {ops.type_name}, which Linux {ctx.kernel_name} does not have "
        f"(its BTF has {known}): there is no scheduler to load there",
        ops.decl,
        f"define a struct sched_ext_ops for Linux {ctx.kernel_name}, or check for a newer kernel",
    )


def _ops_members_missing(ctx: CheckContext, ops: OpsStruct) -> list[Diagnostic]:
    """K008: libbpf matches ops members by name with the kernel's struct and refuses to load
    when a member the object sets (non-zero) is not in the kernel's struct."""
    if ctx.facts is None:
        return []
    have = set(ctx.facts.ops.get(ops.type_name, ()))
    diags = []
    for member in ops.members.values():
        if member.name in have or _is_zero(member.value):
            continue
        diags.append(
            ctx.diag(
                "K008",
                f"{ops.name} sets .{member.name}, but Linux {ctx.kernel_name}'s struct "
                f"{ops.type_name} has no such member (its BTF): libbpf refuses to load "
                f'the object there ("member {member.name} not found in kernel")',
                member.value,
                f"leave .{member.name} out for this kernel, or NULL it at load time when the "
                "kernel lacks it (scx's SCX_OPS_OPEN does)",
            )
        )
    return diags


def _is_zero(value: ci.Cursor) -> bool:
    """`0`, `NULL`, `(void *)0`: what libbpf skips for a member the kernel lacks."""
    for _ in range(8):
        number = const_int(value)
        if number is not None:
            return number == 0
        inner = [c for c in value.get_children() if c.kind != CK.TYPE_REF]
        if value.kind not in (CK.UNEXPOSED_EXPR, CK.CSTYLE_CAST_EXPR, CK.PAREN_EXPR):
            return False
        if len(inner) != 1:
            return False
        value = inner[0]
    return False


def _ops_section(ctx: CheckContext, ops: OpsStruct) -> list[Diagnostic]:
    if ops.section in STRUCT_OPS_SECTIONS:
        return []
    where = f'section "{ops.section}"' if ops.section else "no section"
    return [
        ctx.diag(
            "K003",
            f"struct sched_ext_ops {ops.name} is in {where}: libbpf registers only ops in "
            '".struct_ops" or ".struct_ops.link", so nothing would be loaded',
            ops.decl,
            'put it in SEC(".struct_ops.link") (SCX_OPS_DEFINE does)',
        )
    ]


def _ops_name(ctx: CheckContext, ops: OpsStruct) -> list[Diagnostic]:
    member = ops.members.get("name")
    hint = 'set .name = "my_sched": letters, digits, "_" and ".", at most 127 characters'
    if member is None:
        return [
            ctx.diag(
                "K004",
                f"struct sched_ext_ops {ops.name} has no .name: the kernel "
                "rejects a scheduler without one",
                ops.decl,
                hint,
            )
        ]
    name = const_str(strip(member.value))
    if name is None:
        return []
    problem = None
    if name == "":
        problem = "is empty"
    elif len(name) >= OPS_NAME_LEN:
        problem = f"is {len(name)} characters long (at most {OPS_NAME_LEN - 1})"
    else:
        bad = sorted(set(re.sub(r"[A-Za-z0-9_.]", "", name)))
        if bad:
            problem = "contains " + ", ".join(repr(c) for c in bad)
    if problem is None:
        return []
    return [
        ctx.diag(
            "K004",
            f'.name "{name}" {problem}: the kernel\'s bpf_obj_name_cpy() '
            "rejects it and the scheduler does not load",
            member.value,
            hint,
        )
    ]


def _ops_flags(ctx: CheckContext, ops: OpsStruct) -> list[Diagnostic]:
    member = ops.members.get("flags")
    if member is None:
        return []
    flags = const_int(member.value)
    if flags is None:
        return []
    diags = []
    known = ctx.facts.ops_flags_mask if ctx.facts is not None else known_ops_flags(ctx.target)
    unknown = flags & ~known
    if unknown:
        parts = []
        for bit in _bits(unknown):
            name, since = flag_name(bit), flag_since(bit)
            if since is not None and since > ctx.target:
                parts.append(f"{name} (from {version_text(since)} on)")
            else:
                parts.append(name)
        diags.append(
            ctx.diag(
                "K005",
                f".flags has {', '.join(parts)}, unknown to Linux {ctx.kernel_name}"
                f" ({ctx.where_from}): the kernel rejects unknown flags with -EINVAL at attach",
                member.value,
                "drop the flag for this kernel, or raise --target-kernel if the "
                "scheduler only runs on newer kernels",
            )
        )
    enqueue = ops.members.get("enqueue")
    if flags & SCX_OPS_ENQ_LAST and (enqueue is None or enqueue.function is None):
        diags.append(
            ctx.diag(
                "K006",
                "SCX_OPS_ENQ_LAST without ops.enqueue: the kernel refuses to enable the "
                'scheduler ("SCX_OPS_ENQ_LAST requires ops.enqueue() to be implemented")',
                member.value,
                "implement ops.enqueue or drop SCX_OPS_ENQ_LAST",
            )
        )
    return diags


def _bits(value: int) -> list[int]:
    return [1 << i for i in range(64) if value & (1 << i)]


def _ops_ranges(ctx: CheckContext, ops: OpsStruct) -> list[Diagnostic]:
    diags = []
    timeout = ops.members.get("timeout_ms")
    value = const_int(timeout.value) if timeout else None
    if timeout and value is not None and value > WATCHDOG_MAX_MS:
        diags.append(
            ctx.diag(
                "K007",
                f".timeout_ms = {value}: the watchdog allows at most {WATCHDOG_MAX_MS} ms "
                "and the kernel rejects the ops with -E2BIG",
                timeout.value,
                f"use at most {WATCHDOG_MAX_MS} (0 means the default, 30 s)",
            )
        )
    batch = ops.members.get("dispatch_max_batch")
    value = const_int(batch.value) if batch else None
    if batch and value is not None and value > INT_MAX:
        diags.append(
            ctx.diag(
                "K007",
                f".dispatch_max_batch = {value} is above INT_MAX: the kernel rejects the ops",
                batch.value,
                "use a small batch such as 32 (the default when 0)",
            )
        )
    return diags


# ---- callbacks ----------------------------------------------------------------------------


def check_callbacks(ctx: CheckContext) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    for ops in ctx.model.ops:
        for member in ops.members.values():
            fn = ctx.model.functions.get(member.function or "")
            if fn is None:
                continue
            diags += _program_kind(ctx, member, fn)
            proto = _member_proto(ops, member.name)
            if proto is not None:
                diags += _signature(ctx, member, fn, proto)
    return diags


def _program_kind(ctx: CheckContext, member: OpsMember, fn: Function) -> list[Diagnostic]:
    if not fn.is_struct_ops:
        where = f'section "{fn.section}"' if fn.section else "no section"
        return [
            ctx.diag(
                "K011",
                f"ops.{member.name} points to {fn.name}(), which is in {where}: libbpf "
                "loads ops callbacks only from struct_ops programs",
                member.value,
                f'define it with BPF_STRUCT_OPS({fn.name}, ...) or SEC("struct_ops/{fn.name}")',
            )
        ]
    if fn.sleepable and member.name not in SLEEPABLE_CALLBACKS:
        allowed = ", ".join(f"ops.{n}" for n in sorted(SLEEPABLE_CALLBACKS))
        return [
            ctx.diag(
                "K012",
                f"{fn.name}() is sleepable (struct_ops.s/) but ops.{member.name} runs where "
                "sleeping is not allowed: the kernel rejects the program at load "
                "(bpf_scx_check_member)",
                member.value,
                f"use BPF_STRUCT_OPS, not BPF_STRUCT_OPS_SLEEPABLE; only {allowed} may sleep",
            )
        ]
    return []


def _member_proto(ops: OpsStruct, member: str) -> ci.Type | None:
    """The function type of an ops member, with vmlinux.h's typedef names (u64, s32) kept."""
    field = ops.fields.get(member)
    if field is None:
        return None
    pointer = field if field.kind == TypeKind.POINTER else field.get_canonical()
    if pointer.kind != TypeKind.POINTER:
        return None
    proto = pointer.get_pointee()
    if proto.kind != TypeKind.FUNCTIONPROTO:
        proto = proto.get_canonical()
    return proto if proto.kind == TypeKind.FUNCTIONPROTO else None


def _c_decl(type_: ci.Type, name: str) -> str:
    spelling = type_.spelling
    return f"{spelling}{name}" if spelling.endswith("*") else f"{spelling} {name}"


def _signature(
    ctx: CheckContext, member: OpsMember, fn: Function, proto: ci.Type
) -> list[Diagnostic]:
    expected = list(proto.argument_types())
    shown = f"ops.{member.name} passes ({', '.join(t.spelling for t in expected) or 'nothing'})"
    params = list(fn.decl.get_arguments())
    diags = _return_type(ctx, member, fn, proto)
    if params and not (len(params) == 1 and _is_u64_pointer(params[0].type)):
        declared = ", ".join(p.type.spelling for p in params)
        return diags + [
            ctx.diag(
                "K010",
                f"{fn.name}({declared}) takes its arguments directly, but a struct_ops "
                "program gets one argument, an array of u64 (ctx): the verifier rejects reading "
                f"registers that hold nothing; {shown}",
                fn.decl,
                f"declare it with BPF_STRUCT_OPS({fn.name}, ...) (libbpf's BPF_PROG unpacks ctx) "
                "or take unsigned long long *ctx and read ctx[i]",
            )
        ]
    inner = ctx.model.functions.get(f"____{fn.name}")
    if inner is not None:  # BPF_PROG: the typed parameters follow ctx
        return diags + _typed_args(ctx, fn, list(inner.decl.get_arguments())[1:], expected, shown)
    if params:
        return diags + _ctx_reads(ctx, fn, params[0].spelling, expected, shown)
    return diags


def _return_type(
    ctx: CheckContext, member: OpsMember, fn: Function, proto: ci.Type
) -> list[Diagnostic]:
    wants = proto.get_result().get_canonical().kind
    has = fn.decl.result_type.get_canonical().kind
    if wants != TypeKind.VOID and has == TypeKind.VOID:
        return [
            ctx.diag(
                "K010",
                f"ops.{member.name} returns {proto.get_result().spelling}, but {fn.name}() "
                "returns void: the kernel would read whatever is left in R0",
                fn.decl,
                f"return a {proto.get_result().spelling} from {fn.name}()",
            )
        ]
    return []


def _typed_args(
    ctx: CheckContext, fn: Function, declared: list[ci.Cursor], expected: list[ci.Type], shown: str
) -> list[Diagnostic]:
    if len(declared) > len(expected):
        return [
            ctx.diag(
                "K010",
                f"{fn.name}() declares {len(declared)} arguments, but {shown}: reading past "
                "them is an invalid context access the verifier rejects",
                fn.decl,
                "declare the arguments of the callback in struct sched_ext_ops, in its order",
            )
        ]
    diags = []
    for i, (param, want) in enumerate(zip(declared, expected, strict=False)):
        problem = type_mismatch(param.type, want)
        if problem:
            diags.append(
                ctx.diag(
                    "K010",
                    f"argument {i + 1} of {fn.name}() is '{_c_decl(param.type, param.spelling)}'"
                    f", but {shown}: {problem}",
                    fn.decl,
                    f"declare argument {i + 1} as {want.spelling}",
                )
            )
    return diags


def _ctx_reads(
    ctx: CheckContext, fn: Function, ctx_name: str, expected: list[ci.Type], shown: str
) -> list[Diagnostic]:
    diags = []
    body = fn.body
    for i, node in enumerate(body.nodes):
        if node.kind != CK.ARRAY_SUBSCRIPT_EXPR:
            continue
        children = list(node.cursor.get_children())
        if len(children) != 2 or referenced_name(children[0]) != ctx_name:
            continue
        index = const_int(children[1])
        if index is None:
            continue
        if index >= len(expected):
            diags.append(
                ctx.diag(
                    "K010",
                    f"{fn.name}() reads {ctx_name}[{index}], but {shown}: the verifier "
                    "rejects the access to a context slot that does not exist",
                    node.cursor,
                    f"read only {ctx_name}[0] to {ctx_name}[{max(0, len(expected) - 1)}]",
                )
            )
            continue
        declared = _read_as(body, i)
        problem = type_mismatch(declared, expected[index]) if declared is not None else None
        if problem:
            diags.append(
                ctx.diag(
                    "K010",
                    f"{fn.name}() reads {ctx_name}[{index}] as '{declared.spelling}', but "
                    f"{shown}: {problem}",
                    node.cursor,
                    f"cast {ctx_name}[{index}] to {expected[index].spelling}",
                )
            )
    return diags


def _read_as(body: BodyIndex, index: int) -> ci.Type | None:
    """The type a ctx slot is converted to: an explicit cast, or the variable it initializes."""
    for node in body.ancestors(index):
        if node.kind == CK.CSTYLE_CAST_EXPR:
            return node.cursor.type
        if node.kind == CK.VAR_DECL:
            return node.cursor.type
        if node.kind not in (CK.UNEXPOSED_EXPR, CK.PAREN_EXPR):
            return None
    return None


def _is_u64_pointer(type_: ci.Type) -> bool:
    canonical = type_.get_canonical()
    if canonical.kind != TypeKind.POINTER:
        return False
    pointee = canonical.get_pointee().get_canonical()
    return pointee.kind in _U64_POINTEE_KINDS or pointee.kind == TypeKind.VOID


def type_mismatch(declared: ci.Type, expected: ci.Type) -> str | None:
    """Why a parameter declared as `declared` cannot hold an argument of type `expected`."""
    have, want = declared.get_canonical(), expected.get_canonical()
    have_ptr, want_ptr = have.kind == TypeKind.POINTER, want.kind == TypeKind.POINTER
    if have_ptr != want_ptr:
        return (
            "a pointer is read as an integer"
            if want_ptr
            else "an integer is read as a pointer, which the verifier will not dereference"
        )
    if have_ptr:
        a, b = have.get_pointee().get_canonical(), want.get_pointee().get_canonical()
        if TypeKind.VOID in (a.kind, b.kind):
            return None
        if _unqualified(a) != _unqualified(b):
            return f"it points to {_unqualified(b)}, not {_unqualified(a)}"
        return None
    if 0 < have.get_size() < want.get_size():
        return f"{have.get_size()} bytes cannot hold the {want.get_size()}-byte value"
    return None


def _unqualified(type_: ci.Type) -> str:
    return re.sub(r"\b(const|volatile|restrict)\s+", "", type_.spelling).strip()


# ---- programs beside the ops --------------------------------------------------------------

# Program types whose attach target the kernel needs at load (a BTF id), which libbpf takes
# from the section name after the slash; without it libbpf expects the loader to set one.
TARGETED_SECTIONS = (
    "fentry", "fexit", "fmod_ret", "fentry.s", "fexit.s", "fmod_ret.s",
    "tp_btf", "lsm", "lsm.s", "lsm_cgroup", "freplace", "iter", "iter.s",
)  # fmt: skip


def check_attach_targets(ctx: CheckContext) -> list[Diagnostic]:
    """K013: SEC("fentry") and the like with no target in the section name."""
    diags = []
    for fn in ctx.model.own_functions:
        section = fn.section or ""
        if section in TARGETED_SECTIONS:
            diags.append(
                ctx.diag(
                    "K013",
                    f'{fn.name}() is in SEC("{section}"), which names no attach target: libbpf '
                    "leaves the target to the program's loader (bpf_program__set_attach_target), "
                    "and schedc loads objects as they are, so the kernel rejects it at load",
                    fn.decl,
                    f'name the target in the section: SEC("{section}/FUNCTION")',
                )
            )
    return diags


# This module's rule passes, in the order they run (verifier/checks.py joins the modules'
# lists). A new rule is a function here, its entry below and its code in catalog.py.
PASSES: list[Callable[[CheckContext], list[Diagnostic]]] = [
    check_license,
    check_ops,
    check_callbacks,
    check_attach_targets,
]
