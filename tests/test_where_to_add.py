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
            generic.append(rule)  # one value, built by _ToAst.__default__
            assert f"{rule}s" in fields, f"ast.Policy has no field {rule}s for {rule}"
    assert generic == ["select", "watchdog"]  # the statements of 5 files
    entry = _where_to_add("A DSL statement of one value")
    assert "5 files" in entry and "`_ToAst.__default__`" in entry
    for name in ("dsl/policy.lark", "dsl/ast.py", "dsl/sema.py", "dsl/ir.py", "policy.bpf.c.j2"):
        assert name in entry
    assert "dsl/parser.py" in _where_to_add("A DSL statement with parts of its own")


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
