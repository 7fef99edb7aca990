"""Lowering of a typed policy to sched_ext BPF C.

Expressions become pycparser ASTs printed by its generator, so every emitted expression is
syntactically valid C with the right parentheses; the surrounding program comes from the
jinja2 template `codegen_templates/policy.bpf.c.j2`. Statements that come from a DSL line are
preceded by `#line N "policy.sched"`, so clang's BTF line info — and with it the kernel
verifier's log — points at the DSL. The output depends only on the policy and the file names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from types import MappingProxyType

import jinja2
from pycparser import c_ast, c_generator

from schedc.diagnostics import Span
from schedc.dsl import ast
from schedc.dsl.language import OPERATORS, format_cpu_list
from schedc.dsl.sema import (
    DEFAULT_LAG_NS,
    DEFAULT_SLICE_NS,
    SLICE_MAX_NS,
    SLICE_MIN_NS,
    TClass,
    TQueue,
    Ty,
    TypedPolicy,
)

TEMPLATE = "policy.bpf.c.j2"
RESET_MARK = "//@schedc-reset-line"


@dataclass(frozen=True)
class CommSource:
    """Where the generated classify() reads a task-name attribute: into the buffer `buf`, from
    the task itself (`via` None) or from the task its `via` pointer names."""

    buf: str
    via: str | None


# A task-name attribute (language.ATTRIBUTES of type COMM) is a row here and nothing else.
COMM_SOURCES: dict[tuple[str, ...], CommSource] = {
    ("comm",): CommSource("comm", None),
    ("parent", "comm"): CommSource("pcomm", "real_parent"),
    ("process", "comm"): CommSource("lcomm", "group_leader"),
}


def _const(value: int, ty: Ty) -> c_ast.Constant:
    if ty == Ty.DURATION:
        return c_ast.Constant("unsigned long long", f"{value}ULL")
    if ty == Ty.BOOL:
        return c_ast.Constant("int", "1" if value else "0")
    if value < 0:
        return c_ast.Constant("long long", f"({value}LL)")
    return c_ast.Constant("long long", f"{value}LL")


def _call(name: str, *args: c_ast.Node) -> c_ast.FuncCall:
    return c_ast.FuncCall(c_ast.ID(name), c_ast.ExprList(list(args)))


def _arrow(base: str, *fields: str) -> c_ast.Node:
    node: c_ast.Node = c_ast.ID(base)
    for i, f in enumerate(fields):
        node = c_ast.StructRef(node, "->" if i == 0 else ".", c_ast.ID(f))
    return node


def _char(byte: int) -> c_ast.Constant:
    ch = chr(byte)
    if 32 <= byte < 127 and ch not in "'\\":
        return c_ast.Constant("char", f"'{ch}'")
    return c_ast.Constant("int", f"0x{byte:02x}")


def _all(conds: list[c_ast.Node]) -> c_ast.Node:
    node = conds[0]
    for c in conds[1:]:
        node = c_ast.BinaryOp("&&", node, c)
    return node


def _any(conds: list[c_ast.Node]) -> c_ast.Node:
    node = conds[0]
    for c in conds[1:]:
        node = c_ast.BinaryOp("||", node, c)
    return node


def _hex(value: int) -> c_ast.Constant:
    return c_ast.Constant("unsigned long long", f"0x{value:x}ULL")


def bytes_equal(buf: str, text: bytes, prefix: bool) -> c_ast.Node:
    """`buf` starts with `text` (prefix) or equals it (the byte after it is NUL).

    Compared eight bytes at a time with masks, and the words combined arithmetically, so the
    test is one branch: a chain of byte comparisons lets clang produce code that rejoins after
    every byte, and the kernel verifier then walks 2^n paths.
    """
    want = text if prefix else text + b"\0"
    if not want:
        return c_ast.Constant("int", "1")
    terms: list[c_ast.Node] = []
    for word in range((len(want) + 7) // 8):
        chunk = want[word * 8 : word * 8 + 8]
        value = int.from_bytes(chunk, "little")
        mask = (1 << (8 * len(chunk))) - 1
        load = _call("schedc_word", c_ast.ID(buf), c_ast.Constant("int", str(word)))
        terms.append(c_ast.BinaryOp("&", c_ast.BinaryOp("^", load, _hex(value)), _hex(mask)))
    diff = terms[0]
    for t in terms[1:]:
        diff = c_ast.BinaryOp("|", diff, t)
    return c_ast.BinaryOp("==", diff, c_ast.Constant("int", "0"))


class _Generator(c_generator.CGenerator):
    """pycparser's generator with minimal parentheses, except where clang's -Wparentheses
    (and a human reader) wants them: '&&' inside '||', '&' or '^' inside '|'."""

    _KEEP = {"||": ("&&",), "|": ("&", "^")}

    def __init__(self) -> None:
        super().__init__(reduce_parentheses=True)

    def visit_BinaryOp(self, n: c_ast.BinaryOp) -> str:  # noqa: N802 (pycparser's naming)
        inner = self._KEEP.get(n.op)
        if inner is None:
            return super().visit_BinaryOp(n)
        parts = []
        for side in (n.left, n.right):
            text = self.visit(side)
            if isinstance(side, c_ast.BinaryOp) and side.op in inner:
                text = f"({text})"
            parts.append(text)
        return f"{parts[0]} {n.op} {parts[1]}"


@dataclass
class GlobMatcher:
    func: str
    pattern: str
    steps: list[str]


@dataclass
class CgroupMatcher:
    func: str
    path: str
    parts: list[tuple[int, str, int]]  # level, C condition on buf, buffer size


@dataclass
class ExprLowerer(ast.ExprVisitor[c_ast.Node]):
    """Turns typed DSL expressions into C text; collects the helper functions they need."""

    policy: TypedPolicy
    globs: dict[str, GlobMatcher] = field(default_factory=dict)
    cgroups: dict[str, CgroupMatcher] = field(default_factory=dict)
    gen: c_generator.CGenerator = field(default_factory=_Generator)

    def text(self, expr: ast.Expr) -> str:
        return self.gen.visit(self.node(expr))

    def node(self, e: ast.Expr) -> c_ast.Node:
        return self.visit(e)

    def visit_IntLit(self, e: ast.IntLit) -> c_ast.Node:
        return _const(e.value, Ty.INT)

    def visit_DurationLit(self, e: ast.DurationLit) -> c_ast.Node:
        return _const(e.ns, Ty.DURATION)

    def visit_BoolLit(self, e: ast.BoolLit) -> c_ast.Node:
        return _const(int(e.value), Ty.BOOL)

    def visit_StringLit(self, e: ast.StringLit) -> c_ast.Node:
        # Strings are only the right side of a task-name or cgroup test, lowered there.
        raise AssertionError(f"a string has no C value of its own: {e!r}")

    def visit_Ref(self, e: ast.Ref) -> c_ast.Node:
        param = self.policy.param(e.name)
        ident = c_ast.ID(f"param_{e.name}")
        if param.low is None or param.high is None or param.ty == Ty.BOOL:
            return ident
        # A loader may set any value before load: keep it within the declared range.
        suffix = "u64" if param.ty == Ty.DURATION else "s64"
        return _call(
            f"schedc_clamp_{suffix}",
            ident,
            _const(param.low, param.ty),
            _const(param.high, param.ty),
        )

    def visit_Attr(self, e: ast.Attr) -> c_ast.Node:
        return self._attr(e.path)

    def visit_Neg(self, e: ast.Neg) -> c_ast.Node:
        return c_ast.UnaryOp("-", self.node(e.operand))

    def visit_Not(self, e: ast.Not) -> c_ast.Node:
        return c_ast.UnaryOp("!", self.node(e.operand))

    def visit_BoolOp(self, e: ast.BoolOp) -> c_ast.Node:
        nodes = [self.node(o) for o in e.operands]
        return _all(nodes) if e.op == "and" else _any(nodes)

    def visit_Call(self, e: ast.Call) -> c_ast.Node:
        suffix = "u64" if self.policy.type_of(e) == Ty.DURATION else "s64"
        return _call(f"schedc_{e.func}_{suffix}", *(self.node(a) for a in e.args))

    def visit_Binary(self, e: ast.Binary) -> c_ast.Node:
        return self._binary(e)

    def visit_Compare(self, e: ast.Compare) -> c_ast.Node:
        return self._compare(e)

    def visit_InList(self, e: ast.InList) -> c_ast.Node:
        return _any([self._eq(e.left, item) for item in e.items])

    def visit_StrTest(self, e: ast.StrTest) -> c_ast.Node:
        return self._str_test(e)

    def _attr(self, path: tuple[str, ...]) -> c_ast.Node:
        match path:
            case ("pid",) | ("tgid",):
                return _call("schedc_int", _arrow("p", path[0]))
            case ("nice",):
                return c_ast.BinaryOp(
                    "-",
                    _call("schedc_int", _arrow("p", "static_prio")),
                    c_ast.Constant("int", "SCHEDC_NICE_0_PRIO"),
                )
            case ("weight",):
                return _call("schedc_int", _arrow("p", "scx", "weight"))
            case ("uid",):
                return _call("schedc_task_uid", c_ast.ID("p"))
            case ("nr_cpus_allowed",):
                return _call("schedc_int", _arrow("p", "nr_cpus_allowed"))
            case ("pinned",):
                return c_ast.BinaryOp(
                    "==", _arrow("p", "nr_cpus_allowed"), c_ast.Constant("int", "1")
                )
            case ("kthread",):
                return c_ast.BinaryOp(
                    "!=",
                    c_ast.BinaryOp("&", _arrow("p", "flags"), c_ast.ID("SCHEDC_PF_KTHREAD")),
                    c_ast.Constant("int", "0"),
                )
            case ("avg_runtime",):
                # A task that has not slept yet counts with its current burst, so a CPU hog is
                # "long" before its first sleep.
                return _call(
                    "schedc_max_u64", _arrow("tctx", "avg_runtime"), _arrow("tctx", "burst")
                )
            case ("wakeup_rate",):
                return _call("schedc_int", _arrow("tctx", "wakeup_rate"))
            case ("since_ran",):
                return _call("schedc_sat_sub", c_ast.ID("now"), _arrow("tctx", "last_stopped"))
        raise AssertionError(f"attribute {path} has no lowering")

    def _binary(self, e: ast.Binary) -> c_ast.Node:
        """The C of the operator's OPERATORS row for these operand types (dsl/language.py):
        a C operator, or a runtime helper called with both operands."""
        types = (self.policy.type_of(e.left), self.policy.type_of(e.right))
        c = OPERATORS[e.op].operations[types].c
        left, right = self.node(e.left), self.node(e.right)
        if c.isidentifier():
            return _call(c, left, right)
        return c_ast.BinaryOp(c, left, right)

    def _compare(self, e: ast.Compare) -> c_ast.Node:
        lt = self.policy.type_of(e.left)
        rt = self.policy.type_of(e.right)
        if Ty.COMM in (lt, rt):
            attr, lit = (e.left, e.right) if lt == Ty.COMM else (e.right, e.left)
            assert isinstance(lit, ast.StringLit) and isinstance(attr, ast.Attr)
            eq = bytes_equal(self._comm_buf(attr), lit.value.encode(), prefix=False)
            return eq if e.op == "==" else c_ast.UnaryOp("!", eq)
        return c_ast.BinaryOp(e.op, self.node(e.left), self.node(e.right))

    def _eq(self, left: ast.Expr, item: ast.Expr) -> c_ast.Node:
        if self.policy.type_of(left) == Ty.COMM:
            assert isinstance(left, ast.Attr) and isinstance(item, ast.StringLit)
            return bytes_equal(self._comm_buf(left), item.value.encode(), prefix=False)
        return c_ast.BinaryOp("==", self.node(left), self.node(item))

    def _comm_buf(self, attr: ast.Attr) -> str:
        return COMM_SOURCES[attr.path].buf

    def _str_test(self, e: ast.StrTest) -> c_ast.Node:
        pat = e.pattern.value
        if e.op == "under":
            matcher = self.cgroups.get(pat)
            if matcher is None:
                matcher = self._cgroup_matcher(pat)
                self.cgroups[pat] = matcher
            return _call(matcher.func, c_ast.ID("p"))
        assert isinstance(e.left, ast.Attr)
        buf = self._comm_buf(e.left)
        if e.op == "startswith":
            return bytes_equal(buf, pat.encode(), prefix=True)
        matcher = self.globs.get(pat)
        if matcher is None:
            matcher = self._glob_matcher(pat)
            self.globs[pat] = matcher
        return _call(matcher.func, c_ast.ID(buf))

    def _glob_matcher(self, pattern: str) -> GlobMatcher:
        steps: list[str] = []
        for ch in pattern.encode():
            if ch == ord("*"):
                steps.append("st = schedc_glob_star(st, valid);")
            elif ch == ord("?"):
                steps.append("st = (st << 1) & valid & ~1u;")
            else:
                steps.append(
                    f"st = (st << 1) & (schedc_byte_positions(w0, w1, {self.gen.visit(_char(ch))}) << 1) & valid;"
                )
        return GlobMatcher(f"schedc_glob_{len(self.globs)}", pattern, steps)

    def _cgroup_matcher(self, path: str) -> CgroupMatcher:
        parts = [p for p in path.strip("/").split("/") if p]
        conds = []
        for level, part in enumerate(parts, start=1):
            raw = part.encode()
            conds.append((level, self.gen.visit(bytes_equal("buf", raw, prefix=False)), 64))
        return CgroupMatcher(f"schedc_cgroup_under_{len(self.cgroups)}", path, conds)


def _cpu_set_test(cpus: list[int]) -> str:
    """A loop-free membership test of `cpu` in a compile-time set: one 64-bit word per block."""
    words: dict[int, int] = {}
    for c in cpus:
        words[c // 64] = words.get(c // 64, 0) | (1 << (c % 64))
    terms = []
    for block, bits in sorted(words.items()):
        lo = block * 64
        terms.append(f"(cpu >= {lo} && cpu < {lo + 64} && ((0x{bits:x}ULL >> (cpu - {lo})) & 1))")
    return " || ".join(terms)


@dataclass
class LoweredQueue:
    name: str
    id: int
    order: str
    rank: int
    key: str | None
    direction: str | None
    lag: str
    line: int
    cpus: list[int] | None  # the CPUs listed in `on cpus` (with cpus_except: excluded)
    cpu_test: str | None  # C: is `cpu` one the queue's classes may use?
    strict_start: bool = False  # never skipped by a waking task that finds an idle CPU
    cpus_except: bool = False  # `on cpus not ...`
    first_cpu: int = 0  # the smallest CPU id the classes may use
    cpus_label: str = ""  # "2-65" or "all but 0-1", for comments
    max_wait: str | None = None  # C: `max_wait`, a task queued longer is served first


@dataclass
class LoweredClass:
    name: str
    index: int
    cond: str | None
    line: int
    slice: str
    slice_line: int
    queue: LoweredQueue
    preempts: bool
    counters: dict[str, list[int]]
    # `preempts a, b`: (index, name) of each class it preempts; () for a bare `preempts`.
    preempt_targets: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Features:
    """What the generated C needs, decided once from the policy: each flag turns a part of the
    template on (task storage, the clock, callbacks); the template reads nothing else of it."""

    comms: tuple[CommSource, ...]  # the task names the classes test, read once per classify
    avg_runtime: bool
    wakeup_rate: bool  # the statistic, or a wakeup counter
    since_ran: bool
    vtime: bool  # some queue is ordered by virtual time
    preempt: bool  # some class preempts on wake-up
    aging: bool  # strict dispatch with an aging bound
    cpusets: bool  # some queue is pinned to CPUs
    # running() always runs: it records what each CPU runs, for wake-up preemption and for
    # the slice scaling in tick() (the compiler's latency defaults, docs/dsl.md).
    running: bool
    # tick() scales slices (a latency default that is off unless the policy turns it on) and
    # charges shares: without either there is no tick callback.
    tick: bool
    # The preempting classes with a FIFO queue: a waking task of one may go straight to its
    # CPU's local queue with SCX_ENQ_PREEMPT when nothing of its queue waits (enqueue's `direct`).
    direct_preempt: tuple[int, ...]
    # The classes whose queue starts its tasks in order (`ordered by`, `deadline`, `strict`):
    # they do not skip it on wake-up.
    ordered_start: tuple[int, ...]
    # One class in one vtime queue (what scx_simple does): the slice a task was given is its
    # class's, so the time used is known at stopping without per-task state.
    simple_vtime: bool
    # Only the latency defaults (wake-up preemption, slice scaling) read what running()
    # records of each CPU: no class preempts, no shares, one queue. running() then writes the
    # record only when one of them is on, and a one-vtime-queue stopping() charges "slice
    # given - slice left" when both are off, so a policy with them off pays for neither.
    record_on_demand: bool
    # Task-local storage and the clock cost a helper call each on hot paths: only when used.
    tctx: bool
    # The clock: wake-up preemption compares against how long the running task has run.
    clock: bool
    stopping: bool  # the stopping() callback (runtime statistics, vtime charging, shares)
    shares: bool  # `dispatch shares`: each queue's CPU time is charged and compared
    # Some queue has `max_wait`: tasks record when they were queued, and dispatch looks for
    # one that has waited too long (a walk over the queue's first tasks).
    max_wait: bool = False
    # Tasks record when they were queued (`tctx->queued_at`): for max_wait, and for aging,
    # which restarts a queue's wait from its new head's enqueue time after a take.
    queued_at: bool = False


def policy_features(
    policy: TypedPolicy, classes: list[LoweredClass], queues: list[LoweredQueue]
) -> Features:
    vtime = any(q.order == "vtime" for q in policy.queues)
    preempt = any(c.preempts for c in classes)
    wakeup_rate = "wakeup_rate" in policy.stats or bool(policy.counters_for("wakeup"))
    simple_vtime = (
        vtime
        and len(policy.classes) == 1
        and len(policy.queues) == 1
        and not policy.stats
        and not preempt
        and not wakeup_rate
    )
    avg_runtime = "avg_runtime" in policy.stats
    since_ran = "since_ran" in policy.stats
    max_wait = any(q.max_wait is not None for q in policy.queues)
    aging = policy.aging is not None and policy.dispatch_kind == "strict"
    shares = policy.dispatch_kind == "shares"
    return Features(
        comms=tuple(s for path, s in COMM_SOURCES.items() if path in policy.attrs),
        avg_runtime=avg_runtime,
        wakeup_rate=wakeup_rate,
        since_ran=since_ran,
        vtime=vtime,
        preempt=preempt,
        aging=aging,
        cpusets=any(q.cpus for q in queues),
        running=True,
        tick=shares or policy.latency["slice_scaling"],
        direct_preempt=tuple(c.index for c in classes if c.preempts and c.queue.order == "fifo"),
        ordered_start=tuple(c.index for c in classes if c.queue.strict_start),
        simple_vtime=simple_vtime,
        record_on_demand=(
            not preempt and not shares and len(policy.queues) == 1
        ),
        tctx=(
            bool(policy.stats)
            or (vtime and not simple_vtime)
            or preempt
            or wakeup_rate
            or len(classes) > 1  # running() needs the class of the task it sees
            or max_wait  # when each task was queued
            or aging
        ),
        clock=True,
        stopping=avg_runtime or vtime or since_ran or shares,
        shares=shares,
        max_wait=max_wait,
        queued_at=max_wait or aging,
    )


@dataclass(frozen=True)
class LoweredCounter:
    index: int  # its key in the schedc_counters map
    name: str
    event: str


# The words of a plain field's type: `str`, `int | None`, `list[str]`, ...
_PLAIN_TYPE_WORDS = frozenset({"str", "int", "bool", "None", "list", "tuple", "dict"})


def plain_values(policy: TypedPolicy) -> MappingProxyType[str, object]:
    """The typed policy's plain values (its name, modes, numbers, and tuples of them), which
    the template prints as they are: a statement with a plain value needs nothing here.
    Expressions, classes and queues reach the template lowered, never as typed nodes."""
    values: dict[str, object] = {}
    for f in fields(policy):
        if set(re.findall(r"[\w.]+", str(f.type))) <= _PLAIN_TYPE_WORDS:
            value = getattr(policy, f.name)
            if isinstance(value, list):
                value = tuple(value)
            elif isinstance(value, dict):  # the latency defaults: read-only too
                value = MappingProxyType(dict(value))
            values[f.name] = value
    return MappingProxyType(values)


def _line(span: Span | None) -> int:
    return span.line if span else 0


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("schedc", "codegen_templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    return env


def _c_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _comment(text: str) -> str:
    # Both markers: "*/" would end the comment, "/*" inside one is clang's -Wcomment warning.
    return text.replace("*/", "* /").replace("/*", "/ *").replace("\n", " ")


def lower_policy(policy: TypedPolicy, source_name: str, c_name: str) -> str:
    """Render the policy as BPF C. `source_name` is the DSL path written into #line directives
    (clang reads line text from it when it compiles); `c_name` names the C file itself."""
    context = template_context(policy, source_name)
    text = _environment().get_template(TEMPLATE).render(**context)
    return _resolve_line_resets(text, c_name)


def template_context(policy: TypedPolicy, source_name: str) -> dict[str, object]:
    """Everything the template reads: the lowered view of the policy (C text, DSL lines, the
    Features), never the typed policy itself."""
    lower = ExprLowerer(policy)
    queues: dict[int, LoweredQueue] = {}
    for q in policy.queues:
        queues[q.dsq_id] = _lower_queue(q, lower)
    classes = [
        _lower_class(c, queues[c.queue.dsq_id], lower, policy) for c in policy.classes if c.queue
    ]
    features = policy_features(policy, classes, list(queues.values()))
    dispatch_order = [queues[q.dsq_id] for q in policy.dispatch_order]
    cumulative = []
    total = 0
    for w in policy.weights:
        total += w
        cumulative.append(total)
    params = []
    for prm in policy.params:
        ctype = {Ty.DURATION: "u64", Ty.INT: "s64", Ty.BOOL: "bool"}[prm.ty]
        value = lower.gen.visit(_const(prm.value, prm.ty))
        rng = ""
        if prm.low is not None and prm.high is not None:
            rng = f" (range {prm.low}..{prm.high})"
        params.append(
            {"name": prm.name, "ctype": ctype, "value": value, "line": prm.span.line, "range": rng}
        )
    return {
        "policy": plain_values(policy),
        "aging_counters": tuple(k.index for k in policy.counters_for("aging")),
        "description": _comment(policy.description),
        "name_str": _c_string(policy.name),
        "source": _c_string(source_name),
        "classes": classes,
        "queues": [queues[i] for i in sorted(queues)],
        "dispatch_order": dispatch_order,
        "weights_cumulative": cumulative,
        "weights_total": total,
        # `dispatch shares`: (queue, share) in dispatch order
        "shares": list(zip(dispatch_order, policy.weights, strict=True))
        if policy.dispatch_kind == "shares"
        else [],
        "aging": lower.text(policy.aging) if policy.aging is not None else None,
        "aging_line": _line(policy.aging.span) if policy.aging is not None else 0,
        "params": params,
        "counters": tuple(LoweredCounter(k.index, k.name, k.event) for k in policy.counters),
        "features": features,
        "globs": list(lower.globs.values()),
        "cgroups": list(lower.cgroups.values()),
        "slice_min": SLICE_MIN_NS,
        "slice_max": SLICE_MAX_NS,
        "reset": RESET_MARK,
    }


def _first_usable(cpus: list[int], except_: bool) -> int:
    if not except_:
        return cpus[0]
    excluded = set(cpus)
    return next(c for c in range(len(cpus) + 1) if c not in excluded)


def _lower_queue(q: TQueue, lower: ExprLowerer) -> LoweredQueue:
    cpus = q.classes[0].cpus if q.classes else None
    except_ = bool(q.classes and q.classes[0].cpus_except)
    lag = lower.text(q.lag) if q.lag is not None else f"{DEFAULT_LAG_NS}ULL"
    if q.order == "deadline" and q.lag is None:
        lag = "1000000000ULL"
    return LoweredQueue(
        name=q.name,
        id=q.dsq_id,
        order=q.order,
        rank=q.rank,
        key=lower.text(q.key) if q.key is not None else None,
        direction=q.direction,
        lag=lag,
        line=_line(q.span),
        cpus=cpus,
        cpu_test=(
            (f"!({_cpu_set_test(cpus)})" if except_ else _cpu_set_test(cpus)) if cpus else None
        ),
        strict_start=q.strict_start,
        cpus_except=except_,
        first_cpu=_first_usable(cpus, except_) if cpus else 0,
        cpus_label=(("all but " if except_ else "") + format_cpu_list(cpus)) if cpus else "",
        max_wait=lower.text(q.max_wait) if q.max_wait is not None else None,
    )


def _lower_class(
    c: TClass, queue: LoweredQueue, lower: ExprLowerer, policy: TypedPolicy
) -> LoweredClass:
    counters = {
        event: [k.index for k in policy.counters_for(event, c)]
        for event in ("enqueue", "direct", "wakeup", "preempt")
    }
    return LoweredClass(
        name=c.name,
        index=c.index,
        cond=lower.text(c.when) if c.when is not None else None,
        line=c.span.line,
        slice=lower.text(c.slice) if c.slice is not None else f"{DEFAULT_SLICE_NS}ULL",
        slice_line=c.slice.span.line if c.slice is not None else c.span.line,
        queue=queue,
        preempts=c.preempts,
        counters=counters,
        preempt_targets=tuple((i, policy.classes[i].name) for i in c.preempt_targets),
    )


def _resolve_line_resets(text: str, c_name: str) -> str:
    """Make `#line` mapping exact. A `#line N "policy.sched"` in the template maps the block
    after it to DSL line N, so every further code line of the block gets the same directive
    (plain `#line` would count on: N+1, N+2, ...); a reset mark returns to the C file's own
    numbering."""
    out: list[str] = []
    mapped: str | None = None  # the directive of the DSL line the current block maps to
    fresh = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == RESET_MARK:
            mapped = None
            out.append(f'#line {len(out) + 2} "{_c_string(c_name)}"')
            continue
        if stripped.startswith("#line "):
            mapped, fresh = stripped, True
            out.append(line)
            continue
        if mapped is not None and stripped and not fresh:
            out.append(mapped)
        fresh = False
        out.append(line)
    return "\n".join(out) + "\n"
