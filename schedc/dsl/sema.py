"""Semantic analysis: `analyze` takes the AST and returns a `TypedPolicy` that the lowering can
trust (every expression typed, every name resolved, every limit respected) and the diagnostics.
All problems are collected.

This module holds the statement rules and lints (names, params, classes, queues, dispatch,
slices, CPU selection, watchdog, counters, tags); the expression rules are in `expr.py`, the
tables and limits in `language.py`, the typed policy in `ir.py`.
"""

from __future__ import annotations

from schedc.diagnostics import Diagnostic, has_errors
from schedc.dsl import ast
from schedc.dsl.expr import Expressions, Report, did_you_mean, too_deep
from schedc.dsl.ir import TClass, TCounter, TParam, TQueue, TypedPolicy
from schedc.dsl.language import (
    COUNTER_EVENTS,
    DEFAULT_LAG_NS,
    DEFAULT_SLICE_NS,
    EXPRESSION_KEYWORDS,
    FUNCTIONS,
    LAG_MAX_NS,
    LATENCY_DEFAULTS,
    MAX_CLASSES,
    MAX_COUNTERS,
    MAX_CPU_ID,
    MAX_CPUS_PER_SET,
    MAX_PARAMS,
    MAX_QUEUES,
    MAX_TAGS,
    MAX_WEIGHT,
    MAX_WEIGHT_SUM,
    NAME_RE,
    PARAM_TYPES,
    SELECT_MODES,
    SLICE_MAX_NS,
    SLICE_MIN_NS,
    STRICT_NAMES,
    STRICT_ORDERS,
    WATCHDOG_MAX_NS,
    WATCHDOG_MIN_NS,
    Ty,
)

# What callers outside dsl/ import from here. New code can import from language.py and ir.py.
__all__ = [
    "DEFAULT_LAG_NS",
    "DEFAULT_SLICE_NS",
    "NAME_RE",
    "SLICE_MAX_NS",
    "SLICE_MIN_NS",
    "TClass",
    "TQueue",
    "Ty",
    "TypedPolicy",
    "analyze",
]


def format_ns(ns: int) -> str:
    """A duration as it would be written: 20ms, 1500us, 0ns."""
    for unit, scale in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns >= scale and ns % scale == 0:
            return f"{ns // scale}{unit}"
    return f"{ns}ns"


# `max_wait`: below 1ms the queue's order would hardly matter (like the aging bound).
MAX_WAIT_MIN_NS = 1_000_000


