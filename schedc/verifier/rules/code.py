"""Rules on the code itself, for what the BPF verifier or the BPF backend cannot take: loops
without a provable bound, floating point, deep stacks, recursion, unchecked lookups."""

from __future__ import annotations

from collections.abc import Callable

from clang import cindex as ci
from clang.cindex import CursorKind as CK
from clang.cindex import StorageClass, TypeKind

from schedc.diagnostics import Diagnostic
from schedc.verifier.rules.base import CheckContext, describe_root
from schedc.verifier.rules.clang import (
    BIN_ASSIGN,
    COMPARISONS,
    LOOPS,
    UN_ADDR_OF,
    UN_DEREF,
    BodyIndex,
    Node,
    binary_op,
    const_int,
    strip,
    unary_op,
)
from schedc.verifier.rules.kernel import NULLABLE_LOOKUPS
from schedc.verifier.rules.model import Function

BPF_STACK_LIMIT = 512
_FLOAT_KINDS = frozenset(
    {
        TypeKind.FLOAT,
        TypeKind.DOUBLE,
        TypeKind.LONGDOUBLE,
        TypeKind.HALF,
        TypeKind.FLOAT128,
        TypeKind.IBM128,
        TypeKind.COMPLEX,
    }
)
_TYPED_KINDS = frozenset(
    {
        CK.VAR_DECL,
        CK.PARM_DECL,
        CK.FLOATING_LITERAL,
        CK.CSTYLE_CAST_EXPR,
        CK.CALL_EXPR,
        CK.BINARY_OPERATOR,
        CK.DECL_REF_EXPR,
    }
)

# ---- K040: loops ------------------------------------------------------------------------------


def check_loops(ctx: CheckContext) -> list[Diagnostic]:
    diags = []
    for fn in ctx.model.own_functions:
        for i, node in enumerate(fn.body.nodes):
            if node.kind in LOOPS and not _bounded(fn, i):
                diags.append(
                    ctx.diag(
                        "K040",
                        "the verifier cannot bound this loop: its condition compares "
                        "against no constant and it uses no BPF iterator, so the verifier follows "
                        "it until it gives up (1 million instructions) and rejects the program",
                        node.cursor,
                        "use bpf_for(i, 0, n) or bpf_repeat(n) from <bpf/bpf_helpers.h>, "
                        "a constant bound such as `i < 64`, or can_loop",
                    )
                )
    return diags


def _bounded(fn: Function, index: int) -> bool:
    body = fn.body
    subtree = body.subtree(index)
    if any(_is_iterator_step(n) or n.kind == CK.ASM_STMT for n in subtree):
        return True  # bpf_for / bpf_repeat / bpf_for_each (iterator kfuncs), can_loop (may_goto)
    tests = _loop_tests(body, index)
    if body.nodes[index].kind != CK.FOR_STMT and tests and const_int(tests[0].cursor) == 0:
        return True  # do { ... } while (0): runs once
    return any(_constant_comparison(n, body) for n in tests)


def _is_iterator_step(node: Node) -> bool:
    if node.kind != CK.CALL_EXPR:
        return False
    name = node.cursor.spelling
    return name.startswith("bpf_iter_") and name.endswith("_next")


def _loop_tests(body: BodyIndex, index: int) -> list[Node]:
    """The nodes of a loop's controlling parts (for: init, condition, increment)."""
    node = body.nodes[index]
    children = [i for i in range(index + 1, node.end) if body.nodes[i].parent == index]
    if node.kind == CK.FOR_STMT:
        tests = children[:-1]
    elif node.kind == CK.WHILE_STMT:
        tests = children[:1]
    else:
        tests = children[-1:]
    return [n for t in tests for n in body.subtree(t)]


def _constant_comparison(node: Node, body: BodyIndex) -> bool:
    if node.kind != CK.BINARY_OPERATOR or binary_op(node.cursor) not in COMPARISONS:
        return False
    sides = list(node.cursor.get_children())
    if len(sides) != 2:
        return False
    return any(_known_at_load(side, body) for side in sides) and not all(
        side.type.get_canonical().kind == TypeKind.POINTER for side in sides
    )


_CHANGES = frozenset({1, 2, 3, 4, UN_ADDR_OF})  # CXUnaryOperatorKind: ++, --, &
_MAX_LOCAL_DEPTH = 4


