"""The DSL's syntax tree: plain dataclasses, each with the source span it came from, and
`ExprVisitor`, the one way to dispatch over the expression nodes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

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


# ---- visiting expressions -------------------------------------------------------------------
EXPR_NODES: tuple[type[Expr], ...] = tuple(Expr.__subclasses__())
T = TypeVar("T")


class ExprVisitor(ABC, Generic[T]):
    """A function over expressions with one method per node class, `visit_<class name>`;
    `visit` calls the one for the node's class. Every method is abstract: a visitor that
    misses a node class cannot be instantiated (a type error for mypy and pyright, a TypeError
    naming the method at run time). A node class added above needs its method here, and then
    in every visitor (tests/test_dsl_visitors.py lists them); until it has one here, importing
    any visitor fails with a message that says so."""

    _dispatch: ClassVar[dict[type[Expr], Callable[[Any, Any], Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [n.__name__ for n in EXPR_NODES if not hasattr(cls, f"visit_{n.__name__}")]
        if missing:
            raise TypeError(
                f"internal error: ExprVisitor has no method for {', '.join(missing)}: add "
                + ", ".join(f"visit_{m}" for m in missing)
                + " to schedc/dsl/ast.py"
            )
        cls._dispatch = {n: getattr(cls, f"visit_{n.__name__}") for n in EXPR_NODES}

    def visit(self, e: Expr) -> T:
        method = self._dispatch.get(type(e))
        if method is None:
            raise TypeError(
                f"internal error: {type(self).__name__} cannot visit {type(e).__name__}, which "
                "is not an expression node of schedc/dsl/ast.py"
            )
        result: T = method(self, e)
        return result

    @abstractmethod
    def visit_IntLit(self, e: IntLit) -> T: ...

    @abstractmethod
    def visit_DurationLit(self, e: DurationLit) -> T: ...

    @abstractmethod
    def visit_BoolLit(self, e: BoolLit) -> T: ...

    @abstractmethod
    def visit_StringLit(self, e: StringLit) -> T: ...

    @abstractmethod
    def visit_Attr(self, e: Attr) -> T: ...

    @abstractmethod
    def visit_Ref(self, e: Ref) -> T: ...

    @abstractmethod
    def visit_Call(self, e: Call) -> T: ...

    @abstractmethod
    def visit_Neg(self, e: Neg) -> T: ...

    @abstractmethod
    def visit_Binary(self, e: Binary) -> T: ...

    @abstractmethod
    def visit_Compare(self, e: Compare) -> T: ...

    @abstractmethod
    def visit_InList(self, e: InList) -> T: ...

    @abstractmethod
    def visit_StrTest(self, e: StrTest) -> T: ...

    @abstractmethod
    def visit_BoolOp(self, e: BoolOp) -> T: ...

    @abstractmethod
    def visit_Not(self, e: Not) -> T: ...


class _Children(ExprVisitor[tuple[Expr, ...]]):
    def visit_IntLit(self, e: IntLit) -> tuple[Expr, ...]:
        return ()

    def visit_DurationLit(self, e: DurationLit) -> tuple[Expr, ...]:
        return ()

    def visit_BoolLit(self, e: BoolLit) -> tuple[Expr, ...]:
        return ()

    def visit_StringLit(self, e: StringLit) -> tuple[Expr, ...]:
        return ()

    def visit_Attr(self, e: Attr) -> tuple[Expr, ...]:
        return ()

    def visit_Ref(self, e: Ref) -> tuple[Expr, ...]:
        return ()

    def visit_Call(self, e: Call) -> tuple[Expr, ...]:
        return e.args

    def visit_Neg(self, e: Neg) -> tuple[Expr, ...]:
        return (e.operand,)

    def visit_Binary(self, e: Binary) -> tuple[Expr, ...]:
        return (e.left, e.right)

    def visit_Compare(self, e: Compare) -> tuple[Expr, ...]:
        return (e.left, e.right)

    def visit_InList(self, e: InList) -> tuple[Expr, ...]:
        return (e.left, *e.items)

    def visit_StrTest(self, e: StrTest) -> tuple[Expr, ...]:
        return (e.left, e.pattern)

    def visit_BoolOp(self, e: BoolOp) -> tuple[Expr, ...]:
        return e.operands

    def visit_Not(self, e: Not) -> tuple[Expr, ...]:
        return (e.operand,)


_CHILDREN = _Children()


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct subexpressions of an expression, left to right."""
    return _CHILDREN.visit(expr)


def walk(expr: Expr) -> Iterator[Expr]:
    """The expression and all its subexpressions, depth first, left to right."""
    yield expr
    for child in children(expr):
        yield from walk(child)


# ---- statements --------------------------------------------------------------------------
# ---- statements --------------------------------------------------------------------------
_Node = TypeVar("_Node")

# The statements the parser builds without a method of its own: grammar rule → (node class,
# the Policy field it is appended to). See `statement`.
STATEMENT_NODES: dict[str, tuple[type, str]] = {}


def statement(rule: str, policy_field: str | None = None) -> Callable[[type[_Node]], type[_Node]]:
    """Class decorator: the node grammar rule `rule` of dsl/policy.lark builds, appended to
    `Policy.<policy_field>` (by default the rule's name less `_stmt`, plus `s`). The parser
    fills the node's fields from the rule's children (dsl/parser.py, `_ToAst._statement`):

    - a sub-rule's tree fills the field of its name less the statement's prefix
      (`counter_classes` → `classes`): a `Span` field gets the tree's span (a flag such as
      `strict`), a `list` field its children, any other field its one child;
    - every other child (a name, an expression, a token) fills the next field, in declaration
      order, that no sub-rule names; a `list` field takes the rest of such children;
    - `span` is the statement's span; fields with defaults may stay unfilled.

    A statement with optional or repeated parts is so a node here and its rule, with no
    Transformer method (docs/ARCHITECTURE.md); one whose children need more (two values in one
    sub-rule, numbers checked as they are read) keeps a method in `_ToAst`."""

    def register(cls: type[_Node]) -> type[_Node]:
        field_name = policy_field or rule.removesuffix("_stmt") + "s"
        STATEMENT_NODES[rule] = (cls, field_name)
        return cls

    return register


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


@statement("counter_stmt")
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
    preempt_targets: list[Name] = field(default_factory=list)  # `preempts a, b`; [] for all
    cpus_except: bool = False  # `on cpus not ...`: every CPU but these
    cpus_mixed: bool = False  # both `on cpus ...` and `on cpus not ...` (an error)


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
    strict: Span | None = None  # `strict`: never dispatched past the queue on wake-up
    max_wait: Expr | None = None  # `max_wait D`: a task queued longer than D is served first


@dataclass
class Dispatch:
    kind: str  # strict | weighted | shares
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
class LatencyEntry:
    """`latency NAME = VALUE`: one of the compiler's latency defaults, on or off."""

    name: Name
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
    latency: list[LatencyEntry] = field(default_factory=list)
    tag_spans: list[Span] = field(default_factory=list)
