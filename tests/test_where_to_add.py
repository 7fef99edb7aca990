"""The "Where to add things" counts of docs/ARCHITECTURE.md, checked where a test can: each
place the page names for a statement, an expression form and an MCP tool is the one the code
reads. (The workload registry: tests/test_workloads.py; the check rules:
tests/test_rule_catalogue.py.)"""

from __future__ import annotations

import dataclasses
import re

import pytest

from schedc.agent.operations import OPERATIONS
from schedc.compiler.lower import ExprLowerer
from schedc.diagnostics import Span
from schedc.dsl import ast, parser
from schedc.dsl.language import FUNCTIONS
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
GRAMMAR = (ROOT / "schedc" / "dsl" / "policy.lark").read_text()
RUNTIME = (ROOT / "schedc" / "codegen_templates" / "schedc_runtime.bpf.h").read_text()


def _where_to_add(what: str) -> str:
    section = DOC.split("## Where to add things", 1)[1]
    [entry] = [e for e in section.split("\n- ") if e.startswith(f"**{what}**")]
    return " ".join(entry.split())  # as one line, whatever the wrapping


def test_every_statement_of_the_grammar_is_built_and_named_in_the_e001_hint():
    rules = parser.statement_words().split(", ")
    assert rules[0] == "tags" and "watchdog" in rules
    fields = {f.name for f in dataclasses.fields(ast.Policy)}
    generic = []
    for rule in rules:
        [body] = re.findall(rf"^{rule}_stmt:.*?(?=^\S)", GRAMMAR, re.S | re.M)
        methods = re.findall(r"->\s*(\w+)", body) or [f"{rule}_stmt"]
        if not all(callable(getattr(parser._ToAst, m, None)) for m in methods):
            generic.append(rule)  # built by _ToAst.__default__: one value, or a node's fields
            node = ast.STATEMENT_NODES.get(f"{rule}_stmt")
            field = node[1] if node else f"{rule}s"
            assert field in fields, f"ast.Policy has no field {field} for {rule}"
    assert generic == ["counter", "select", "watchdog"]  # the statements of 5 files
    entry = _where_to_add("A DSL statement of one value")
    assert "5 files" in entry and "`_ToAst.__default__`" in entry
    for name in ("dsl/policy.lark", "dsl/ast.py", "dsl/sema.py", "dsl/ir.py", "policy.bpf.c.j2"):
        assert name in entry
    entry = _where_to_add("A DSL statement with parts of its own")
    assert "5 files" in entry and "`_ToAst.__default__`" in entry
    assert '`@ast.statement("foo_stmt")`' in entry


def test_a_statement_of_one_value_needs_no_transformer_method():
    text = 'scheduler t "t" {\n  class all otherwise\n  queue q for all fifo\n'
    policy, diags = parser.parse_policy(
        text + "  select cpu previous\n  watchdog 2s\n}\n", "t.sched"
    )
    assert diags == [] and policy is not None
    assert [s.value for s in policy.selects] == ["previous"]
    assert [(type(w).__name__, w.span.line) for w in policy.watchdogs] == [("DurationLit", 5)]
    # a statement of two parts without a method is a mistake of the compiler, said so at once
    transformer = parser._ToAst("t.sched")
    with pytest.raises(TypeError, match="needs a Transformer method"):
        transformer.__default__("pair_stmt", [policy.selects[0], policy.watchdogs[0]], None)


def test_a_function_is_a_language_row_and_two_runtime_helpers():
    for name in FUNCTIONS:
        for suffix in ("s64", "u64"):
            assert re.search(rf"\bschedc_{name}_{suffix}\(", RUNTIME), (name, suffix)
    entry = _where_to_add("An expression form")
    assert "`FUNCTIONS`" in entry and "schedc_runtime.bpf.h" in entry
    assert hasattr(ExprLowerer, "_attr") and "`ExprLowerer._attr`" in entry


def test_an_mcp_tool_is_one_operation_and_its_documentation():
    agent_doc = (ROOT / "docs" / "agent.md").read_text()
    for name in OPERATIONS:
        assert f"`{name}`" in agent_doc, f"docs/agent.md does not document {name}"
    assert "`OPERATIONS`" in _where_to_add("An MCP tool")


def test_a_workload_is_one_entry_of_the_one_table():
    entry = _where_to_add("A workload")
    assert "(1 file" in entry and "`WORKLOADS` in `schedc/workloads.py`" in entry


NEW_STATEMENT = """
limit_stmt: _LIMIT NAME ("," NAME)* _TO expr limit_burst? limit_strict?
limit_burst: _BURST expr
limit_strict: _STRICT
_LIMIT.2: /limit\\b/
_TO.2: /to\\b/
_BURST.2: /burst\\b/
"""


@dataclasses.dataclass
class _Limit:
    classes: list[ast.Name]
    rate: ast.Expr
    span: Span
    burst: ast.Expr | None = None
    strict: Span | None = None


def test_a_statement_with_parts_needs_a_node_and_its_rule_only(monkeypatch):
    """`limit a, b to EXPR [burst EXPR] [strict]`, added as docs/ARCHITECTURE.md says: its rule
    in the grammar and its node registered with ast.statement, no Transformer method."""
    grammar = parser._grammar().replace("     | watchdog_stmt\n", "     | watchdog_stmt\n"
                                        "     | limit_stmt\n") + NEW_STATEMENT
    monkeypatch.setattr(parser, "_grammar", lambda: grammar)
    monkeypatch.setitem(ast.STATEMENT_NODES, "limit_stmt", (_Limit, "limits"))
    monkeypatch.setattr(ast.Policy, "limits", [], raising=False)  # the Policy field it adds
    parser._lark.cache_clear()
    try:
        head = 'scheduler t "t" {\n  class all otherwise\n  queue q for all fifo\n'
        policy, diags = parser.parse_policy(
            head + "  limit all, q to 5ms burst 2ms * 3 strict\n  limit q to 1ms\n}\n", "t.sched"
        )
        assert diags == [] and policy is not None
        full, bare = policy.limits
        assert [n.value for n in full.classes] == ["all", "q"]
        assert isinstance(full.rate, ast.DurationLit) and full.rate.ns == 5_000_000
        assert isinstance(full.burst, ast.Binary) and full.burst.op == "*"
        assert full.strict is not None and full.strict.column == 37
        assert (full.span.line, bare.span.line) == (4, 5)
        assert [n.value for n in bare.classes] == ["q"]
        assert bare.burst is None and bare.strict is None
    finally:
        parser._lark.cache_clear()
