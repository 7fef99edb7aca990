"""The DSL's syntax tree: plain dataclasses, each with the source span it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from schedc.diagnostics import Span


# ---- expressions -------------------------------------------------------------------------
@dataclass(frozen=True)
class Expr:
    span: Span


@dataclass(frozen=True)
class IntLit(Expr):
    value: int


@dataclass(frozen=True)
class DurationLit(Expr):
    ns: int
    text: str


@dataclass(frozen=True)
class BoolLit(Expr):
    value: bool


@dataclass(frozen=True)
class StringLit(Expr):
    value: str


@dataclass(frozen=True)
class Attr(Expr):
    """`task.comm`, `task.parent.comm`: the path after `task`."""

    path: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return "task." + ".".join(self.path)


@dataclass(frozen=True)
class Ref(Expr):
    name: str


@dataclass(frozen=True)
class Call(Expr):
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Neg(Expr):
    operand: Expr


@dataclass(frozen=True)
class Binary(Expr):
    op: str  # + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Compare(Expr):
    op: str  # == != < <= > >=
    left: Expr
    right: Expr


@dataclass(frozen=True)
class InList(Expr):
    left: Expr
    items: tuple[Expr, ...]
    list_span: Span


@dataclass(frozen=True)
class StrTest(Expr):
    op: str  # matches | startswith | under
    left: Expr
    pattern: StringLit


@dataclass(frozen=True)
class BoolOp(Expr):
    op: str  # and | or
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr


# ---- statements --------------------------------------------------------------------------
@dataclass(frozen=True)
class Name:
    value: str
    span: Span


@dataclass
class Param:
    name: Name
    type_name: Name | None
    value: Expr
    low: Expr | None
    high: Expr | None
    span: Span


@dataclass
class Counter:
    name: Name
    event: Name
    classes: list[Name]
    span: Span


@dataclass
class CpuRange:
    first: int
    last: int
    span: Span


@dataclass
class ClassDecl:
    name: Name
    when: Expr | None  # None means `otherwise`
    cpus: list[CpuRange] | None
    cpus_span: Span | None
    preempts: Span | None
    span: Span


@dataclass
class QueueDecl:
    name: Name
    classes: list[Name]
    order: str  # fifo | vtime | ordered | deadline
    key: Expr | None
    direction: str | None  # ascending | descending (ordered only)
    lag: Expr | None
    order_span: Span
    span: Span


@dataclass
class Dispatch:
    kind: str  # strict | weighted
    queues: list[Name]
    weights: list[tuple[int, Span]]
    aging: Expr | None
    span: Span


@dataclass
class SliceEntry:
    cls: Name
    value: Expr
    span: Span


@dataclass
class Policy:
    name: Name
    description: str | None
    file: str
    span: Span
    tags: list[Name] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    counters: list[Counter] = field(default_factory=list)
    classes: list[ClassDecl] = field(default_factory=list)
    queues: list[QueueDecl] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    slices: list[SliceEntry] = field(default_factory=list)
    selects: list[Name] = field(default_factory=list)
    watchdogs: list[Expr] = field(default_factory=list)
    tag_spans: list[Span] = field(default_factory=list)