class _Analyzer:
    def __init__(self, policy: ast.Policy, source: str) -> None:
        self.p = policy
        self.source = source
        self.file = policy.file
        self.report = Report(policy.file)
        self.error = self.report.error
        self.warn = self.report.warn
        self.params: dict[str, TParam] = {}
        declared = frozenset(c.name.value for c in policy.classes) | {
            q.name.value for q in policy.queues
        }
        self.exprs = Expressions(self.report, self.params, declared)

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
        latency = self._latency()
        counters = self._counters(classes, aging, dispatch_kind)
        tags = self._tags()
        self.exprs.report_overflows()
        for param in self.params.values():
            if not param.used:
                self.warn(
                    "W007",
                    f"param '{param.name}' is never used",
                    param.span,
                    "remove it, or use it in a slice, lag, aging or condition",
                )
        if has_errors(self.report.diags):
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
            latency=latency,
            counters=counters,
            types=self.exprs.types,
            stats=self.exprs.stats,
            attrs=self.exprs.attrs,
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
            ty = self.exprs.typeof(prm.value)
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
            value = self.exprs.const(prm.value) or 0
            low = high = None
            if prm.low is not None and prm.high is not None:
                bounds_ok = True
                for bound in (prm.low, prm.high):
                    bt = self.exprs.typeof(bound)
                    if bt != ty:
                        bounds_ok = False
                        self.error(
                            "E122",
                            f"range bound is {bt.describe()} but param '{name}' is {ty.describe()}",
                            bound.span,
                        )
                low, high = self.exprs.const(prm.low), self.exprs.const(prm.high)
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
                cond_ty = self.exprs.expect(
                    decl.when, Ty.BOOL, f"the condition of class '{name}'", "E111"
                )
                # Params can be changed by a loader: only literals decide reachability.
                folded = (
                    self.exprs.const(decl.when, literal_only=True) if cond_ty == Ty.BOOL else None
                )
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
            cls.cpus_except = cpus is not None and decl.cpus_except
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
        if decl.cpus_mixed:
            self.error(
                "E156",
                "a class's CPUs are either listed or excluded, not both",
                decl.cpus_span,
                "write one 'on cpus' option: the CPUs it may use ('on cpus 2-7'), or those it "
                "may not ('on cpus not 0-1')",
            )
        elif decl.cpus_except and len(cpus) >= MAX_CPUS_PER_SET:
            self.error(
                "E148",
                f"'on cpus not ...' excludes every CPU up to {MAX_CPU_ID}: the class could "
                "run nowhere",
                decl.cpus_span,
                "leave some CPUs out of the 'not' list, or remove the class",
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
            q.strict_start = decl.order in STRICT_ORDERS or decl.strict is not None
            if decl.strict is not None and decl.order in STRICT_ORDERS:
                self.warn(
                    "W010",
                    f"'strict' is redundant: {STRICT_NAMES[decl.order]} always starts "
                    "its tasks in its order",
                    decl.strict,
                    "remove 'strict'",
                )
            for ref in decl.classes:
                cls = by_name.get(ref.value)
                if cls is None:
                    self.error(
                        "E150",
                        f"unknown class '{ref.value}'",
                        ref.span,
                        did_you_mean(ref.value, list(by_name)),
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
            sets = {(tuple(c.cpus), c.cpus_except) if c.cpus else None for c in q.classes}
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
                self.exprs.expect(decl.key, Ty.DURATION, what, "E112")
            if decl.lag is not None:
                if decl.order == "fifo":
                    self.error(
                        "E152",
                        "lag applies to ordered queues only",
                        decl.lag.span,
                        "a fifo queue has no credit to clamp; remove 'lag'",
                    )
                elif self.exprs.expect(decl.lag, Ty.DURATION, "lag", "E112") == Ty.DURATION:
                    if self.exprs.task_free(decl.lag, "lag"):
                        self._range(decl.lag, 1, LAG_MAX_NS, "lag", "E303")
            if decl.max_wait is not None:
                self._max_wait(decl, q)
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

    def _max_wait(self, decl: ast.QueueDecl, q: TQueue) -> None:
        """`max_wait D`: a constant duration in 1ms..10s (E311); redundant on FIFO (W011)."""
        bound = decl.max_wait
        assert bound is not None
        if self.exprs.expect(bound, Ty.DURATION, "max_wait", "E112") != Ty.DURATION:
            return
        if not self.exprs.task_free(bound, "max_wait"):
            return
        self._range(bound, MAX_WAIT_MIN_NS, LAG_MAX_NS, "max_wait", "E311")
        if decl.order == "fifo":
            self.warn(
                "W011",
                "'max_wait' is redundant: a fifo queue serves its longest-waiting task first",
                bound.span,
                "remove 'max_wait'; to bound the wait behind other queues use "
                "'dispatch ..., aging D'",
            )
            return
        q.max_wait = bound

    def _range(self, expr: ast.Expr, low: int, high: int, what: str, code: str) -> None:
        value = self.exprs.const(expr)
        if value is not None and not low <= value <= high:
            self.error(
                code,
                f"{what} {format_ns(value) if value >= 0 else value} is outside "
                f"{format_ns(low)}..{format_ns(high)}",
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
                    did_you_mean(ref.value, list(by_name)),
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
        if d.kind in ("weighted", "shares"):
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
            if self.exprs.expect(d.aging, Ty.DURATION, "the aging bound", "E112") == Ty.DURATION:
                if self.exprs.task_free(d.aging, "the aging bound"):
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
                hint = did_you_mean(entry.cls.value, list(by_name))
                if entry.cls.value in {q.name.value for q in self.p.queues}:
                    hint = f"slices are given per class; '{entry.cls.value}' is a queue"
                self.error("E170", f"unknown class '{entry.cls.value}'", entry.cls.span, hint)
                self.exprs.typeof(entry.value)
                continue
            if cls.slice is not None:
                self.error("E171", f"the slice of class '{cls.name}' is given twice", entry.span)
                continue
            cls.slice = entry.value
            if self.exprs.expect(entry.value, Ty.DURATION, "a time slice", "E112") == Ty.DURATION:
                self._range(entry.value, SLICE_MIN_NS, SLICE_MAX_NS, "time slice", "E302")

    def _preempts(self, classes: list[TClass], kind: str) -> None:
        by_name = {c.name: c for c in classes}
        named: set[str] = set()  # classes that name their targets: the rules below are moot
        for decl in self.p.classes:
            cls = by_name.get(decl.name.value)
            if cls is None or cls.span != decl.span or not decl.preempt_targets:
                continue
            named.add(cls.name)
            targets: list[int] = []
            for ref in decl.preempt_targets:
                target = by_name.get(ref.value)
                if target is None:
                    self.error(
                        "E154",
                        f"'preempts' names an unknown class '{ref.value}'",
                        ref.span,
                        did_you_mean(ref.value, [c for c in by_name if c != cls.name])
                        or "name classes of this policy: preempts background, batch",
                    )
                elif target is cls:
                    self.error(
                        "E155",
                        f"class '{cls.name}' cannot preempt itself",
                        ref.span,
                        "a waking task does not preempt its own class: "
                        "name the other classes it may preempt",
                    )
                elif target.index not in targets:
                    targets.append(target.index)
            cls.preempt_targets = tuple(targets)
        for cls in classes:
            if not cls.preempts or cls.queue is None or cls.name in named:
                continue
            if kind in ("weighted", "shares"):
                self.error(
                    "E149",
                    f"class '{cls.name}' preempts, but {kind} dispatch has no lower classes",
                    cls.span,
                    "preemption by rank needs a strict order (dispatch a then b); with "
                    f"{kind} dispatch, name the classes it preempts: preempts bg",
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
        if self.exprs.expect(expr, Ty.DURATION, "the watchdog timeout", "E112") != Ty.DURATION:
            return None
        value = self.exprs.const(expr, literal_only=True)
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
                f"watchdog {format_ns(value)} is outside 100ms..30s",
                expr.span,
                "sched_ext allows at most 30s (SCX_WATCHDOG_MAX_TIMEOUT)"
                if value > WATCHDOG_MAX_NS
                else "a shorter timeout ejects schedulers for ordinary scheduling delays",
            )
            return None
        return max(1, value // 1_000_000)

    def _latency(self) -> dict[str, bool]:
        """The latency defaults, as the policy's `latency` statements set them."""
        values = {name: default for name, (default, _) in LATENCY_DEFAULTS.items()}
        seen: set[str] = set()
        for entry in self.p.latency:
            name = entry.name.value
            if name not in LATENCY_DEFAULTS:
                self.error(
                    "E193",
                    f"unknown latency default '{name}'",
                    entry.name.span,
                    did_you_mean(name, list(LATENCY_DEFAULTS))
                    or "the defaults: " + ", ".join(LATENCY_DEFAULTS),
                )
                continue
            if name in seen:
                self.error("E131", f"'latency {name}' is given twice", entry.span)
                continue
            seen.add(name)  # a wrong value is still the one given
            if not isinstance(entry.value, ast.BoolLit):
                self.error(
                    "E194",
                    f"latency {name} must be true or false",
                    entry.value.span,
                    f"write 'latency {name} = false' to turn it off, '= true' to turn it on",
                )
                continue
            values[name] = entry.value.value
        return values

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
                        did_you_mean(ref.value, list(by_name)),
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
            elif event == "direct" and all(
                classes[i].queue is not None and classes[i].queue.strict_start
                for i in (idx or range(len(classes)))
            ):
                self.warn(
                    "W009",
                    f"counter '{c.name.value}' never counts: every class it covers starts in "
                    "its queue's order and is never dispatched directly",
                    c.span,
                    "count 'enqueue' instead, or remove the counter",
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
        return None, [too_deep(policy.file, policy.name.span)]
    diags = sorted(analyzer.report.diags, key=Diagnostic.sort_key)
    return typed, diags
