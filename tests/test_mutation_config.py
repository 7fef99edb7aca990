"""benchmarks/mutation.py's configuration stays true to the tree: every module it mutates and
every test it runs exists, and the [tool.mutmut] section it writes is valid TOML that names
them (a renamed test file would otherwise leave a module scored by no test at all)."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_bench", ROOT / "benchmarks" / "mutation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_module_and_test_of_the_selection_exists():
    script = load_script()
    assert "schedc/dsl/sema.py" in script.MODULES and "schedc/compiler/lower.py" in script.MODULES
    for module, tests in script.MODULES.items():
        assert (ROOT / module).is_file(), module
        assert tests, f"{module} has no tests"
        for test in tests:
            assert (ROOT / test).is_file(), f"{module}: {test} does not exist"


def test_the_written_section_is_toml_naming_the_module_and_its_tests():
    script = load_script()
    module, tests = "schedc/dsl/expr.py", script.MODULES["schedc/dsl/expr.py"]
    section = tomllib.loads(script.mutmut_section(module, tests))["tool"]["mutmut"]
    assert section["only_mutate"] == [module]
    assert section["pytest_add_cli_args_test_selection"] == tests
    assert section["source_paths"] == ["schedc"]
    assert "not vm" in section["pytest_add_cli_args"] and "-x" in section["pytest_add_cli_args"]
    for path in section["also_copy"]:
        # schedc.toml is the checkout's own settings (setup.sh --kit writes it), when present.
        assert path == "schedc.toml" or (ROOT / path).exists(), path


def test_only_a_case_change_of_sql_text_counts_as_equivalent():
    script = load_script()
    diff = (
        "--- schedc/repo/index.py\n+++ schedc/repo/index.py\n@@ -1,2 +1,2 @@\n"
        ' def _delete(self, name: str) -> None:\n-    self.db.execute("DELETE FROM broken WHERE '
        'name = ?", (name,))\n+    self.db.execute("delete from broken where name = ?", '
        "(name,))\n"
    )
    assert script.equivalent_reason(diff) == "SQL text in another case"
    # a changed word, a message in another case, a dropped line: not equivalent
    other = diff.replace("delete from broken", "delete from result")
    assert script.equivalent_reason(other) is None
    message = '-    hint = "Use a param"\n+    hint = "USE A PARAM"\n'
    assert script.equivalent_reason(message) is None
    assert script.equivalent_reason('-    x = "SELECT 1"\n') is None


def test_only_the_type_of_a_c_ast_constant_counts_as_equivalent():
    """pycparser writes a Constant's value, not its type: a mutant of the type argument alone
    cannot change the generated C. One of the value, or of the arguments' shape, can."""
    script = load_script()
    typ = ('-        return c_ast.Constant("int", "1" if value else "0")\n'
           '+        return c_ast.Constant("XXintXX", "1" if value else "0")\n')
    assert script.equivalent_reason(typ) == (
        "the type of a c_ast.Constant, which the C generator does not write"
    )
    none = '-    return c_ast.Constant("long long", f"{v}LL")\n+    return c_ast.Constant(None, f"{v}LL")\n'
    assert script.equivalent_reason(none) is not None
    value = ('-        return c_ast.Constant("int", "1" if value else "0")\n'
             '+        return c_ast.Constant("int", "XX1XX" if value else "0")\n')
    assert script.equivalent_reason(value) is None
    shifted = '-    return c_ast.Constant("int", f"0x{b:02x}")\n+    return c_ast.Constant(f"0x{b:02x}")\n'
    assert script.equivalent_reason(shifted) is None
    both = typ + '-    x = 1\n+    x = 2\n'
    assert script.equivalent_reason(both) is None
