"""What the rules look at: the policy's functions (with the header helpers they call), their
calls, the call graph, the sched_ext_ops definitions and the callbacks they name.

Built once per translation unit from the policy's own cursors; header functions enter only when
a policy function calls them (the runtime's `schedc_insert` is walked, vmlinux.h is not).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from clang import cindex as ci
from clang.cindex import CursorKind as CK

from schedc.verifier.rules.clang import (
    BIN_EQ,
    BIN_NE,
    UN_LNOT,
    BodyIndex,
    Node,
    binary_op,
    const_int,
    const_str,
    function_body,
    included_sources,
    is_weak,
    own_top_level,
    referenced_name,
    section_of,
    strip,
    unary_op,
)
from schedc.verifier.rules.kernel import TIMER_ROOT, TIMER_SET_CALLBACK, essential_name

OPS_TYPE = "struct sched_ext_ops"
# 7.x adds a second struct_ops type of the same family, `struct sched_ext_ops_cid` (cid-form
# callbacks); an ops struct is a variable of either (a kernel's BTF says which exist).
OPS_TYPE_PREFIX = "struct sched_ext_ops"
_MAX_PROPAGATION_DEPTH = 4


@dataclass
class Call:
    name: str  # as written: a kfunc flavour (`foo___new`), a helper, or a function
    family: str  # the kernel's name: `foo___new` → `foo`
    decl: ci.Cursor | None
    cursor: ci.Cursor
    node: int  # index in the caller's BodyIndex
    args: list[ci.Cursor]
    guards: frozenset[str]
    depth: int
    caller: str


@dataclass
class Function:
    name: str
    decl: ci.Cursor
    own: bool
    body: BodyIndex
    params: list[str]
    calls: list[Call] = field(default_factory=list)
    passed: list[tuple[str, str]] = field(default_factory=list)  # (function, call it is given to)

    @cached_property
    def section(self) -> str | None:
        return section_of(self.decl) or section_of(self.decl.canonical)

    @property
    def is_struct_ops(self) -> bool:
        return (self.section or "").startswith("struct_ops")

    @property
    def sleepable(self) -> bool:
        return (self.section or "").startswith("struct_ops.s/")


@dataclass
class OpsMember:
    name: str
    value: ci.Cursor
    function: str | None  # the function the member points to


@dataclass
class OpsStruct:
    decl: ci.Cursor
    section: str | None
    members: dict[str, OpsMember]
    fields: dict[str, ci.Type]  # every member of struct sched_ext_ops in vmlinux.h (the BTF)

    @property
    def name(self) -> str:
        return self.decl.spelling

    @property
    def type_name(self) -> str:
        """`sched_ext_ops` or `sched_ext_ops_cid`: the BTF name of its struct."""
        return self.decl.type.get_canonical().spelling.removeprefix("struct ").strip()


@dataclass(frozen=True)
class Root:
    """A program entry point: a callback of an ops struct, or a timer callback."""

    callback: str  # ops member name, or TIMER_ROOT
    function: str


class PolicyModel:
    def __init__(self, tu: ci.TranslationUnit, path: Path) -> None:
        self.tu = tu
        self.path = path
        self.sources = [str(path), *included_sources(tu)]
        self.top = own_top_level(tu, path, self.sources[1:])
        self.functions: dict[str, Function] = {}
        self._collect_functions()
        self.ops = [self._ops_struct(c) for c in self.top if _is_ops_var(c)]
        self._reach_cache: dict[str, dict[str, tuple[str, ...]]] = {}
        self._value_cache: dict[tuple[str, str, int], list[tuple[int | None, ci.Cursor]]] = {}

    # ---- functions and calls --------------------------------------------------------------

    def _collect_functions(self) -> None:
        pending = deque(
            (c, True) for c in self.top if c.kind == CK.FUNCTION_DECL and c.is_definition()
        )
        while pending:
            decl, own = pending.popleft()
            if decl.spelling in self.functions:
                continue
            fn = self._function(decl, own)
            if fn is None:
                continue
            self.functions[fn.name] = fn
            for call in fn.calls:
                definition = _definition(call.decl)
                if definition is not None and call.name not in self.functions:
                    pending.append((definition, False))
            for name, _ in fn.passed:
                definition = self._function_definition(fn, name)
                if definition is not None:
                    pending.append((definition, False))

    def _function(self, decl: ci.Cursor, own: bool) -> Function | None:
        body = function_body(decl)
        if body is None:
            return None
        index = BodyIndex(body)
        params = [a.spelling for a in decl.get_arguments()]
        fn = Function(decl.spelling, decl, own, index, params)
        for i, node in enumerate(index.nodes):
            if node.kind == CK.CALL_EXPR:
                call = _call(node, i, fn.name)
                fn.calls.append(call)
                fn.passed += [(name, call.name) for name in _function_args(call)]
        return fn

    def _function_definition(self, fn: Function, name: str) -> ci.Cursor | None:
        for node in fn.body.nodes:
            if node.kind == CK.DECL_REF_EXPR and node.cursor.spelling == name:
                return _definition(node.cursor.referenced)
        return None

    @property
    def own_functions(self) -> list[Function]:
        return [f for f in self.functions.values() if f.own]

    def callees(self, fn: Function) -> list[tuple[str, Call | None]]:
        """Defined functions that run as part of `fn`: called, or passed as a synchronous
        callback (bpf_loop, rbtree comparators). Timer callbacks run later, on their own."""
        out: list[tuple[str, Call | None]] = [
            (c.name, c) for c in fn.calls if c.name in self.functions
        ]
        out += [
            (name, None)
            for name, via in fn.passed
            if via != TIMER_SET_CALLBACK and name in self.functions
        ]
        return out

    @cached_property
    def callers(self) -> dict[str, list[tuple[Function, Call]]]:
        index: dict[str, list[tuple[Function, Call]]] = {}
        for fn in self.functions.values():
            for call in fn.calls:
                index.setdefault(call.name, []).append((fn, call))
        return index

    def reach(self, start: str) -> dict[str, tuple[str, ...]]:
        """Every function that runs when `start` runs, with the call path from `start`."""
        if start in self._reach_cache:
            return self._reach_cache[start]
        paths: dict[str, tuple[str, ...]] = {start: (start,)}
        queue = deque([start])
        while queue:
            name = queue.popleft()
            fn = self.functions.get(name)
            if fn is None:
                continue
            for callee, _ in self.callees(fn):
                if callee not in paths:
                    paths[callee] = paths[name] + (callee,)
                    queue.append(callee)
        self._reach_cache[start] = paths
        return paths

    def cut_off(self, start: str, fn: Function, node: int) -> bool:
        """Whether node `node` of `fn` never runs when `start` runs because every call of
        `fn` from the functions `start` reaches passes a constant argument that fails a
        condition around the node: scx_cosmos's `pick_idle_cpu(..., true)` from ops.enqueue
        returns at `if (from_enqueue) return -EBUSY;` before scx_bpf_select_cpu_dfl()."""
        conditions = fn.body.nodes[node].conditions
        if fn.name == start or not conditions:
            return False
        sites = [
            call
            for name in self.reach(start)
            for call in getattr(self.functions.get(name), "calls", [])
            if call.name == fn.name
        ]
        if not sites:
            return False
        for call in sites:
            bindings = {}
            for param, arg in zip(fn.params, call.args, strict=False):
                value = const_int(arg)
                if value is not None:
                    bindings[param] = value
            if not any(
                _truth(fn.body.nodes[c].cursor, bindings) is (not holds) for c, holds in conditions
            ):
                return False
        return True

    # ---- entry points ---------------------------------------------------------------------

    @cached_property
    def roots(self) -> list[Root]:
        roots = []
        for ops in self.ops:
            for member in ops.members.values():
                if member.function in self.functions:
                    roots.append(Root(member.name, member.function))
        for fn in self.functions.values():
            for name, via in fn.passed:
                if via == TIMER_SET_CALLBACK and name in self.functions:
                    roots.append(Root(TIMER_ROOT, name))
        return roots

    def sleepable(self, root: Root) -> bool:
        fn = self.functions.get(root.function)
        return root.callback != TIMER_ROOT and fn is not None and fn.sleepable

    # ---- values ---------------------------------------------------------------------------

    def value_sources(
        self, fn: Function, expr: ci.Cursor, depth: int = 0
    ) -> list[tuple[int | None, ci.Cursor]]:
        """The constants an argument may have, each with the expression that supplies it: the
        argument itself, or, for a parameter of a helper like the runtime's
        `schedc_insert(p, dsq_id, ...)`, what its callers pass in. None means "not constant"."""
        value = const_int(expr)
        if value is not None:
            return [(value, expr)]
        name = referenced_name(expr)
        if name is None or name not in fn.params or depth >= _MAX_PROPAGATION_DEPTH:
            return [(None, expr)]
        key = (fn.name, name, depth)
        if key not in self._value_cache:
            position = fn.params.index(name)
            found: list[tuple[int | None, ci.Cursor]] = []
            for caller, call in self.callers.get(fn.name, []):
                if position < len(call.args):
                    found += self.value_sources(caller, call.args[position], depth + 1)
            self._value_cache[key] = found or [(None, expr)]
        return self._value_cache[key]

    def values(self, fn: Function, expr: ci.Cursor) -> set[int | None]:
        return {value for value, _ in self.value_sources(fn, expr)}

    def defined(self, call: Call) -> bool:
        """Whether the called function has a body here (a header's `static inline` wrapper
        such as 7.x's scx_bpf_reenqueue_local()): then it is no kfunc call, and the calls in
        its body are judged instead."""
        return call.name in self.functions or _definition(call.decl) is not None

    def dead_on(self, fn: Function, node: int, has_symbol: Callable[[str], bool]) -> bool:
        """Whether node `node` of `fn` never runs on a kernel because it sits in the branch a
        `bpf_ksym_exists(weak_kfunc)` test (or `!...`) does not take there: libbpf resolves
        the weak kfunc or leaves it 0, and the verifier drops the dead branch.
        `has_symbol(name)` says whether the kernel has a ksym."""
        body = fn.body
        for condition, holds in body.nodes[node].conditions:
            value = self._ksym_truth(body, condition, has_symbol)
            if value is not None and value != holds:
                return True
        return False

    def _ksym_truth(
        self, body: BodyIndex, index: int, has_symbol: Callable[[str], bool], depth: int = 0
    ) -> bool | None:
        node = body.nodes[index]
        children = [i for i in range(index + 1, node.end) if body.nodes[i].parent == index]
        if depth > 32:
            return None
        if node.kind in (CK.UNEXPOSED_EXPR, CK.PAREN_EXPR, CK.StmtExpr) and children:
            return self._ksym_truth(body, children[-1], has_symbol, depth + 1)
        if node.kind == CK.COMPOUND_STMT and children:  # ({ ...; !!sym; }): its last statement
            return self._ksym_truth(body, children[-1], has_symbol, depth + 1)
        if node.kind == CK.UNARY_OPERATOR and unary_op(node.cursor) == UN_LNOT and children:
            value = self._ksym_truth(body, children[0], has_symbol, depth + 1)
            return None if value is None else not value
        if node.kind == CK.CALL_EXPR and len(children) == 1:
            # a helper that only returns a ksym test: __COMPAT_has_generic_reenq() in scx
            helper = self.functions.get(node.cursor.spelling)
            returns = (
                [i for i, n in enumerate(helper.body.nodes) if n.kind == CK.RETURN_STMT]
                if helper is not None
                else []
            )
            if helper is not None and len(returns) == 1 and not helper.params:
                inner = helper.body
                if inner.nodes[returns[0]].end > returns[0] + 1:
                    return self._ksym_truth(inner, returns[0] + 1, has_symbol, depth + 1)
            return None
        if node.kind == CK.DECL_REF_EXPR:
            ref = node.cursor.referenced
            if ref is not None and ref.kind == CK.FUNCTION_DECL and self.is_weak(ref):
                return has_symbol(ref.spelling)
        return None

    def is_weak(self, decl: ci.Cursor | None) -> bool:
        if decl is None:
            return False
        return is_weak(decl) or is_weak(decl.canonical)

    # ---- sched_ext_ops --------------------------------------------------------------------

    def _ops_struct(self, decl: ci.Cursor) -> OpsStruct:
        fields = _struct_fields(decl.type)
        members: dict[str, OpsMember] = {}
        for init in decl.get_children():
            if init.kind == CK.INIT_LIST_EXPR:
                members = _designated_members(init, list(fields))
        return OpsStruct(decl, section_of(decl), members, fields)


def ops_name_value(member: OpsMember) -> str | None:
    return const_str(strip(member.value)) if member.value is not None else None


def _is_ops_var(cursor: ci.Cursor) -> bool:
    if cursor.kind != CK.VAR_DECL:
        return False
    spelling = cursor.type.get_canonical().spelling
    return spelling == OPS_TYPE or re.fullmatch(rf"{OPS_TYPE_PREFIX}_\w+", spelling) is not None


def _definition(decl: ci.Cursor | None) -> ci.Cursor | None:
    if decl is None or decl.kind != CK.FUNCTION_DECL:
        return None
    definition = decl.get_definition()
    return definition if definition is not None and function_body(definition) else None


def _truth(cond: ci.Cursor, bindings: dict[str, int]) -> bool | None:
    """The value of a condition on parameters bound to constants (`p`, `!p`, `p == 1`), or
    None when it depends on anything else."""
    inner = strip(cond)
    if inner.kind == CK.DECL_REF_EXPR:
        ref = inner.referenced
        if ref is not None and ref.kind == CK.PARM_DECL and inner.spelling in bindings:
            return bindings[inner.spelling] != 0
        return None
    children = list(inner.get_children())
    if inner.kind == CK.UNARY_OPERATOR and len(children) == 1 and unary_op(inner) == UN_LNOT:
        value = _truth(children[0], bindings)
        return None if value is None else not value
    if inner.kind == CK.BINARY_OPERATOR and len(children) == 2:
        op = binary_op(inner)
        if op not in (BIN_EQ, BIN_NE):
            return None
        left, right = (strip(c) for c in children)
        for param, other in ((left, right), (right, left)):
            value = const_int(other)
            ref = param.referenced if param.kind == CK.DECL_REF_EXPR else None
            if (
                ref is not None
                and ref.kind == CK.PARM_DECL
                and param.spelling in bindings
                and value is not None
            ):
                return (bindings[param.spelling] == value) is (op == BIN_EQ)
    return None


def _call(node: Node, index: int, caller: str) -> Call:
    cursor = node.cursor
    decl = cursor.referenced
    if decl is not None and decl.kind in (CK.FUNCTION_DECL, CK.VAR_DECL):
        name = decl.spelling
    else:
        children = list(cursor.get_children())
        name = (referenced_name(children[0]) if children else None) or cursor.spelling
        decl = None
    return Call(
        name=name,
        family=essential_name(name),
        decl=decl,
        cursor=cursor,
        node=index,
        args=list(cursor.get_arguments()),
        guards=node.guards,
        depth=node.depth,
        caller=caller,
    )


def _function_args(call: Call) -> list[str]:
    names = []
    for arg in call.args:
        inner = strip(arg)
        if inner.kind == CK.UNARY_OPERATOR:  # &fn
            children = list(inner.get_children())
            inner = strip(children[0]) if children else inner
        if inner.kind == CK.DECL_REF_EXPR:
            ref = inner.referenced
            if ref is not None and ref.kind == CK.FUNCTION_DECL:
                names.append(inner.spelling)
    return names


def _struct_fields(type_: ci.Type) -> dict[str, ci.Type]:
    canonical = type_.get_canonical()
    return {f.spelling: f.type for f in canonical.get_fields()}


def _designated_members(init: ci.Cursor, field_names: list[str]) -> dict[str, OpsMember]:
    members: dict[str, OpsMember] = {}
    for position, item in enumerate(init.get_children()):
        children = list(item.get_children())
        if item.kind == CK.UNEXPOSED_EXPR and children and children[0].kind == CK.MEMBER_REF:
            name, value = children[0].spelling, children[-1]
        elif position < len(field_names):  # positional initializer
            name, value = field_names[position], item
        else:
            continue
        members[name] = OpsMember(name, value, _pointed_function(value))
    return members


def _pointed_function(value: ci.Cursor) -> str | None:
    inner = strip(value)
    if inner.kind == CK.UNARY_OPERATOR:
        children = list(inner.get_children())
        inner = strip(children[0]) if children else inner
    if inner.kind == CK.DECL_REF_EXPR:
        ref = inner.referenced
        if ref is not None and ref.kind == CK.FUNCTION_DECL:
            return inner.spelling
    return None
