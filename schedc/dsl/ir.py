"""The typed policy that sema returns and the compiler lowers: every name resolved to one of
these objects, every expression typed (`TypedPolicy.type_of`), every limit respected."""

from __future__ import annotations

from dataclasses import dataclass, field

from schedc.diagnostics import Span
from schedc.dsl import ast
from schedc.dsl.language import Ty


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
    # Tasks start in the queue's order: a waking task never skips it for an idle CPU. Always
    # so for `ordered by` and `deadline`; `strict` asks it of fifo and vtime queues.
    strict_start: bool = False
    # `max_wait`: a task queued longer than this is served before the rest of the queue.
    max_wait: ast.Expr | None = None


@dataclass
class TClass:
    name: str
    index: int
    when: ast.Expr | None
    cpus: list[int] | None  # the CPUs listed; with cpus_except, those the class may NOT use
    preempts: bool
    span: Span
    queue: TQueue | None = None
    slice: ast.Expr | None = None
    # `preempts a, b`: the classes (indices) a waking task of this class preempts, and only
    # those; () with a bare `preempts` (every lower-ranked class) or none.
    preempt_targets: tuple[int, ...] = ()
    cpus_except: bool = False  # `on cpus not ...`: every CPU of the machine but `cpus`


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
    dispatch_kind: str  # strict | weighted (turns) | shares (CPU time)
    dispatch_order: list[TQueue]
    weights: list[int]
    aging: ast.Expr | None
    dispatch_line: int  # the `dispatch` statement's line; 0 when implied (one queue)
    select: str
    watchdog_ms: int | None
    latency: dict[str, bool]  # the compiler's latency defaults, as the policy set them
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