def _known_at_load(expr: ci.Cursor, body: BodyIndex | None = None, depth: int = 0) -> bool:
    """A constant, or a `const volatile` global: .rodata is frozen before the verifier runs, so
    it knows the value a loader wrote there. Or a local that is only ever set to such values
    (mitosis: `int n = nr_possible_cpus; if (n > MAX_CPUS) n = MAX_CPUS;`)."""
    if const_int(expr) is not None:
        return True
    inner = strip(expr)
    if inner.kind != CK.DECL_REF_EXPR or inner.referenced is None:
        return False
    ref = inner.referenced
    if ref.kind != CK.VAR_DECL or ref.semantic_parent is None:
        return False
    if ref.semantic_parent.kind == CK.TRANSLATION_UNIT:
        return ref.type.is_const_qualified()
    if body is None or depth >= _MAX_LOCAL_DEPTH:
        return False
    values = _local_values(ref, body)
    return (
        values is not None
        and bool(values)
        and all(_known_at_load(v, body, depth + 1) for v in values)
    )


def _local_values(var: ci.Cursor, body: BodyIndex) -> list[ci.Cursor] | None:
    """Every value a local variable is given in the function (its initializer and plain
    assignments), or None when it is changed any other way (++, +=, its address taken)."""
    values: list[ci.Cursor] = []
    for node in body.nodes:
        if node.kind == CK.VAR_DECL and node.cursor == var:
            values += [c for c in node.cursor.get_children() if c.kind != CK.TYPE_REF][-1:]
            continue
        if node.kind != CK.DECL_REF_EXPR or node.cursor.referenced != var:
            continue
        parent = body.nodes[node.parent] if node.parent >= 0 else None
        if parent is None:
            continue
        if parent.kind == CK.UNARY_OPERATOR and unary_op(parent.cursor) in _CHANGES:
            return None
        if parent.kind == CK.COMPOUND_ASSIGNMENT_OPERATOR and body.nodes[node.parent + 1] is node:
            return None
        if (
            parent.kind == CK.BINARY_OPERATOR
            and binary_op(parent.cursor) == BIN_ASSIGN
            and body.nodes[node.parent + 1] is node
        ):
            values.append(list(parent.cursor.get_children())[1])
    return values


# ---- K041: floating point ----------------------------------------------------------------------


def check_floats(ctx: CheckContext) -> list[Diagnostic]:
    """One finding per function (and per global): the first floating-point use in it."""
    diags: dict[str, Diagnostic] = {}
    for owner, cursor in _own_typed_cursors(ctx):
        type_ = cursor.type.get_canonical()
        if cursor.kind == CK.FUNCTION_DECL:
            type_ = cursor.result_type.get_canonical()
        if owner not in diags and (
            type_.kind in _FLOAT_KINDS or cursor.kind == CK.FLOATING_LITERAL
        ):
            diags[owner] = ctx.diag(
                "K041",
                f"floating point ('{type_.spelling}'): BPF has no floating-point "
                "instructions and the kernel may not use the FPU here; clang cannot compile it "
                "for -target bpf",
                cursor,
                "use integers in fixed point, e.g. weights scaled by 1024, times in nanoseconds",
            )
    return list(diags.values())


def _own_typed_cursors(ctx: CheckContext) -> list[tuple[str, ci.Cursor]]:
    """(the function or global it belongs to, a cursor with a type) for the policy's own code."""
    found = [(c.spelling, c) for c in ctx.model.top if c.kind == CK.VAR_DECL]
    for fn in ctx.model.own_functions:
        found.append((fn.name, fn.decl))
        found += [(fn.name, a) for a in fn.decl.get_arguments()]
        found += [(fn.name, n.cursor) for n in fn.body.nodes if n.kind in _TYPED_KINDS]
    return found


# ---- K042: stack ---------------------------------------------------------------------------------


def check_stack(ctx: CheckContext) -> list[Diagnostic]:
    frames: dict[str, int] = {}
    diags = []
    for root in ctx.model.roots:
        total, chain = _chain_stack(ctx, root.function, frames, ())
        if total > BPF_STACK_LIMIT:
            parts = " + ".join(f"{name}() {frames[name]}" for name in chain if frames[name])
            fn = ctx.model.functions[root.function]
            diags.append(
                ctx.diag(
                    "K042",
                    f"{describe_root(root)} may need about {total} bytes of stack ({parts}); "
                    f"BPF allows {BPF_STACK_LIMIT} bytes for a program and the functions it calls",
                    fn.decl,
                    "keep large arrays and structs in a map: a BPF_MAP_TYPE_PERCPU_ARRAY "
                    "of one element works as per-CPU scratch space",
                )
            )
    return diags


