"""Every expression node of `schedc.dsl.ast` is handled by every expression visitor, and a
node class added without that fails here (and, for mypy or pyright, where a visitor is made).

Also: the parser's transformer builds the statements, in source order.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from schedc.compiler.pipeline import translate
from schedc.diagnostics import Span
from schedc.dsl import ast
from schedc.dsl.parser import parse_policy
from schedc.dsl.sema import analyze

# The modules that define expression visitors: the front end's, and the lowering's once it
# dispatches through ExprVisitor too.
VISITOR_MODULES = ("schedc.dsl.ast", "schedc.dsl.expr", "schedc.dsl.sema", "schedc.compiler.lower")


def node_classes() -> set[type[ast.Expr]]:
    return {
        c
        for c in vars(ast).values()
        if isinstance(c, type) and issubclass(c, ast.Expr) and c is not ast.Expr
    }


def visitors() -> list[type[ast.ExprVisitor]]:
    for name in VISITOR_MODULES:
        importlib.import_module(name)
    found: list[type[ast.ExprVisitor]] = []
    todo = list(ast.ExprVisitor.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted((c for c in found if c.__module__.startswith("schedc.")), key=repr)


def test_expr_nodes_are_the_node_classes_of_the_ast():
    assert set(ast.EXPR_NODES) == node_classes()
    assert len(ast.EXPR_NODES) == len(node_classes()) >= 14


def test_the_visitor_base_has_one_abstract_method_per_node_class():
    wanted = {f"visit_{c.__name__}" for c in node_classes()}
    assert set(ast.ExprVisitor.__abstractmethods__) == wanted


def test_the_front_end_has_its_visitors():
    names = {c.__name__ for c in visitors()}
    assert {"_Children", "Expressions", "_Fold"} <= names


@pytest.mark.parametrize("visitor", visitors(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_visitor_handles_every_node_class(visitor: type[ast.ExprVisitor]):
    assert not visitor.__abstractmethods__, f"{visitor.__name__} misses a node class"
    for node in node_classes():
        method = getattr(visitor, f"visit_{node.__name__}")
        assert not getattr(method, "__isabstractmethod__", False), (visitor, node)


def test_a_visitor_that_misses_a_node_class_cannot_be_made():
    methods = {
        f"visit_{c.__name__}": (lambda self, e: None) for c in node_classes() if c is not ast.Not
    }
    partial = type("Partial", (ast.ExprVisitor,), methods)
    with pytest.raises(TypeError, match="visit_Not"):
        partial()


def test_visiting_something_that_is_not_a_node_of_the_ast_is_an_internal_error():
    class Foreign(ast.Expr):
        pass

    with pytest.raises(TypeError, match="internal error: .* cannot visit Foreign"):
        ast.children(Foreign(Span.point(1, 1)))


# A policy with every expression node: it must compile cleanly, every node typed. A new node
# class makes the first assertion fail until it is added here, and so goes through typing,
# folding and the lowering to C.
EVERY_NODE = """\
scheduler every_node "every expression node" {
  param base = 5ms
  param boost = true
  class a when (task.nice < -task.weight or not boost) and task.comm in ["a", "b"] and task.comm matches "x*"
  class b otherwise
  queue a_q for a ordered by task.avg_runtime ascending
  queue b_q for b fifo
  dispatch a_q then b_q, aging 100ms
  slice a = min(base * 2, 20ms)
}
"""


def _expressions(policy: ast.Policy) -> list[ast.Expr]:
    roots: list[ast.Expr | None] = []
    for p in policy.params:
        roots += [p.value, p.low, p.high]
    roots += [c.when for c in policy.classes]
    for q in policy.queues:
        roots += [q.key, q.lag]
    roots += [d.aging for d in policy.dispatches]
    roots += [s.value for s in policy.slices]
    roots += policy.watchdogs
    return [node for root in roots if root is not None for node in ast.walk(root)]


def test_a_policy_with_every_node_compiles_with_every_node_typed(tmp_path: Path):
    policy, diags = parse_policy(EVERY_NODE, "every_node.sched")
    assert policy is not None and diags == []
    nodes = _expressions(policy)
    assert {type(n) for n in nodes} == node_classes()
    typed, diags = analyze(policy, EVERY_NODE)
    assert typed is not None and diags == []
    assert all(id(n) in typed.types for n in nodes)
    path = tmp_path / "every_node.sched"
    path.write_text(EVERY_NODE, encoding="utf-8")
    result = translate(path)
    assert result.ok and result.diagnostics == [] and result.c_text


# ---- the parser's transformer -------------------------------------------------------------
def test_statements_keep_their_order_within_each_kind():
    text = (
        "scheduler a {\n  tags x, y\n  class c1 when task.nice < 0 on cpus 0-1, 3\n"
        "  param p = 1ms\n  class c2 otherwise preempts\n  tags z\n  param q: int = 2 in 1 .. 3\n"
        "  queue q1 for c1 ordered by task.avg_runtime descending lag 5ms\n"
        "  queue q2 for c2 deadline 1ms\n  dispatch weighted q1: 2, q2: 1\n"
        "  slice c1 = 1ms, c2 = 2ms\n  select cpu idle\n  watchdog 5s\n  counter n counts enqueue of c1\n}\n"
    )
    policy, diags = parse_policy(text, "p.sched")
    assert policy is not None and diags == []
    assert [t.value for t in policy.tags] == ["x", "y", "z"]
    assert [s.line for s in policy.tag_spans] == [2, 6]
    assert [c.name.value for c in policy.classes] == ["c1", "c2"]
    assert [(r.first, r.last) for r in policy.classes[0].cpus or []] == [(0, 1), (3, 3)]
    assert policy.classes[1].when is None and policy.classes[1].preempts is not None
    assert [(p.name.value, p.type_name and p.type_name.value) for p in policy.params] == [
        ("p", None),
        ("q", "int"),
    ]
    assert [(q.order, q.direction) for q in policy.queues] == [
        ("ordered", "descending"),
        ("deadline", None),
    ]
    assert [w for w, _ in policy.dispatches[0].weights] == [2, 1]
    assert [s.cls.value for s in policy.slices] == ["c1", "c2"]
    assert [s.value for s in policy.selects] == ["idle"]
    assert len(policy.watchdogs) == 1
    assert [(c.name.value, [n.value for n in c.classes]) for c in policy.counters] == [
        ("n", ["c1"])
    ]


def test_the_first_bad_literal_in_the_file_is_the_one_reported():
    # The statements are built as the tree is converted, so a CPU number or a weight that is
    # too large is found in file order with the literals of the expressions.
    text = (
        "scheduler a {\n  class b when task.nice < 0 on cpus 99999999999999999999\n"
        "  class c when task.avg_runtime > 1.5ns\n  class d otherwise\n}\n"
    )
    _, diags = parse_policy(text, "p.sched")
    assert [(d.code, d.line) for d in diags] == [("E008", 2)]
