"""The "Where to add things" counts of docs/ARCHITECTURE.md, checked where a test can: each
place the page names for a statement, an expression form and an MCP tool is the one the code
reads. (The workload registry: tests/test_workloads.py; the check rules:
tests/test_rule_catalogue.py.)"""

from __future__ import annotations

import re

from schedc.agent.operations import OPERATIONS
from schedc.compiler.lower import ExprLowerer
from schedc.dsl import parser
from schedc.dsl.language import FUNCTIONS
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
GRAMMAR = (ROOT / "schedc" / "dsl" / "policy.lark").read_text()
RUNTIME = (ROOT / "schedc" / "codegen_templates" / "schedc_runtime.bpf.h").read_text()


def _where_to_add(what: str) -> str:
    section = DOC.split("## Where to add things", 1)[1]
    [entry] = [e for e in section.split("\n- ") if e.startswith(f"**{what}**")]
    return " ".join(entry.split())  # as one line, whatever the wrapping


def test_every_statement_of_the_grammar_has_its_transformer_method_and_keyword():
    block = re.search(r"^\?item: (.*?)\n\n", GRAMMAR, re.S | re.M)
    assert block is not None
    rules = re.findall(r"(\w+)_stmt", block.group(1))
    assert rules and "watchdog" in rules
    for rule in rules:
        aliases = re.findall(rf"^{rule}_stmt:.*?(?=^\S)", GRAMMAR, re.S | re.M)[0]
        methods = re.findall(r"->\s*(\w+)", aliases) or [f"{rule}_stmt"]
        assert all(callable(getattr(parser._ToAst, m, None)) for m in methods), rule
    assert parser._STATEMENT_WORDS.split(", ") == rules  # the E001 hint lists them all
    entry = _where_to_add("A DSL statement")
    for name in ("dsl/policy.lark", "dsl/parser.py", "dsl/ast.py", "dsl/sema.py", "dsl/ir.py"):
        assert name in entry


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