def _chain_stack(
    ctx: CheckContext, name: str, frames: dict[str, int], seen: tuple[str, ...]
) -> tuple[int, tuple[str, ...]]:
    """The deepest stack of `name` and the functions it calls (bytes, call chain)."""
    fn = ctx.model.functions.get(name)
    if fn is None or name in seen:
        return 0, ()
    if name not in frames:
        frames[name] = frame_size(fn.body)
    best, best_chain = 0, ()
    for callee, _ in ctx.model.callees(fn):
        size, chain = _chain_stack(ctx, callee, frames, seen + (name,))
        if size > best:
            best, best_chain = size, chain
    return frames[name] + best, (name,) + best_chain


def frame_size(body: BodyIndex) -> int:
    """Bytes a function keeps on the stack: arrays, structs and variables whose address is
    taken (scalars live in registers). Variables of disjoint blocks share space, as clang's
    stack coloring does."""
    taken = _address_taken(body)
    return _block_size(body, 0, taken)


def _block_size(body: BodyIndex, index: int, taken: set[int]) -> int:
    node = body.nodes[index]
    own, nested = 0, 0
    child = index + 1
    while child < node.end:
        sub = body.nodes[child]
        if sub.kind == CK.DECL_STMT:
            own += sum(
                _var_size(n.cursor, taken)
                for n in body.subtree(child)
                if n.kind == CK.VAR_DECL and n.parent == child
            )
        else:
            nested = max(nested, _block_size(body, child, taken))
        child = sub.end
    return own + nested


def _var_size(var: ci.Cursor, taken: set[int]) -> int:
    if var.storage_class == StorageClass.STATIC:
        return 0
    type_ = var.type.get_canonical()
    if type_.kind in (TypeKind.CONSTANTARRAY, TypeKind.RECORD) or var.hash in taken:
        return max(0, type_.get_size())
    return 0


def _address_taken(body: BodyIndex) -> set[int]:
    taken = set()
    for node in body.nodes:
        if node.kind == CK.UNARY_OPERATOR and unary_op(node.cursor) == UN_ADDR_OF:
            children = list(node.cursor.get_children())
            inner = strip(children[0]) if children else None
            if inner is not None and inner.kind == CK.DECL_REF_EXPR and inner.referenced:
                taken.add(inner.referenced.hash)
    return taken


# ---- K043: recursion ------------------------------------------------------------------------------


def check_recursion(ctx: CheckContext) -> list[Diagnostic]:
    diags = []
    for cycle in _cycles(ctx):
        owner = next((ctx.model.functions[n] for n in cycle if ctx.model.functions[n].own), None)
        if owner is None:
            continue
        members = set(cycle)
        call = next((c for c in owner.calls if c.name in members), None)
        through = " → ".join(f"{n}()" for n in cycle)
        diags.append(
            ctx.diag(
                "K043",
                f"{owner.name}() calls itself ({through} → {cycle[0]}()): BPF programs "
                "cannot recurse; the verifier rejects a call graph with a cycle",
                call.cursor if call else owner.decl,
                "write it as a loop with a constant bound (bpf_for), keeping the state in variables",
            )
        )
    return diags


