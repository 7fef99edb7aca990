"""Rules over the call graph from each callback: which kfuncs run where, which kfunc names the
target kernel has, where tasks go (DSQs), and what runs on hot paths.

In 6.12 the kernel checks the callback context of a kfunc only at run time (scx_kf_allowed()):
a wrong call does not fail to load, it ejects the scheduler the first time it runs. These
rules find such calls before that, through static helper functions too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from clang import cindex as ci
from clang.cindex import CursorKind as CK

from schedc.diagnostics import Diagnostic
from schedc.verifier.btf import IMPLICIT_SUFFIX, SCX_PREFIXES, Prototype
from schedc.verifier.rules.base import CheckContext, describe_root
from schedc.verifier.rules.clang import (
    UN_LNOT,
    Loc,
    const_int,
    loc_of,
    referenced_name,
    strip,
    unary_op,
)
from schedc.verifier.rules.kernel import (
    BUILTIN_DSQS,
    CREATE_DSQ,
    DRAIN_KFUNCS,
    DSQ_ITER_NEW,
    HOT_CALLBACKS,
    INSERT_KFUNCS,
    INSERT_VTIME_KFUNCS,
    KFUNCS,
    MOVE_KFUNCS,
    PRINTK_HELPERS,
    REENQ_KFUNCS,
    SCX_DSQ_FLAG_BUILTIN,
    SLEEPABLE_CALLBACKS,
    Allowed,
    Kfunc,
    allows,
    kernel_symbol,
    version_text,
)
from schedc.verifier.rules.model import Call, Function, Root
from schedc.verifier.rules.prototypes import declared_prototype, mismatches


@dataclass(frozen=True)
class Reached:
    root: Root
    path: tuple[str, ...]
    call: Call


def reached_calls(ctx: CheckContext, root: Root) -> Iterator[Reached]:
    for name, path in ctx.model.reach(root.function).items():
        fn = ctx.model.functions.get(name)
        if fn is not None:
            for call in fn.calls:
                yield Reached(root, path, call)


def _key(cursor: ci.Cursor) -> Loc:
    return loc_of(cursor)


# ---- K020, K021: kfunc contexts -------------------------------------------------------------


def check_kfunc_contexts(ctx: CheckContext) -> list[Diagnostic]:
    wrong: dict[Loc, list[Reached]] = {}
    sleeping: dict[Loc, list[Reached]] = {}
    anchors: dict[Loc, ci.Cursor] = {}
    for root in ctx.model.roots:
        for reached in reached_calls(ctx, root):
            kfunc = kfunc_of(ctx, reached.call)
            if kfunc is None or ctx.dead(reached.call):
                continue
            anchor = ctx.anchor(reached.path, reached.call)
            key = _key(anchor)
            anchors[key] = anchor
            context = kfunc.context(ctx.target)
            if context is None:
                continue
            if context.sleepable and not ctx.model.sleepable(root):
                sleeping.setdefault(key, []).append(reached)
            elif not allows(context.allowed, root.callback, ctx.target) and not _cut_off(
                ctx, root, reached
            ):
                wrong.setdefault(key, []).append(reached)
    diags = [_context_diag(ctx, anchors[k], found) for k, found in wrong.items()]
    diags += [_sleepable_diag(ctx, anchors[k], found) for k, found in sleeping.items()]
    return diags


def kfunc_of(ctx: CheckContext, call: Call) -> Kfunc | None:
    """The table's entry for a kfunc call: by the ksym libbpf resolves (7.x's
    `scx_bpf_reenqueue_local___v2` is a kfunc of its own), else by the kfunc's family. A call
    of a function defined here (a header's inline wrapper of the same name) is no kfunc call."""
    if ctx.model.defined(call):
        return None
    return KFUNCS.get(kernel_symbol(call.name)) or KFUNCS.get(call.family)


def _cut_off(ctx: CheckContext, root: Root, reached: Reached) -> bool:
    fn = ctx.model.functions.get(reached.call.caller)
    return fn is not None and ctx.model.cut_off(root.function, fn, reached.call.node)


def _context_diag(ctx: CheckContext, anchor: ci.Cursor, found: list[Reached]) -> Diagnostic:
    first = found[0]
    kfunc = kfunc_of(ctx, first.call)
    assert kfunc is not None
    context = kfunc.context(ctx.target)
    assert context is not None
    callers = _unique(describe_root(r.root, r.path) for r in found)
    if context.at_load:
        outcome = (
            f"Linux {ctx.kernel_name}'s verifier refuses the program (\"calling kernel function "
            f'{kernel_symbol(first.call.name)} is not allowed")'
        )
    elif context.allowed is Allowed.TASK:
        outcome = (
            'the kernel reports "called on a task not being operated on" and ejects the '
            "scheduler the first time it happens"
        )
    else:
        outcome = (
            'the kernel reports "kfunc with mask ... called from an operation only allowing '
            '..." and ejects the scheduler the first time it happens'
        )
    message = (
        f"{first.call.name}() may be called only from {context.allowed.value}, but "
        f"{' and '.join(callers)} calls it: {outcome}"
    )
    return ctx.diag("K020", message, anchor, _context_hint(context.allowed))


def _context_hint(allowed: Allowed) -> str:
    hints = {
        Allowed.SELECT_CPU: "pick the CPU in ops.select_cpu; elsewhere use "
        "scx_bpf_pick_idle_cpu() or scx_bpf_test_and_clear_cpu_idle()",
        Allowed.SELECT_CPU_OR_UNLOCKED: "pick the CPU in ops.select_cpu or ops.enqueue; "
        "elsewhere use scx_bpf_pick_idle_cpu() or scx_bpf_test_and_clear_cpu_idle()",
        Allowed.UNLOCKED: "call it from ops.init (or ops.init_task, ops.cpu_online, ...)",
        Allowed.INIT: "call it from ops.init",
        Allowed.TASK: "call it on the task a callback is given, from ops.enqueue, "
        "ops.running, ops.stopping, ...",
        Allowed.ENQUEUE_DISPATCH: "insert tasks from ops.enqueue (or ops.select_cpu for a direct "
        "dispatch, or ops.dispatch)",
        Allowed.DISPATCH: "move tasks to the local DSQ only in ops.dispatch",
        Allowed.DISPATCH_OR_UNLOCKED: "move tasks between DSQs in ops.dispatch, or from a "
        "bpf_timer callback or ops.init-like callbacks that hold no runqueue lock",
        Allowed.CPU_RELEASE: "re-enqueue the local DSQ in ops.cpu_release",
        Allowed.RQ_LOCKED: "call it from callbacks that run with the task's runqueue locked "
        "(ops.enqueue, ops.running, ...)",
    }
    return hints.get(allowed, "")


def _sleepable_diag(ctx: CheckContext, anchor: ci.Cursor, found: list[Reached]) -> Diagnostic:
    first = found[0]
    callers = _unique(describe_root(r.root, r.path) for r in found)
    message = (
        f"{first.call.name}() may sleep, so it is allowed only in sleepable programs, but "
        f"{' and '.join(callers)} is not sleepable: the verifier rejects the program "
        '("program must be sleepable to call sleepable kfunc")'
    )
    if first.root.callback in SLEEPABLE_CALLBACKS:
        hint = f'declare {first.root.function}() with BPF_STRUCT_OPS_SLEEPABLE (SEC("struct_ops.s/..."))'
    else:
        hint = "create DSQs in ops.init, declared with BPF_STRUCT_OPS_SLEEPABLE"
    return ctx.diag("K021", message, anchor, hint)


def _unique(items: Iterator[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---- K050, K051: kfunc names per kernel ------------------------------------------------------


def check_kfunc_versions(ctx: CheckContext) -> list[Diagnostic]:
    diags: dict[Loc, Diagnostic] = {}
    for fn in ctx.model.own_functions:
        for name, path in ctx.model.reach(fn.name).items():
            callee = ctx.model.functions.get(name)
            for call in callee.calls if callee else []:
                if ctx.model.defined(call) or _guarded(ctx, call) or ctx.dead(call):
                    continue
                anchor = ctx.anchor(path, call)
                if ctx.facts is not None:
                    diag = _missing_in_btf(ctx, call, anchor)
                else:
                    kfunc = KFUNCS.get(call.family)
                    diag = _version_diag(ctx, kfunc, call, anchor) if kfunc else None
                if diag is not None:
                    diags.setdefault(_key(anchor), diag)
    return list(diags.values())


def _guarded(ctx: CheckContext, call: Call) -> bool:
    """A weak kfunc called under `if (bpf_ksym_exists(...))` (or its else branch): libbpf leaves
    a missing one at address 0 and the verifier drops the dead branch."""
    return bool(call.guards) and ctx.model.is_weak(call.decl)


_WEAK_HINT = (
    "declare both names __weak and call the one that exists under "
    "if (bpf_ksym_exists(...)), as schedc_runtime.bpf.h's schedc_insert() does"
)


def _is_sched_ext_kfunc(call: Call) -> bool:
    return call.family in KFUNCS or call.name.startswith(SCX_PREFIXES)


def _missing_in_btf(ctx: CheckContext, call: Call, anchor: ci.Cursor) -> Diagnostic | None:
    """K050 from the target's BTF: a sched_ext kfunc the kernel's BTF has no FUNC for; K051
    from the table (BTF does not say what is deprecated)."""
    assert ctx.facts is not None
    if not _is_sched_ext_kfunc(call):
        return None
    symbol = kernel_symbol(call.name)
    kfunc = KFUNCS.get(call.family)
    if ctx.facts.has_kfunc(symbol):
        if kfunc is None or kfunc.deprecated is None or ctx.target < kfunc.deprecated:
            return None
        found = _version_diag(ctx, kfunc, call, anchor)  # the kernel has it: K051 at most
        return found if found is not None and found.code == "K051" else None
    other = kfunc.other_name if kfunc is not None else None
    if other is not None and ctx.facts.has_kfunc(other):
        hint = f"call {other}(), or {_WEAK_HINT}"
        renamed = f"; it has {other}() instead"
    else:
        hint = (
            "call a kfunc this kernel has (its BTF lists them: bpftool btf dump file "
            'vmlinux.btf | grep "FUNC \'scx_bpf"), or declare it __weak and call it under '
            "if (bpf_ksym_exists(...))"
        )
        renamed = ""
    return ctx.diag(
        "K050",
        f"Linux {ctx.kernel_name} has no kfunc {symbol}() (its BTF has no such FUNC){renamed}: "
        "the program does not load there",
        anchor,
        hint,
    )


def _version_diag(
    ctx: CheckContext, kfunc: Kfunc, call: Call, anchor: ci.Cursor
) -> Diagnostic | None:
    target = ctx.kernel_name
    weak = _WEAK_HINT
    if ctx.target < kfunc.since:
        return ctx.diag(
            "K050",
            f"{call.name}() exists from Linux {version_text(kfunc.since)} on; "
            f"{target} (--target-kernel) has only its old name {kfunc.other_name}(): the "
            "program does not load there",
            anchor,
            f"call {kfunc.other_name}(), or {weak}",
        )
    if kfunc.removed is not None and ctx.target >= kfunc.removed:
        return ctx.diag(
            "K050",
            f"{call.name}() was renamed {kfunc.other_name}() in "
            f"{version_text(kfunc.deprecated or kfunc.since)} and removed in "
            f"{version_text(kfunc.removed)}: Linux {target} (--target-kernel) does not have it",
            anchor,
            f"call {kfunc.other_name}(), or {weak}",
        )
    if kfunc.deprecated is not None and ctx.target >= kfunc.deprecated:
        return ctx.diag(
            "K051",
            f"{call.name}() is deprecated since {version_text(kfunc.deprecated)} (now "
            f"{kfunc.other_name}()): Linux {target} logs a warning when the scheduler loads, and "
            f"{version_text(kfunc.removed or kfunc.deprecated)} removed it",
            anchor,
            f"call {kfunc.other_name}(), or {weak}",
        )
    return None


# ---- K052, K053: kfunc prototypes against the kernel's BTF ----------------------------------


def check_kfunc_prototypes(ctx: CheckContext) -> list[Diagnostic]:
    """A kfunc the C declares itself with another prototype than the target's BTF gives it:
    libbpf compares them when it resolves the extern (rules/prototypes.py). Only kfuncs the
    program uses count (clang emits no extern it does not), and only kfuncs the kernel has
    (one it lacks is K050's)."""
    if ctx.facts is None:
        return []
    own_decls = {
        c.spelling: c for c in ctx.model.top if c.kind == CK.FUNCTION_DECL and not c.is_definition()
    }
    diags: dict[str, Diagnostic] = {}
    seen: set[str] = set()
    for fn in ctx.model.own_functions:
        for name, path in ctx.model.reach(fn.name).items():
            callee = ctx.model.functions.get(name)
            for call in callee.calls if callee else []:
                if call.decl is None or call.name in seen or ctx.model.defined(call):
                    continue
                seen.add(call.name)
                kernel = ctx.facts.kfuncs.get(kernel_symbol(call.name))
                if kernel is None or not kernel.shapes:
                    continue
                where = own_decls.get(call.name) or ctx.anchor(path, call)
                found = _prototype_diag(ctx, call, kernel, where)
                if found is not None:
                    diags[call.name] = found
    return list(diags.values())


def _prototype_diag(
    ctx: CheckContext, call: Call, kernel: Prototype, where: ci.Cursor
) -> Diagnostic | None:
    assert ctx.facts is not None and call.decl is not None
    local = declared_prototype(call.decl)
    found = mismatches(local, kernel)
    if not found:
        return None
    symbol = kernel_symbol(call.name)
    refused = [m for m in found if m.refused]
    shown = refused or found
    what = "; ".join(f"{m.where}: {m.why}" for m in shown)
    both = (
        f"declared `{local.text(call.name)}`, but Linux {ctx.kernel_name}'s BTF has "
        f"`{kernel.text(symbol)}` ({what})"
    )
    weak = ctx.model.is_weak(call.decl)
    impl = ctx.facts.kfuncs.get(symbol + IMPLICIT_SUFFIX)
    if impl is not None and len(local.params) == len(impl.params) != len(kernel.params):
        hint = (
            f"declare the short form `{kernel.text(call.name)}`: the kernel fills in the "
            f"last argument itself (KF_IMPLICIT_ARGS; `{impl.text(symbol + IMPLICIT_SUFFIX)}` "
            "is its own, not for BPF programs)"
        )
    else:
        hint = (
            f"declare it as the kernel does: `{kernel.text(call.name)} __ksym"
            f"{' __weak' if weak else ''};` (bpftool btf dump file vmlinux.btf format c "
            "shows every kfunc), or include the scx headers that match the kernel"
        )
    if not refused:
        return ctx.diag(
            "K053",
            f"{call.name}() is {both}: libbpf accepts it, but the values passed or returned "
            "are not what the kernel takes or gives (truncated, sign-extended or another type)",
            where,
            hint,
        )
    if weak and _guarded(ctx, call):
        return ctx.diag(
            "K053",
            f"{call.name}() is {both}: libbpf takes the __weak kfunc for missing there (it "
            "resolves it to 0), so bpf_ksym_exists() is false and the program silently takes "
            "its other branch on this kernel",
            where,
            hint,
        )
    if weak:
        outcome = (
            "libbpf takes the __weak kfunc for missing there (it resolves it to 0), and the "
            "verifier refuses the call of it"
        )
    else:
        outcome = (
            f"libbpf refuses to load the program (\"extern (func ksym) '{symbol}': "
            'func_proto [...] incompatible with vmlinux [...]")'
        )
    return ctx.diag("K052", f"{call.name}() is {both}: {outcome}", where, hint)


# ---- K030, K031, K032: DSQs --------------------------------------------------------------------


@dataclass(frozen=True)
class DsqUse:
    value: int | None
    source: ci.Cursor  # the expression that names the DSQ
    call: Call


def _dsq_uses(
    ctx: CheckContext, families: frozenset[str] | set[str], arg: int, functions: list[Function]
) -> list[DsqUse]:
    uses = []
    for fn in functions:
        for call in fn.calls:
            if call.family in families and arg < len(call.args):
                for value, source in ctx.model.value_sources(fn, call.args[arg]):
                    uses.append(DsqUse(value, source, call))
    return uses


def _dispatch_functions(ctx: CheckContext) -> list[Function]:
    names: set[str] = set()
    for root in ctx.model.roots:
        if root.callback == "dispatch":
            names |= set(ctx.model.reach(root.function))
    return [ctx.model.functions[n] for n in names if n in ctx.model.functions]


def check_dsqs(ctx: CheckContext) -> list[Diagnostic]:
    everything = list(ctx.model.functions.values())
    inserts = _dsq_uses(ctx, INSERT_KFUNCS | INSERT_VTIME_KFUNCS, 1, everything)
    created = {u.value for u in _dsq_uses(ctx, {CREATE_DSQ}, 0, everything)}
    dispatch = _dispatch_functions(ctx)
    drained = {u.value for u in _dsq_uses(ctx, DRAIN_KFUNCS, 0, dispatch)}
    drained |= {u.value for u in _dsq_uses(ctx, REENQ_KFUNCS, 0, everything)}
    if any(c.family in MOVE_KFUNCS for f in everything for c in f.calls):
        drained |= {u.value for u in _dsq_uses(ctx, {DSQ_ITER_NEW}, 1, everything)}
    diags: dict[tuple[Loc, str], Diagnostic] = {}
    for use in inserts:
        for code, diag in _insert_findings(ctx, use, created, drained, bool(dispatch)):
            diags.setdefault((_key(use.source), code), diag)
    for use in _dsq_uses(ctx, DRAIN_KFUNCS, 0, everything):
        if _is_builtin(use) or (use.value is None and _names_builtin(use.source)):
            diags.setdefault((_key(use.source), "K033"), _consume_builtin(ctx, use))
    return list(diags.values())


def _names_builtin(source: ci.Cursor) -> bool:
    """scx's headers from v1.0.7 on read SCX_DSQ_GLOBAL from .rodata, so its value is not a
    constant of the C: the name decides."""
    return any(t.spelling in _BUILTIN_NAMES for t in source.get_tokens())


_BUILTIN_NAMES = frozenset({*BUILTIN_DSQS.values(), "SCX_DSQ_LOCAL_ON"})


def _consume_builtin(ctx: CheckContext, use: DsqUse) -> Diagnostic:
    value = use.value
    name = BUILTIN_DSQS.get(value or 0) or next(
        (t.spelling for t in use.source.get_tokens() if t.spelling in _BUILTIN_NAMES),
        "a built-in DSQ",
    )
    shown = f"0x{value:016x}" if value is not None else name
    return ctx.diag(
        "K033",
        f"{use.call.name}() of {name}: only DSQs the scheduler created can be consumed; the "
        f'kernel reports "invalid DSQ ID {shown}" and ejects the scheduler the first time '
        "it runs (the verifier accepts it)",
        use.source,
        "leave SCX_DSQ_GLOBAL to the kernel, which moves its tasks to a CPU by itself; for a "
        "queue of your own, scx_bpf_create_dsq() it in ops.init, insert into it and consume it",
    )


def _insert_findings(
    ctx: CheckContext,
    use: DsqUse,
    created: set[int | None],
    drained: set[int | None],
    has_dispatch: bool,
) -> Iterator[tuple[str, Diagnostic]]:
    value, call = use.value, use.call
    if call.family in INSERT_VTIME_KFUNCS and _is_builtin(use):
        name = BUILTIN_DSQS.get(value or 0, "a built-in DSQ (SCX_DSQ_LOCAL_ON | cpu)")
        yield (
            "K032",
            ctx.diag(
                "K032",
                f"{call.name}() into {name}: built-in DSQs are FIFO only; the kernel reports "
                '"cannot use vtime ordering for built-in DSQs" and ejects the scheduler',
                use.source,
                "create a DSQ of your own in ops.init (scx_bpf_create_dsq) for vtime "
                "ordering and move tasks from it to the local DSQ in ops.dispatch",
            ),
        )
    if value is None or value & SCX_DSQ_FLAG_BUILTIN:
        return
    if value not in created and None not in created:
        yield (
            "K030",
            ctx.diag(
                "K030",
                f"DSQ {value} is never created: inserting into it fails at run time "
                '("non-existent DSQ") and the kernel ejects the scheduler',
                use.source,
                f"create it in ops.init: scx_bpf_create_dsq({value}, -1) in a "
                "BPF_STRUCT_OPS_SLEEPABLE callback",
            ),
        )
    if value not in drained and None not in drained:
        where = "ops.dispatch" if has_dispatch else "any ops.dispatch (there is none)"
        yield (
            "K031",
            ctx.diag(
                "K031",
                f"tasks inserted into DSQ {value} are never consumed: nothing in {where} "
                f"moves them to a CPU (scx_bpf_dsq_move_to_local({value}) / scx_bpf_consume), so "
                "they wait until the watchdog ejects the scheduler",
                use.source,
                f"in ops.dispatch, call scx_bpf_dsq_move_to_local({value}) (6.12: scx_bpf_consume)",
            ),
        )


def _is_builtin(use: DsqUse) -> bool:
    if use.value is not None:
        return bool(use.value & SCX_DSQ_FLAG_BUILTIN)
    return any(t.spelling == "SCX_DSQ_LOCAL_ON" for t in use.source.get_tokens())


# ---- K070: strict priority without aging ----------------------------------------------------


def check_aging(ctx: CheckContext) -> list[Diagnostic]:
    diags = []
    for root in ctx.model.roots:
        if root.callback != "dispatch":
            continue
        fn = ctx.model.functions.get(f"____{root.function}") or ctx.model.functions[root.function]
        diags += _strict_priority(ctx, fn)
    return diags


def _strict_priority(ctx: CheckContext, fn: Function) -> list[Diagnostic]:
    nodes = fn.body.nodes
    strict: list[tuple[int, Call]] = []  # DSQ tried by a top-level `if (move(dsq)) return`
    strict_calls: set[int] = set()
    for i, node in enumerate(nodes):
        if node.parent != 0 or node.kind != CK.IF_STMT:
            continue
        cond_end = nodes[i + 1].end
        then_has_return = any(n.kind == CK.RETURN_STMT for n in nodes[cond_end : node.end])
        for call in fn.calls:
            if i < call.node < cond_end and then_has_return:
                for dsq in _drained_by(ctx, call):
                    strict.append((dsq, call))
                    strict_calls.add(call.node)
    order = list(dict.fromkeys(dsq for dsq, _ in strict))
    if len(order) < 2:
        return []
    aged = {
        dsq for call in fn.calls if call.node not in strict_calls for dsq in _drained_by(ctx, call)
    }
    diags = []
    for dsq in order[1:]:
        if dsq in aged:
            continue
        call = next(c for d, c in strict if d == dsq)
        higher = ", ".join(str(d) for d in order[: order.index(dsq)])
        diags.append(
            ctx.diag(
                "K070",
                f"DSQ {dsq} is served only when DSQ {higher} is empty: with strict priority "
                "and no aging, its tasks starve while the higher queues stay busy, until the "
                "watchdog ejects the scheduler",
                call.cursor,
                f"serve DSQ {dsq} first when its oldest task has waited too long (aging), e.g. "
                "`dispatch a then b, aging 100ms` in the DSL",
            )
        )
    return diags


def _drained_by(ctx: CheckContext, call: Call) -> list[int]:
    """Constant DSQs a call moves to the local DSQ: directly, or through a helper that passes
    one of its parameters to scx_bpf_dsq_move_to_local()."""
    if call.family in DRAIN_KFUNCS:
        value = const_int(call.args[0]) if call.args else None
        return [value] if value is not None else []
    helper = ctx.model.functions.get(call.name)
    if helper is None:
        return []
    found = []
    for inner in helper.calls:
        if inner.family in DRAIN_KFUNCS and inner.args:
            name = referenced_name(inner.args[0])
            if name in helper.params and helper.params.index(name) < len(call.args):
                value = const_int(call.args[helper.params.index(name)])
                if value is not None:
                    found.append(value)
    return list(dict.fromkeys(found))


# ---- K071: bpf_printk on hot paths ------------------------------------------------------------


def _gated(ctx: CheckContext, reached: Reached) -> bool:
    """Whether the print runs only when a load-time switch is on: the call, or every call on
    one step of the path to it, sits under a condition on a `const volatile` global
    (`if (debug) bpf_printk(...)`, scx's dbg()/trace() macros), which is off unless the loader
    turns it on."""
    steps = [(reached.call.caller, [reached.call])]
    path = reached.path
    for i in range(len(path) - 1):
        fn = ctx.model.functions.get(path[i])
        if fn is not None:
            steps.append((path[i], [c for c in fn.calls if c.name == path[i + 1]]))
    for name, calls in steps:
        fn = ctx.model.functions.get(name)
        if fn is not None and calls and all(_under_switch(fn, c.node) for c in calls):
            return True
    return False


def _under_switch(fn: Function, node: int) -> bool:
    body = fn.body
    for condition, holds in body.nodes[node].conditions:
        cond = strip(body.nodes[condition].cursor)
        negated = cond.kind == CK.UNARY_OPERATOR and unary_op(cond) == UN_LNOT
        if holds == negated:  # runs when the switch is off: `if (!debug) print`
            continue
        for n in body.subtree(condition):
            ref = n.cursor.referenced if n.kind == CK.DECL_REF_EXPR else None
            if (
                ref is not None
                and ref.kind == CK.VAR_DECL
                and ref.semantic_parent is not None
                and ref.semantic_parent.kind == CK.TRANSLATION_UNIT
                and ref.type.is_const_qualified()
            ):
                return True
    return False


def check_hot_printk(ctx: CheckContext) -> list[Diagnostic]:
    diags: dict[Loc, Diagnostic] = {}
    for root in ctx.model.roots:
        if root.callback not in HOT_CALLBACKS:
            continue
        for reached in reached_calls(ctx, root):
            if reached.call.name not in PRINTK_HELPERS or _gated(ctx, reached):
                continue
            anchor = ctx.anchor(reached.path, reached.call)
            diags.setdefault(
                _key(anchor),
                ctx.diag(
                    "K071",
                    f"bpf_printk() in {describe_root(root, reached.path)}, which runs for every task "
                    "event: each call formats a message into the kernel trace buffer on the "
                    "scheduling path",
                    anchor,
                    "count events in a map instead, or keep the print out of hot callbacks "
                    "(#ifdef DEBUG)",
                ),
            )
    return list(diags.values())


# This module's rule passes, in the order they run (verifier/checks.py joins the modules'
# lists). A new rule is a function here, its entry below and its code in catalog.py.
PASSES: list[Callable[[CheckContext], list[Diagnostic]]] = [
    check_kfunc_contexts,
    check_kfunc_versions,
    check_kfunc_prototypes,
    check_dsqs,
    check_aging,
    check_hot_printk,
]
