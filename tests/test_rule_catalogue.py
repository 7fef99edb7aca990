"""The rule catalogue (check_catalog.RULES) and the rule passes agree: every catalogued code is
produced by some pass, and every code a pass produces is catalogued with its severity."""

from __future__ import annotations

import ast
import inspect
import re
import sys

from schedc.verifier import checks
from schedc.verifier.rules.catalog import RULES

_CODE = re.compile(r"^K\d{3}$")


def _pass_modules() -> set[str]:
    """Every module a rule pass lives in, plus the stages that report K codes themselves."""
    modules = {sys.modules[rule.__module__].__file__ for rule in checks.RULE_PASSES}
    modules |= {sys.modules[m].__file__ for m in ("schedc.verifier.rules.security",)}
    modules |= {sys.modules["schedc.verifier.rules.clang"].__file__, checks.__file__}
    return {m for m in modules if m}


def _codes_in(path: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _CODE.match(node.value)
    }


def test_every_catalogued_rule_is_produced_by_a_pass():
    produced = set().union(*(_codes_in(m) for m in _pass_modules()))
    missing = sorted(set(RULES) - produced - {"K000"})
    assert not missing, f"catalogued but no pass reports them: {missing}"


def test_every_code_a_pass_reports_is_catalogued():
    for module in _pass_modules():
        unknown = sorted(_codes_in(module) - set(RULES))
        assert not unknown, f"{module} reports codes the catalogue lacks: {unknown}"


def test_the_passes_are_the_functions_the_worker_runs():
    for rule in checks.RULE_PASSES:
        params = list(inspect.signature(rule).parameters)
        assert params == ["context"] or len(params) == 1, rule.__name__
        assert rule.__name__.startswith("check_"), rule.__name__


def test_every_rule_function_of_a_pass_module_is_in_its_passes():
    """A rule is its function and its PASSES entry (verifier/checks.py joins the lists): a
    check_ function left out of PASSES would never run."""
    from schedc.verifier.rules import code, flow, ops  # noqa: PLC0415

    for module in (ops, flow, code):
        defined = {
            name
            for name, fn in vars(module).items()
            if name.startswith("check_")
            and inspect.isfunction(fn)
            and fn.__module__ == module.__name__
        }
        assert defined == {f.__name__ for f in module.PASSES}, module.__name__
    assert checks.RULE_PASSES == [*ops.PASSES, *flow.PASSES, *code.PASSES]
