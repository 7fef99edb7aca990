"""Semantic analysis: names, types and units, matcher validity, limits, reachability.

Takes the AST, returns a `TypedPolicy` that the lowering can trust (every expression typed,
every name resolved, every limit respected) and the diagnostics. All problems are collected.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from schedc.diagnostics import Diagnostic, Severity, Span, has_errors
from schedc.dsl import ast

# Limits the compiler enforces so the kernel verifier's limits are never the first to complain.
MAX_CLASSES = 32
MAX_QUEUES = 16
MAX_PARAMS = 32
MAX_COUNTERS = 32
MAX_LIST_ITEMS = 32
MAX_EXPR_DEPTH = 64
MAX_TAGS = 16
MAX_CPU_ID = 1023
MAX_CPUS_PER_SET = 64
MAX_WEIGHT = 100
MAX_WEIGHT_SUM = 1000
MAX_VALUE = 2**63 - 1  # constants stay within s64, as literals do (E008)
COMM_LEN = 15  # TASK_COMM_LEN - 1
MAX_GLOB_LEN = 32
MAX_CGROUP_DEPTH = 8
MAX_CGROUP_NAME = 63
SLICE_MIN_NS = 10_000
SLICE_MAX_NS = 1_000_000_000
LAG_MAX_NS = 10_000_000_000
WATCHDOG_MIN_NS = 100_000_000
WATCHDOG_MAX_NS = 30_000_000_000  # SCX_WATCHDOG_MAX_TIMEOUT
DEFAULT_SLICE_NS = 20_000_000  # SCX_SLICE_DFL
DEFAULT_LAG_NS = 20_000_000
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,23}")
# Words of the expression language. Statement keywords (slice, lag, queue, ...) may name
# things, as in `param slice = 20ms`; these may not, or `when or or or` would parse.
EXPRESSION_KEYWORDS = frozenset(
    {"and", "or", "not", "true", "false", "task", "in", "matches", "startswith", "under"}
)


class Ty(Enum):
    INT = "int"
    DURATION = "duration"
    BOOL = "bool"
    STRING = "string"
    COMM = "comm"
    CGROUP = "cgroup path"
    ERROR = "<error>"

    def describe(self) -> str:
        return {
            Ty.INT: "a count (int)",
            Ty.DURATION: "a duration",
            Ty.BOOL: "a condition (bool)",
            Ty.STRING: "a string",
            Ty.COMM: "a task name (comm)",
            Ty.CGROUP: "a cgroup path",
            Ty.ERROR: "an invalid value",
        }[self]


@dataclass(frozen=True)
class AttrInfo:
    ty: Ty
    doc: str
    stat: bool = False


ATTRIBUTES: dict[tuple[str, ...], AttrInfo] = {
    ("comm",): AttrInfo(Ty.COMM, "the task's name (15 characters at most)"),
    ("parent", "comm"): AttrInfo(Ty.COMM, "the parent process's name"),
    ("pid",): AttrInfo(Ty.INT, "the thread id"),
    ("tgid",): AttrInfo(Ty.INT, "the process id"),
    ("nice",): AttrInfo(Ty.INT, "the nice value, -20..19"),
    ("weight",): AttrInfo(Ty.INT, "the sched_ext weight, 1..10000 (100 at nice 0)"),
    ("uid",): AttrInfo(Ty.INT, "the effective user id"),
    ("cgroup",): AttrInfo(Ty.CGROUP, "the task's cgroup (v2) path"),
    ("kthread",): AttrInfo(Ty.BOOL, "true for kernel threads"),
    ("nr_cpus_allowed",): AttrInfo(Ty.INT, "how many CPUs the task may run on"),
    ("pinned",): AttrInfo(Ty.BOOL, "true when the task may run on one CPU only"),
    ("avg_runtime",): AttrInfo(
        Ty.DURATION, "average CPU time per run, from wakeup to sleep (moving average)", True
    ),
    ("wakeup_rate",): AttrInfo(Ty.INT, "wakeups per second (moving average)", True),
    ("since_ran",): AttrInfo(Ty.DURATION, "time since the task last stopped running", True),
}
FUNCTIONS = {"min": 2, "max": 2, "clamp": 3}
COUNTER_EVENTS = {
    "enqueue": "a task of the class was queued",
    "direct": "a waking task was dispatched straight to an idle CPU",
    "wakeup": "a task of the class woke up",
    "preempt": "a waking task preempted a lower class on its CPU",
    "aging": "a queue was served early because its head waited longer than the aging bound",
}
SELECT_MODES = {
    "idle": "the kernel's idle-CPU search (previous CPU if idle, then an idle core, then any "
    "idle CPU); a task that finds an idle CPU is dispatched to it directly",
    "previous": "stay on the previous CPU; dispatch directly only if that CPU is idle",
}
PARAM_TYPES = {"duration": Ty.DURATION, "int": Ty.INT, "bool": Ty.BOOL}


@dataclass
class TParam:
    name: str
    ty: Ty
    value: int
    low: int | None
    high: int | None
    span: Span
    used: bool = False


@dataclass
class TQueue:
    name: str
    dsq_id: int
    order: str  # fifo | vtime | ordered | deadline
    key: ast.Expr | None
    direction: str | None
    lag: ast.Expr | None
    classes: list[TClass] = field(default_factory=list)
    rank: int = 0
    span: Span | None = None


@dataclass
class TClass:
    name: str
    index: int
    when: ast.Expr | None
    cpus: list[int] | None
    preempts: bool
    span: Span
    queue: TQueue | None = None
    slice: ast.Expr | None = None


@dataclass
class TCounter:
    name: str
    index: int
    event: str
    classes: list[int]  # class indices; empty means all
    span: Span


@dataclass
class TypedPolicy:
    name: str
    description: str
    file: str
    tags: list[str]
    params: list[TParam]
    classes: list[TClass]
    queues: list[TQueue]
    dispatch_kind: str  # strict | weighted
    dispatch_order: list[TQueue]
    weights: list[int]
    aging: ast.Expr | None
    dispatch_line: int  # the `dispatch` statement's line; 0 when implied (one queue)
    select: str
    watchdog_ms: int | None
    counters: list[TCounter]
    types: dict[int, Ty]
    stats: set[str]
    attrs: set[tuple[str, ...]]
    source: str = ""

    def type_of(self, expr: ast.Expr) -> Ty:
        return self.types[id(expr)]

    def param(self, name: str) -> TParam:
        return next(p for p in self.params if p.name == name)

    def counters_for(self, event: str, cls: TClass | None = None) -> list[TCounter]:
        return [
            c
            for c in self.counters
            if c.event == event and (cls is None or not c.classes or cls.index in c.classes)
        ]


def walk(expr: ast.Expr) -> Iterator[ast.Expr]:
    yield expr
    for child in children(expr):
        yield from walk(child)


def children(expr: ast.Expr) -> tuple[ast.Expr, ...]:
    match expr:
        case ast.Call(args=args):
            return args
        case ast.Neg(operand=o) | ast.Not(operand=o):
            return (o,)
        case ast.Binary(left=left, right=right) | ast.Compare(left=left, right=right):
            return (left, right)
        case ast.InList(left=left, items=items):
            return (left, *items)
        case ast.StrTest(left=left, pattern=pattern):
            return (left, pattern)
        case ast.BoolOp(operands=ops):
            return ops
    return ()


def _depth(expr: ast.Expr) -> int:
    return 1 + max((_depth(c) for c in children(expr)), default=0)


def _did_you_mean(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _fmt_ns(ns: int) -> str:
    for unit, scale in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns >= scale and ns % scale == 0:
            return f"{ns // scale}{unit}"
    return f"{ns}ns"


class _Analyzer:
    def __init__(self, policy: ast.Policy, source: str) -> None:
        self.p = policy
        self.source = source
        self.file = policy.file
        self.diags: list[Diagnostic] = []
        self.types: dict[int, Ty] = {}
        self.params: dict[str, TParam] = {}
        self.stats: set[str] = set()
        self.attrs: set[tuple[str, ...]] = set()
        self.folded: dict[tuple[int, bool], int | None] = {}
        self.overflows: dict[int, ast.Expr] = {}

    # -- reporting -------------------------------------------------------------------------
    def error(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic.at(Severity.ERROR, code, message, self.file, span, hint))

    def warn(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic.at(Severity.WARNING, code, message, self.file, span, hint))

    def reserved(self, name: ast.Name, what: str) -> bool:
        if name.value in EXPRESSION_KEYWORDS:
            self.error(
                "E012",
                f"'{name.value}' is a keyword and cannot name a {what}",
                name.span,
                f"choose another name, e.g. '{name.value}_{what}'",
            )
            return True
        return False

    # -- expressions -----------------------------------------------------------------------
    def typeof(self, expr: ast.Expr) -> Ty:
        ty = self._typeof(expr)
        self.types[id(expr)] = ty
        if ty in (Ty.INT, Ty.DURATION) and isinstance(expr, (ast.Binary, ast.Neg, ast.Call)):
            self.const(expr)  # folds it once, so that a constant overflow is reported (E115)
        return ty

    def _typeof(self, e: ast.Expr) -> Ty:
        match e:
            case ast.IntLit():
                return Ty.INT
            case ast.DurationLit():
                return Ty.DURATION
            case ast.BoolLit():
                return Ty.BOOL
            case ast.StringLit():
                return Ty.STRING
            case ast.Attr(path=path):
                info = ATTRIBUTES.get(path)
                if info is None:
                    known = [".".join(k) for k in ATTRIBUTES]
                    close = _did_you_mean(".".join(e.path), known)
                    hint = (
                        close.replace("'", "'task.", 1)
                        if close
                        else "task attributes: " + ", ".join("task." + k for k in known)
                    )
                    self.error("E106", f"unknown task attribute '{e.dotted}'", e.span, hint)
                    return Ty.ERROR
                self.attrs.add(path)
                if info.stat:
                    self.stats.add(path[0])
                return info.ty
            case ast.Ref(name=name):
                param = self.params.get(name)
                if param is None:
                    hint = _did_you_mean(name, list(self.params))
                    if name in {c.name.value for c in self.p.classes} | {
                        q.name.value for q in self.p.queues
                    }:
                        hint = f"'{name}' is a class or queue; expressions can use params and task.ATTRIBUTE"
                    elif name in {"comm", "pid", "nice", "weight", "uid", "cgroup"}:
                        hint = f"task attributes are written task.{name}"
                    self.error("E107", f"unknown name '{name}'", e.span, hint)
                    return Ty.ERROR
                param.used = True
                return param.ty
            case ast.Call(func=func, args=args):
                arg_types = [self.typeof(a) for a in args]
                if func not in FUNCTIONS:
                    hint = _did_you_mean(func, list(FUNCTIONS)) or "functions: min, max, clamp"
                    self.error("E108", f"unknown function '{func}'", e.span, hint)
                    return Ty.ERROR
                if len(args) != FUNCTIONS[func]:
                    self.error(
                        "E109",
                        f"{func}() takes {FUNCTIONS[func]} arguments, got {len(args)}",
                        e.span,
                    )
                    return Ty.ERROR
                if Ty.ERROR in arg_types:
                    return Ty.ERROR
                first = arg_types[0]
                if first not in (Ty.INT, Ty.DURATION) or any(t != first for t in arg_types):
                    self.error(
                        "E101",
                        f"{func}() needs arguments of one numeric kind, got "
                        + ", ".join(t.describe() for t in arg_types),
                        e.span,
                        "durations and counts do not mix: write 5ms, not 5",
                    )
                    return Ty.ERROR
                return first
            case ast.Neg(operand=o):
                t = self.typeof(o)
                if t is Ty.DURATION:
                    self.error(
                        "E104",
                        "a duration cannot be negative",
                        e.span,
                        "durations are unsigned; subtract from another duration instead",
                    )
                    return Ty.ERROR
                if t not in (Ty.INT, Ty.ERROR):
                    self.error("E105", f"cannot negate {t.describe()}", e.span)
                    return Ty.ERROR
                return t
            case ast.Binary(op=op, left=left, right=right):
                return self._binary(e, op, self.typeof(left), self.typeof(right))
            case ast.Compare(op=op, left=left, right=right):
                return self._compare(e, op, self.typeof(left), self.typeof(right))
            case ast.InList():
                return self._in_list(e)
            case ast.StrTest():
                return self._str_test(e)
            case ast.BoolOp(op=op, operands=ops):
                for o in ops:
                    t = self.typeof(o)
                    if t not in (Ty.BOOL, Ty.ERROR):
                        self.error(
                            "E110",
                            f"'{op}' needs conditions on both sides, got {t.describe()}",
                            o.span,
                            "compare it: e.g. task.nice < 0",
                        )
                return Ty.BOOL
            case ast.Not(operand=o):
                t = self.typeof(o)
                if t not in (Ty.BOOL, Ty.ERROR):
                    self.error("E110", f"'not' needs a condition, got {t.describe()}", o.span)
                return Ty.BOOL
        raise AssertionError(f"unhandled expression {e!r}")

    def _binary(self, e: ast.Binary, op: str, lt: Ty, rt: Ty) -> Ty:
        if Ty.ERROR in (lt, rt):
            return Ty.ERROR
        numeric = (Ty.INT, Ty.DURATION)
        if lt not in numeric or rt not in numeric:
            bad = lt if lt not in numeric else rt
            self.error("E105", f"'{op}' cannot be applied to {bad.describe()}", e.span)
            return Ty.ERROR
        if op in "+-":
            if lt != rt:
                self.error(
                    "E101",
                    f"unit mismatch: cannot {'add' if op == '+' else 'subtract'} "
                    f"{rt.describe()} {'to' if op == '+' else 'from'} {lt.describe()}",
                    e.span,
                    "give the count a unit (e.g. 5ms) or scale a duration by a count with '*'",
                )
                return Ty.ERROR
            return lt
        if op == "/":
            zero = self.const(e.right)
            if zero == 0:
                self.error("E103", "division by zero", e.right.span)
                return Ty.ERROR
        if op == "*":
            if lt == rt == Ty.DURATION:
                self.error(
                    "E102",
                    "unit mismatch: a duration times a duration has no meaning here",
                    e.span,
                    "scale a duration by a count: slice * 2",
                )
                return Ty.ERROR
            return Ty.DURATION if Ty.DURATION in (lt, rt) else Ty.INT
        # division
        if lt == Ty.INT and rt == Ty.DURATION:
            self.error(
                "E102",
                "unit mismatch: a count divided by a duration has no meaning here",
                e.span,
                "divide a duration by a count (slice / 2) or two durations (a / b gives a count)",
            )
            return Ty.ERROR
        if lt == rt:
            return Ty.INT
        return Ty.DURATION

    def _compare(self, e: ast.Compare, op: str, lt: Ty, rt: Ty) -> Ty:
        if Ty.ERROR in (lt, rt):
            return Ty.BOOL
        if lt == Ty.COMM or rt == Ty.COMM:
            other = rt if lt == Ty.COMM else lt
            lit = e.right if lt == Ty.COMM else e.left
            if op not in ("==", "!=") or other != Ty.STRING:
                self.error(
                    "E105",
                    f"a task name can only be compared with == or != to a string, "
                    f"not with '{op}' to {other.describe()}",
                    e.span,
                    'use task.comm == "name", startswith "pre", matches "glob*" or in [...]',
                )
            else:
                assert isinstance(lit, ast.StringLit)
                self._check_comm_literal(lit)
            return Ty.BOOL
        if lt == Ty.CGROUP or rt == Ty.CGROUP:
            self.error(
                "E105",
                "a cgroup path can only be tested with 'under'",
                e.span,
                'write task.cgroup under "/system.slice"',
            )
            return Ty.BOOL
        if lt != rt or lt == Ty.STRING:
            hint = None
            if {lt, rt} == {Ty.INT, Ty.DURATION}:
                count_side = e.left if lt == Ty.INT else e.right
                if isinstance(count_side, ast.IntLit):
                    hint = "durations need a unit: write 10ms, not 10"
                else:
                    hint = "a count and a duration cannot be compared: compare like with like"
            self.error("E105", f"cannot compare {lt.describe()} with {rt.describe()}", e.span, hint)
            return Ty.BOOL
        if lt == Ty.BOOL and op not in ("==", "!="):
            self.error("E105", f"conditions cannot be ordered with '{op}'", e.span)
        return Ty.BOOL

    def _in_list(self, e: ast.InList) -> Ty:
        lt = self.typeof(e.left)
        if len(e.items) == 0:
            self.error("E111", "an empty list never matches", e.list_span)
            return Ty.BOOL
        if len(e.items) > MAX_LIST_ITEMS:
            self.error(
                "E308",
                f"a list may hold at most {MAX_LIST_ITEMS} items, this one has {len(e.items)}",
                e.list_span,
                "use startswith or matches with a glob to cover many names",
            )
        for item in e.items:
            it = self.typeof(item)
            if lt == Ty.ERROR or it == Ty.ERROR:
                continue
            if lt == Ty.COMM:
                if not isinstance(item, ast.StringLit):
                    self.error("E105", "task names can only be listed as strings", item.span)
                else:
                    self._check_comm_literal(item)
            elif lt in (Ty.INT, Ty.DURATION):
                if it != lt or self.const(item, literal_only=True) is None:
                    self.error(
                        "E105",
                        f"list items must be constant {lt.describe()} values like the left side",
                        item.span,
                    )
            else:
                self.error("E105", f"'in' cannot test {lt.describe()}", e.left.span)
                break
        return Ty.BOOL

    def _check_comm_literal(self, lit: ast.StringLit, prefix: bool = False) -> None:
        if len(lit.value.encode()) > COMM_LEN:
            hint = f"the kernel keeps the first {COMM_LEN} bytes of a task name"
            if not prefix:
                hint += f': compare with "{lit.value.encode()[:COMM_LEN].decode(errors="ignore")}"'
            self.error(
                "E201",
                f'task names are at most {COMM_LEN} bytes: "{lit.value}" can never match',
                lit.span,
                hint,
            )
        elif lit.value == "":
            self.error("E201", "an empty task name never matches", lit.span)

    def _str_test(self, e: ast.StrTest) -> Ty:
        lt = self.typeof(e.left)
        self.typeof(e.pattern)
        pat = e.pattern.value
        if lt == Ty.ERROR:
            return Ty.BOOL
        if e.op == "under":
            if lt != Ty.CGROUP:
                self.error(
                    "E105", "'under' tests a cgroup path: task.cgroup under \"/a/b\"", e.span
                )
                return Ty.BOOL
            parts = pat.strip("/").split("/") if pat.strip("/") else []
            if any(p in (".", "..") for p in parts):
                self.error(
                    "E202",
                    f'cgroup path "{pat}" contains "." or ".."',
                    e.pattern.span,
                    "write the path from the cgroup root without . or .. parts",
                )
            elif pat.startswith("/sys/fs/cgroup"):
                self.error(
                    "E202",
                    f'"{pat}" is a file-system path; cgroup paths start at the cgroup root',
                    e.pattern.span,
                    f'drop the mount point: "{pat.removeprefix("/sys/fs/cgroup") or "/"}"',
                )
            elif not pat.startswith("/") or any(p == "" for p in parts):
                self.error(
                    "E202",
                    f'"{pat}" is not an absolute cgroup path',
                    e.pattern.span,
                    'write it from the cgroup root, e.g. "/system.slice/nginx.service"',
                )
            elif len(parts) > MAX_CGROUP_DEPTH or any(len(p) > MAX_CGROUP_NAME for p in parts):
                self.error(
                    "E202",
                    f"cgroup paths may have at most {MAX_CGROUP_DEPTH} parts of "
                    f"{MAX_CGROUP_NAME} characters",
                    e.pattern.span,
                )
            return Ty.BOOL
        if lt != Ty.COMM:
            self.error(
                "E105",
                f"'{e.op}' tests a task name, not {lt.describe()}",
                e.span,
                'for cgroups write task.cgroup under "/path"' if lt == Ty.CGROUP else None,
            )
            return Ty.BOOL
        if e.op == "startswith":
            self._check_comm_literal(e.pattern, prefix=True)
            return Ty.BOOL
        # glob
        if len(pat) > MAX_GLOB_LEN or len(pat.replace("*", "")) > COMM_LEN:
            self.error(
                "E203",
                f'glob "{pat}" is longer than a task name can be',
                e.pattern.span,
                f"task names have at most {COMM_LEN} characters",
            )
        elif pat == "":
            self.error("E203", "an empty glob matches only an empty name", e.pattern.span)
        elif "[" in pat or "]" in pat:
            self.error(
                "E203",
                "character classes ([...]) are not supported in globs",
                e.pattern.span,
                "use * and ?, or list the names with in [...]",
            )
        return Ty.BOOL

    def expect(self, expr: ast.Expr, want: Ty, what: str, code: str) -> Ty:
        got = self.typeof(expr)
        if got not in (want, Ty.ERROR):
            hint = None
            if want == Ty.DURATION and got == Ty.INT:
                hint = "give it a unit: ns, us, ms or s"
            elif want == Ty.BOOL:
                hint = "write a condition, e.g. task.avg_runtime > 5ms"
            self.error(
                code, f"{what} must be {want.describe()}, got {got.describe()}", expr.span, hint
            )
        if _depth(expr) > MAX_EXPR_DEPTH:
            self.error(
                "E309",
                f"expression is nested more than {MAX_EXPR_DEPTH} levels deep",
                expr.span,
                "split it into params or simplify it",
            )
        return got

    def task_free(self, expr: ast.Expr, what: str) -> bool:
        for node in walk(expr):
            if isinstance(node, ast.Attr):
                self.error(
                    "E113",
                    f"{what} must not depend on the task ({node.dotted})",
                    node.span,
                    "use a constant or a param",
                )
                return False
        return True

    def const(self, expr: ast.Expr, literal_only: bool = False) -> int | None:
        """Value of a task-independent expression (params at their defaults), else None.
        A value outside s64 is None too, and the expression is reported (E115) by `run`."""
        key = (id(expr), literal_only)
        if key in self.folded:
            return self.folded[key]
        value = self._const(expr, literal_only)
        if value is not None and not -MAX_VALUE - 1 <= value <= MAX_VALUE:
            self.overflows.setdefault(id(expr), expr)
            value = None
        self.folded[key] = value
        return value

    def _const(self, expr: ast.Expr, literal_only: bool) -> int | None:
        match expr:
            case ast.IntLit(value=v):
                return v
            case ast.DurationLit(ns=ns):
                return ns
            case ast.BoolLit(value=b):
                return int(b)
            case ast.Ref(name=name) if not literal_only and name in self.params:
                return self.params[name].value
            case ast.Neg(operand=o):
                v = self.const(o, literal_only)
                return None if v is None else -v
            case ast.Binary(op=op, left=left, right=right):
                a, b = self.const(left, literal_only), self.const(right, literal_only)
                if a is None or b is None:
                    return None
                if op == "+":
                    return a + b
                if op == "-":
                    # durations saturate at zero, as the generated C does; counts go negative
                    if self.types.get(id(expr)) == Ty.DURATION:
                        return max(a - b, 0)
                    return a - b
                if op == "*":
                    return a * b
                return a // b if b else None
            case ast.Call(func=func, args=args) if (
                func in FUNCTIONS and len(args) == FUNCTIONS[func]
            ):
                vals = [self.const(a, literal_only) for a in args]
                if any(v is None for v in vals):
                    return None
                ints = [v for v in vals if v is not None]
                if func == "min":
                    return min(ints)
                if func == "max":
                    return max(ints)
                return min(max(ints[0], ints[1]), ints[2])
        return None

    # -- statements ------------------------------------------------------------------------
    def run(self) -> TypedPolicy | None:
        p = self.p
        if not NAME_RE.fullmatch(p.name.value):
            self.error(
                "E010",
                f"scheduler name '{p.name.value}' is not valid",
                p.name.span,
                "use 1-24 lowercase letters, digits and '_', starting with a letter",
            )
        self._params()
        classes = self._classes()
        queues = self._queues(classes)
        dispatch_kind, order, weights, aging = self._dispatch(queues)
        self._slices(classes)
        self._preempts(classes, dispatch_kind)
        select = self._select()
        watchdog_ms = self._watchdog()
        counters = self._counters(classes, aging, dispatch_kind)
        tags = self._tags()
        lines: set[int] = set()
        for expr in self.overflows.values():
            if expr.span.line in lines:
                continue  # one per line: the parts of one long product are one mistake
            lines.add(expr.span.line)
            self.error(
                "E115",
                "this constant expression overflows 64 bits",
                expr.span,
                "counts and durations (in ns) stay below 2^63; the C would wrap around",
            )
        for param in self.params.values():
            if not param.used:
                self.warn(
                    "W007",
                    f"param '{param.name}' is never used",
                    param.span,
                    "remove it, or use it in a slice, lag, aging or condition",
                )
        if has_errors(self.diags):
            return None
        return TypedPolicy(
            name=p.name.value,
            description=p.description or "",
            file=self.file,
            tags=tags,
            params=list(self.params.values()),
            classes=classes,
            queues=queues,
            dispatch_kind=dispatch_kind,
            dispatch_order=order,
            weights=weights,
            aging=aging,
            dispatch_line=p.dispatches[0].span.line if p.dispatches else 0,
            select=select,
            watchdog_ms=watchdog_ms,
            counters=counters,
            types=self.types,
            stats=self.stats,
            attrs=self.attrs,
            source=self.source,
        )

    def _params(self) -> None:
        if len(self.p.params) > MAX_PARAMS:
            self.error(
                "E306", f"at most {MAX_PARAMS} params are allowed", self.p.params[MAX_PARAMS].span
            )
        for prm in self.p.params:
            name = prm.name.value
            if name in self.params:
                self.error("E130", f"param '{name}' is defined twice", prm.name.span)
                continue
            self.reserved(prm.name, "param")  # reported; still defined, to avoid follow-up errors
            if name in FUNCTIONS:
                self.error(
                    "E130", f"'{name}' is a built-in name and cannot be a param", prm.name.span
                )
                continue
            ty = self.typeof(prm.value)
            if prm.type_name is not None:
                declared = PARAM_TYPES.get(prm.type_name.value)
                if declared is None:
                    self.error(
                        "E121",
                        f"unknown param type '{prm.type_name.value}'",
                        prm.type_name.span,
                        "param types: duration, int, bool",
                    )
                elif declared != ty:
                    self.error(
                        "E120",
                        f"param '{name}' is declared {declared.value} but its value is "
                        f"{ty.describe()}",
                        prm.value.span,
                        "durations need a unit (20ms); ints have none"
                        if Ty.DURATION in (declared, ty)
                        else None,
                    )
                    ty = declared
            value = self.const(prm.value) or 0
            low = high = None
            if prm.low is not None and prm.high is not None:
                bounds_ok = True
                for bound in (prm.low, prm.high):
                    bt = self.typeof(bound)
                    if bt != ty:
                        bounds_ok = False
                        self.error(
                            "E122",
                            f"range bound is {bt.describe()} but param '{name}' is {ty.describe()}",
                            bound.span,
                        )
                low, high = self.const(prm.low), self.const(prm.high)
                if ty == Ty.BOOL:
                    self.error("E122", "a bool param cannot have a range", prm.low.span)
                elif (
                    bounds_ok and low is not None and high is not None and not low <= value <= high
                ):
                    self.error(
                        "E122",
                        f"default of param '{name}' is outside its range",
                        prm.value.span,
                    )
            self.params[name] = TParam(name, ty, value, low, high, prm.span)

    def _classes(self) -> list[TClass]:
        decls = self.p.classes
        if not decls:
            self.error(
                "E140",
                "the policy has no classes",
                self.p.name.span,
                "add at least a default: class all otherwise",
            )
            return []
        if len(decls) > MAX_CLASSES:
            self.error(
                "E305", f"at most {MAX_CLASSES} classes are allowed", decls[MAX_CLASSES].span
            )
        seen: dict[str, TClass] = {}
        out: list[TClass] = []
        default: ast.ClassDecl | None = None
        catch_all: str | None = None
        for decl in decls:
            name = decl.name.value
            if name in seen:
                self.error("E130", f"class '{name}' is defined twice", decl.name.span)
                continue
            self.reserved(decl.name, "class")
            if catch_all is not None and not (decl.when is None and default is not None):
                self.error(
                    "E143",
                    f"class '{name}' can never match: class '{catch_all}' above it takes every task",
                    decl.name.span,
                    "classes are tried top to bottom; move the default class last",
                )
            if decl.when is None:
                if default is not None:
                    self.error(
                        "E142",
                        f"two default classes ('{default.name.value}' and '{name}')",
                        decl.span,
                        "only one class may be 'otherwise'",
                    )
                default = decl
                catch_all = catch_all or name
            else:
                cond_ty = self.expect(
                    decl.when, Ty.BOOL, f"the condition of class '{name}'", "E111"
                )
                # Params can be changed by a loader: only literals decide reachability.
                folded = self.const(decl.when, literal_only=True) if cond_ty == Ty.BOOL else None
                if folded == 1:
                    catch_all = catch_all or name
                elif folded == 0:
                    self.warn(
                        "W003",
                        f"class '{name}' never matches: its condition is false",
                        decl.when.span,
                    )
            cpus = None
            if decl.cpus is not None:
                cpus = self._cpus(decl)
            cls = TClass(name, len(out), decl.when, cpus, decl.preempts is not None, decl.span)
            seen[name] = cls
            out.append(cls)
        if default is None:
            self.error(
                "E141",
                "no default class: tasks that match no class would have nowhere to go",
                decls[-1].span,
                "add a last class: class other otherwise",
            )
        return out

    def _cpus(self, decl: ast.ClassDecl) -> list[int]:
        cpus: set[int] = set()
        for r in decl.cpus or []:
            if r.first > r.last:
                self.error(
                    "E146",
                    f"CPU range {r.first}-{r.last} is backwards",
                    r.span,
                    f"write {r.last}-{r.first}",
                )
                continue
            if r.last > MAX_CPU_ID:
                self.error("E147", f"CPU {r.last} is above the limit of {MAX_CPU_ID}", r.span)
                continue
            cpus.update(range(r.first, r.last + 1))
        if len(cpus) > MAX_CPUS_PER_SET:
            self.error(
                "E148",
                f"a class CPU set may hold at most {MAX_CPUS_PER_SET} CPUs, this one has {len(cpus)}",
                decl.cpus_span,
                "leave the set out to allow every CPU",
            )
        return sorted(cpus)

    def _queues(self, classes: list[TClass]) -> list[TQueue]:
        by_name = {c.name: c for c in classes}
        queues: list[TQueue] = []
        names: set[str] = set()
        if len(self.p.queues) > MAX_QUEUES:
            self.error(
                "E304", f"at most {MAX_QUEUES} queues are allowed", self.p.queues[MAX_QUEUES].span
            )
        for decl in self.p.queues:
            name = decl.name.value
            if name in names:
                self.error("E130", f"queue '{name}' is defined twice", decl.name.span)
                continue
            names.add(name)
            self.reserved(decl.name, "queue")
            q = TQueue(
                name, len(queues), decl.order, decl.key, decl.direction, decl.lag, span=decl.span
            )
            for ref in decl.classes:
                cls = by_name.get(ref.value)
                if cls is None:
                    self.error(
                        "E150",
                        f"unknown class '{ref.value}'",
                        ref.span,
                        _did_you_mean(ref.value, list(by_name)),
                    )
                    continue
                if cls.queue is not None:
                    self.error(
                        "E145",
                        f"class '{cls.name}' is already in queue '{cls.queue.name}'",
                        ref.span,
                        "each class goes to exactly one queue",
                    )
                    continue
                cls.queue = q
                q.classes.append(cls)
            sets = {tuple(c.cpus) if c.cpus else None for c in q.classes}
            if len(sets) > 1:
                self.error(
                    "E153",
                    f"classes in queue '{name}' have different CPU sets",
                    decl.span,
                    "a queue is served by the CPUs of its classes: give them the same "
                    "'on cpus', or put them in separate queues",
                )
            if decl.key is not None:
                what = "a deadline" if decl.order == "deadline" else "an ordering key"
                self.expect(decl.key, Ty.DURATION, what, "E112")
            if decl.lag is not None:
                if decl.order == "fifo":
                    self.error(
                        "E152",
                        "lag applies to ordered queues only",
                        decl.lag.span,
                        "a fifo queue has no credit to clamp; remove 'lag'",
                    )
                elif self.expect(decl.lag, Ty.DURATION, "lag", "E112") == Ty.DURATION:
                    if self.task_free(decl.lag, "lag"):
                        self._range(decl.lag, 1, LAG_MAX_NS, "lag", "E303")
            queues.append(q)
        for cls in classes:
            if cls.queue is None and not any(
                r.value == cls.name for d in self.p.queues for r in d.classes
            ):
                hint = f"queue {cls.name}_q for {cls.name} fifo"
                if len(self.p.queues) == 0:
                    hint = "add a queue: " + hint
                self.error(
                    "E144",
                    f"class '{cls.name}' has no queue: its tasks would never run",
                    cls.span,
                    hint,
                )
        return queues

    def _range(self, expr: ast.Expr, low: int, high: int, what: str, code: str) -> None:
        value = self.const(expr)
        if value is not None and not low <= value <= high:
            self.error(
                code,
                f"{what} {_fmt_ns(value) if value >= 0 else value} is outside "
                f"{_fmt_ns(low)}..{_fmt_ns(high)}",
                expr.span,
            )

    def _dispatch(
        self, queues: list[TQueue]
    ) -> tuple[str, list[TQueue], list[int], ast.Expr | None]:
        by_name = {q.name: q for q in queues}
        if len(self.p.dispatches) > 1:
            self.error(
                "E131",
                "the dispatch order is given twice",
                self.p.dispatches[1].span,
                "one dispatch statement lists every queue",
            )
        if not self.p.dispatches:
            if len(queues) > 1:
                self.error(
                    "E160",
                    f"no dispatch order for {len(queues)} queues",
                    self.p.queues[-1].span,
                    "say which queue goes first: dispatch "
                    + " then ".join(q.name for q in queues)
                    + ", aging 100ms",
                )
            return "strict", list(queues), [], None
        d = self.p.dispatches[0]
        order: list[TQueue] = []
        for ref in d.queues:
            q = by_name.get(ref.value)
            if q is None:
                self.error(
                    "E162",
                    f"unknown queue '{ref.value}'",
                    ref.span,
                    _did_you_mean(ref.value, list(by_name)),
                )
                continue
            if q in order:
                self.error(
                    "E163", f"queue '{q.name}' appears twice in the dispatch order", ref.span
                )
                continue
            order.append(q)
        for rank, q in enumerate(order):
            q.rank = rank
        for q in queues:
            if q not in order:
                self.error(
                    "E151",
                    f"queue '{q.name}' is never dispatched: its tasks would stall until the "
                    "watchdog ejects the scheduler",
                    q.span,
                    f"add '{q.name}' to the dispatch statement",
                )
        weights: list[int] = []
        if d.kind == "weighted":
            for w, span in d.weights:
                if not 1 <= w <= MAX_WEIGHT:
                    self.error("E164", f"weight {w} is outside 1..{MAX_WEIGHT}", span)
            weights = [w for w, _ in d.weights][: len(order)]
            if sum(weights) > MAX_WEIGHT_SUM:
                self.error(
                    "E165",
                    f"weights add up to {sum(weights)}, above the limit of {MAX_WEIGHT_SUM}",
                    d.span,
                    "use smaller numbers with the same ratio, e.g. 3:1 rather than 90:30",
                )
            for q in order:
                q.rank = 0
        if d.aging is not None:
            if self.expect(d.aging, Ty.DURATION, "the aging bound", "E112") == Ty.DURATION:
                if self.task_free(d.aging, "the aging bound"):
                    self._range(d.aging, 1_000_000, LAG_MAX_NS, "aging bound", "E303")
        elif d.kind == "strict" and len(order) > 1:
            self.warn(
                "W005",
                "strict priority without aging: tasks in "
                + ", ".join(f"'{q.name}'" for q in order[1:])
                + f" can starve while '{order[0].name}' is busy",
                d.span,
                "add an aging bound: dispatch "
                + " then ".join(q.name for q in order)
                + ", aging 100ms",
            )
        return d.kind, order, weights, d.aging

    def _slices(self, classes: list[TClass]) -> None:
        by_name = {c.name: c for c in classes}
        for entry in self.p.slices:
            cls = by_name.get(entry.cls.value)
            if cls is None:
                hint = _did_you_mean(entry.cls.value, list(by_name))
                if entry.cls.value in {q.name.value for q in self.p.queues}:
                    hint = f"slices are given per class; '{entry.cls.value}' is a queue"
                self.error("E170", f"unknown class '{entry.cls.value}'", entry.cls.span, hint)
                self.typeof(entry.value)
                continue
            if cls.slice is not None:
                self.error("E171", f"the slice of class '{cls.name}' is given twice", entry.span)
                continue
            cls.slice = entry.value
            if self.expect(entry.value, Ty.DURATION, "a time slice", "E112") == Ty.DURATION:
                self._range(entry.value, SLICE_MIN_NS, SLICE_MAX_NS, "time slice", "E302")

    def _preempts(self, classes: list[TClass], kind: str) -> None:
        for cls in classes:
            if not cls.preempts or cls.queue is None:
                continue
            if kind == "weighted":
                self.error(
                    "E149",
                    f"class '{cls.name}' preempts, but weighted dispatch has no lower classes",
                    cls.span,
                    "preemption needs a strict order: dispatch a then b",
                )
            elif not any(o.queue is not None and o.queue.rank > cls.queue.rank for o in classes):
                self.warn(
                    "W004",
                    f"'preempts' has no effect: no class ranks below '{cls.name}'",
                    cls.span,
                )

    def _select(self) -> str:
        if len(self.p.selects) > 1:
            self.error("E131", "'select cpu' is given twice", self.p.selects[1].span)
        if not self.p.selects:
            return "idle"
        mode = self.p.selects[0]
        if mode.value not in SELECT_MODES:
            self.error(
                "E180",
                f"unknown CPU selection '{mode.value}'",
                mode.span,
                "choose one of: " + ", ".join(SELECT_MODES),
            )
        return mode.value

    def _watchdog(self) -> int | None:
        if len(self.p.watchdogs) > 1:
            self.error("E131", "'watchdog' is given twice", self.p.watchdogs[1].span)
        if not self.p.watchdogs:
            return None
        expr = self.p.watchdogs[0]
        if self.expect(expr, Ty.DURATION, "the watchdog timeout", "E112") != Ty.DURATION:
            return None
        value = self.const(expr, literal_only=True)
        if value is None:
            self.error(
                "E114",
                "the watchdog timeout must be a constant",
                expr.span,
                "the kernel reads it when the scheduler attaches; params cannot change it",
            )
            return None
        if not WATCHDOG_MIN_NS <= value <= WATCHDOG_MAX_NS:
            self.error(
                "E301",
                f"watchdog {_fmt_ns(value)} is outside 100ms..30s",
                expr.span,
                "sched_ext allows at most 30s (SCX_WATCHDOG_MAX_TIMEOUT)"
                if value > WATCHDOG_MAX_NS
                else "a shorter timeout ejects schedulers for ordinary scheduling delays",
            )
            return None
        return max(1, value // 1_000_000)

    def _counters(
        self,
        classes: list[TClass],
        aging: ast.Expr | None,
        dispatch_kind: str,
    ) -> list[TCounter]:
        by_name = {c.name: c for c in classes}
        out: list[TCounter] = []
        if len(self.p.counters) > MAX_COUNTERS:
            self.error(
                "E307",
                f"at most {MAX_COUNTERS} counters are allowed",
                self.p.counters[MAX_COUNTERS].span,
            )
        names: set[str] = set()
        for c in self.p.counters:
            if c.name.value in names:
                self.error("E130", f"counter '{c.name.value}' is defined twice", c.name.span)
                continue
            names.add(c.name.value)
            self.reserved(c.name, "counter")
            event = c.event.value
            if event not in COUNTER_EVENTS:
                self.error(
                    "E190",
                    f"unknown counter event '{event}'",
                    c.event.span,
                    "events: " + ", ".join(COUNTER_EVENTS),
                )
                continue
            idx: list[int] = []
            for ref in c.classes:
                cls = by_name.get(ref.value)
                if cls is None:
                    self.error(
                        "E191",
                        f"unknown class '{ref.value}'",
                        ref.span,
                        _did_you_mean(ref.value, list(by_name)),
                    )
                else:
                    idx.append(cls.index)
            if event == "aging" and c.classes:
                self.error(
                    "E192",
                    "aging counts queues being served early, not classes",
                    c.span,
                    "remove 'of ...'",
                )
            elif event == "aging" and (aging is None or dispatch_kind != "strict"):
                self.warn(
                    "W009",
                    f"counter '{c.name.value}' never counts: the dispatch order has no aging bound",
                    c.span,
                    "add ', aging 100ms' to a strict dispatch order, or remove the counter",
                )
            elif event == "preempt" and not any(
                classes[i].preempts for i in (idx or range(len(classes)))
            ):
                self.warn(
                    "W009",
                    f"counter '{c.name.value}' never counts: no class it covers 'preempts'",
                    c.span,
                    "add 'preempts' to the class, or remove the counter",
                )
            out.append(TCounter(c.name.value, len(out), event, idx, c.span))
        return out

    def _tags(self) -> list[str]:
        tags: list[str] = []
        for t in self.p.tags:
            if t.value in tags:
                self.warn("W008", f"tag '{t.value}' is given twice", t.span)
                continue
            tags.append(t.value)
        if len(tags) > MAX_TAGS:
            self.error("E310", f"at most {MAX_TAGS} tags are allowed", self.p.tag_spans[-1])
        return tags


def analyze(policy: ast.Policy, source: str = "") -> tuple[TypedPolicy | None, list[Diagnostic]]:
    analyzer = _Analyzer(policy, source)
    try:
        typed = analyzer.run()
    except RecursionError:
        # Only an expression of hundreds of nested terms gets here (E309 allows 64 levels).
        return None, [
            Diagnostic.at(
                Severity.ERROR,
                "E009",
                "an expression is too long or too deeply nested to compile",
                policy.file,
                policy.name.span,
                "split it: put parts into params, or use min/max/clamp",
            )
        ]
    diags = sorted(analyzer.diags, key=Diagnostic.sort_key)
    return typed, diags