def _cycles(ctx: CheckContext) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan), in a stable order."""
    graph = {
        name: [c for c, _ in ctx.model.callees(fn)] for name, fn in ctx.model.functions.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, []):
                found.append(list(reversed(component)))

    for name in graph:
        if name not in index:
            visit(name)
    return found


# ---- K072: unchecked lookups ---------------------------------------------------------------------


def check_lookups(ctx: CheckContext) -> list[Diagnostic]:
    sources = set(NULLABLE_LOOKUPS) | _nullable_wrappers(ctx)
    diags = []
    for fn in ctx.model.own_functions:
        diags += _unchecked_in(ctx, fn, sources)
    return diags


def _nullable_wrappers(ctx: CheckContext) -> set[str]:
    """Functions that return a lookup result as is (`return bpf_task_storage_get(...)`)."""
    names = set()
    for fn in ctx.model.functions.values():
        for i, node in enumerate(fn.body.nodes):
            if node.kind == CK.RETURN_STMT and node.end > i + 1:
                inner = strip(fn.body.nodes[i + 1].cursor)
                if inner.kind == CK.CALL_EXPR and inner.spelling in NULLABLE_LOOKUPS:
                    names.add(fn.name)
    return names


def _unchecked_in(ctx: CheckContext, fn: Function, sources: set[str]) -> list[Diagnostic]:
    body = fn.body
    assigned: dict[int, tuple[str, str]] = {}  # variable → (its name, the lookup)
    for i in range(len(body.nodes)):
        target, lookup = _lookup_assignment(body, i, sources)
        if target is not None and lookup is not None:
            assigned.setdefault(target.hash, (target.spelling, lookup))
    if not assigned:
        return _direct_derefs(ctx, body, sources)
    checked: set[int] = set()
    shared: set[int] = set()  # copied or passed on: a check may happen through the copy
    derefs: dict[int, Node] = {}
    for i, node in enumerate(body.nodes):
        if node.kind != CK.DECL_REF_EXPR or node.cursor.referenced is None:
            continue
        var = node.cursor.referenced.hash
        if var not in assigned:
            continue
        # In source order: a check protects only the uses after it (`*a += 1; if (a)` is
        # unchecked), and a use inside a condition is a use, not a check (`if (*a)`).
        if _dereferenced(body, i):
            if var not in checked:
                derefs.setdefault(var, node)
        elif node.in_condition:
            checked.add(var)
        elif not _assigned_to(body, i):
            shared.add(var)
    diags = _direct_derefs(ctx, body, sources)
    for var, node in derefs.items():
        name, lookup = assigned[var]
        if var in shared:
            diags.append(
                ctx.diag(
                    "K072",
                    f"'{name}' comes from {lookup}(), which returns NULL when there is no "
                    "entry, and is used without a check: the verifier rejects the program "
                    "(\"invalid mem access 'map_value_or_null'\") unless a copy of it is "
                    "checked",
                    node.cursor,
                    f"check it first: if (!{name}) return ...;",
                )
            )
        else:
            diags.append(
                ctx.diag(
                    "K073",
                    f"'{name}' comes from {lookup}(), which returns NULL when there is no "
                    "entry, and nothing checks it: the verifier rejects the program "
                    "(\"invalid mem access 'map_value_or_null'\")",
                    node.cursor,
                    f"check it first: if (!{name}) return ...;",
                )
            )
    return diags


def _assigned_to(body: BodyIndex, index: int) -> bool:
    """Whether this variable reference is the left side of a plain assignment."""
    parent = body.nodes[index].parent
    return (
        parent >= 0
        and body.nodes[parent].kind == CK.BINARY_OPERATOR
        and binary_op(body.nodes[parent].cursor) == BIN_ASSIGN
        and parent + 1 == index
    )


def _lookup_assignment(
    body: BodyIndex, index: int, sources: set[str]
) -> tuple[ci.Cursor | None, str | None]:
    node = body.nodes[index]
    if node.kind == CK.VAR_DECL:
        value = _last_child(node.cursor)
        return (node.cursor, _lookup_name(value, sources)) if value is not None else (None, None)
    if node.kind == CK.BINARY_OPERATOR and binary_op(node.cursor) == BIN_ASSIGN:
        children = list(node.cursor.get_children())
        lhs = strip(children[0]) if children else None
        if lhs is not None and lhs.kind == CK.DECL_REF_EXPR and lhs.referenced is not None:
            return lhs.referenced, _lookup_name(children[-1], sources)
    return None, None


def _last_child(cursor: ci.Cursor) -> ci.Cursor | None:
    children = [c for c in cursor.get_children() if c.kind != CK.TYPE_REF]
    return children[-1] if children else None


def _lookup_name(expr: ci.Cursor, sources: set[str]) -> str | None:
    inner = strip(expr)
    if inner.kind == CK.CALL_EXPR and inner.spelling in sources:
        return inner.spelling
    return None


def _dereferenced(body: BodyIndex, index: int) -> bool:
    """Whether the value of this variable reference is dereferenced (p->f, *p, p[i])."""
    child, parent = index, body.nodes[index].parent
    while parent >= 0:
        node = body.nodes[parent]
        if node.kind in (CK.UNEXPOSED_EXPR, CK.PAREN_EXPR):
            child, parent = parent, node.parent
            continue
        if node.kind == CK.MEMBER_REF_EXPR:
            return True
        if node.kind == CK.ARRAY_SUBSCRIPT_EXPR:
            return child == parent + 1  # the base, not the index
        return node.kind == CK.UNARY_OPERATOR and unary_op(node.cursor) == UN_DEREF
    return False


def _direct_derefs(ctx: CheckContext, body: BodyIndex, sources: set[str]) -> list[Diagnostic]:
    diags = []
    for node in body.nodes:
        if node.kind != CK.MEMBER_REF_EXPR:
            continue
        children = list(node.cursor.get_children())
        lookup = _lookup_name(children[0], sources) if children else None
        if lookup:
            diags.append(
                ctx.diag(
                    "K073",
                    f"the result of {lookup}() is dereferenced directly, but it is NULL when "
                    "there is no entry: the verifier rejects the program",
                    node.cursor,
                    "store it in a variable and check it for NULL first",
                )
            )
    return diags


# This module's rule passes, in the order they run (verifier/checks.py joins the modules'
# lists). A new rule is a function here, its entry below and its code in catalog.py.
# ---- references a program owns ------------------------------------------------------------

# Calls whose result is a reference the program owns and must release (or store, or return):
# the verifier rejects a program that can end with one unreleased ("Unreleased reference").
REFERENCES = {
    "bpf_kptr_xchg": "the map slot's old value",
    "bpf_task_acquire": "an acquired task",
    "bpf_task_from_pid": "an acquired task",
    "bpf_cgroup_acquire": "an acquired cgroup",
    "bpf_cgroup_from_id": "an acquired cgroup",
    "bpf_cpumask_create": "a new cpumask",
    "bpf_cpumask_acquire": "an acquired cpumask",
}
_WRAPPERS = (CK.PAREN_EXPR, CK.UNEXPOSED_EXPR, CK.CSTYLE_CAST_EXPR)
_STATEMENTS = (CK.COMPOUND_STMT, CK.IF_STMT, CK.WHILE_STMT, CK.FOR_STMT, CK.DO_STMT)


def check_references(ctx: CheckContext) -> list[Diagnostic]:
    """K074: a reference the program owns that it certainly drops: a call above whose result
    is thrown away, or kept in a local that nothing reads afterwards. A local that is read at
    all (released, returned, stored, passed on, compared) is left to the verifier."""
    diags = []
    for fn in ctx.model.own_functions:
        body = fn.body
        for node in body.nodes:
            what = REFERENCES.get(node.cursor.spelling) if node.kind == CK.CALL_EXPR else None
            if what is None:
                continue
            up = node.parent
            while up >= 0 and body.nodes[up].kind in _WRAPPERS:
                up = body.nodes[up].parent
            holder = body.nodes[up] if up >= 0 else None
            name = node.cursor.spelling
            if holder is None or (holder.kind in _STATEMENTS and not node.in_condition):
                diags.append(_dropped(ctx, node, name, what, "its result is thrown away"))
                continue
            var = _held_in(body, up)
            if var is not None and not _read_after(body, var, node.end):
                diags.append(
                    _dropped(ctx, node, name, what, f"'{var.spelling}' is never read after it")
                )
    return diags


def _held_in(body: BodyIndex, index: int) -> ci.Cursor | None:
    """The local variable a declaration or plain assignment at `index` stores into."""
    node = body.nodes[index]
    if node.kind == CK.VAR_DECL and node.cursor.storage_class != StorageClass.STATIC:
        return node.cursor
    if node.kind == CK.BINARY_OPERATOR and binary_op(node.cursor) == BIN_ASSIGN:
        lhs = strip(next(iter(node.cursor.get_children())))
        ref = lhs.referenced if lhs.kind == CK.DECL_REF_EXPR else None
        if ref is not None and ref.kind == CK.VAR_DECL and ref.semantic_parent is not None:
            if ref.semantic_parent.kind == CK.FUNCTION_DECL:
                return ref
    return None


def _read_after(body: BodyIndex, var: ci.Cursor, start: int) -> bool:
    for i in range(start, len(body.nodes)):
        node = body.nodes[i]
        if node.kind == CK.DECL_REF_EXPR and node.cursor.referenced is not None:
            if node.cursor.referenced.hash == var.hash and not _assigned_to(body, i):
                return True
    return False


def _dropped(ctx: CheckContext, node: Node, name: str, what: str, how: str) -> Diagnostic:
    release = (
        "bpf_task_release" if "task" in what or name == "bpf_kptr_xchg" else "its release kfunc"
    )
    return ctx.diag(
        "K074",
        f"{name}() returns {what}, a reference the program owns, and {how}: the verifier "
        'rejects the program ("Unreleased reference")',
        node.cursor,
        f"keep the result and release it when it is not NULL (if (old) {release}(old);), "
        "store it in a map with bpf_kptr_xchg, or return it",
    )


PASSES: list[Callable[[CheckContext], list[Diagnostic]]] = [
    check_loops,
    check_floats,
    check_stack,
    check_recursion,
    check_lookups,
    check_references,
]
