"""The one pipeline: its order, its checks on itself, its runner, and that nothing else in
schedc composes its stages or reaches back from the compiler into the repository or the CLI."""

from __future__ import annotations

import ast
import dataclasses
import functools
from pathlib import Path

import pytest

from schedc.compiler.pipeline import (
    CHECK,
    CHECKED,
    COMPILE,
    STAGES,
    TRANSLATE,
    VERIFY,
    Options,
    Pipeline,
    PipelineError,
    Source,
    check_file,
    compile_policy,
    run,
    select,
    translate,
)
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"

PACKAGE = ROOT / "schedc"


def test_every_named_pipeline_is_the_one_order_restricted():
    order = [s.name for s in STAGES]
    for named in (TRANSLATE, COMPILE, CHECK, CHECKED, VERIFY):
        positions = [order.index(n) for n in named.names]
        assert positions == sorted(positions), named.names
    assert CHECK.names[-1] == "lint" and VERIFY.names[-1] == "load"
    assert "scan" in COMPILE and "scan" not in VERIFY  # lint runs the security rules itself


def test_a_misordered_pipeline_fails_when_it_is_built():
    by_name = {s.name: s for s in STAGES}
    with pytest.raises(PipelineError, match="'clang' needs c_file"):
        Pipeline((by_name["read"], by_name["clang"], by_name["emit"]))
    with pytest.raises(PipelineError, match="'sema' needs tree"):
        Pipeline((by_name["read"], by_name["sema"], by_name["parse"]))
    with pytest.raises(PipelineError, match="twice"):
        Pipeline((by_name["read"], by_name["read"]))
    with pytest.raises(PipelineError, match="no stage named"):
        select("read", "optimise")


def test_the_runner_stops_at_the_first_error_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.sched"
    bad.write_text('scheduler x "d" {\n  class a when task.nice >\n}\n')
    emitted = tmp_path / "bad.bpf.c"
    [outcome] = run(select(*TRANSLATE.names, "emit"), [bad], Options(emit_c=emitted))
    assert outcome.failed == "parse" and outcome.reached == ("read", "parse")
    assert set(outcome.timings) == {"read", "parse"}
    assert not outcome.ok and not emitted.exists()


def test_the_runner_times_every_stage_it_ran(tmp_path, settings):
    out = tmp_path / "ljf.bpf.o"
    result = compile_policy(EXAMPLES / "ljf.sched", settings, out=out)
    assert result.ok and result.object_path == out and out.stat().st_size > 0
    assert result.reached == ("read", "parse", "sema", "set", "lower", "emit", "clang")
    assert set(result.reached) <= set(result.timings)
    assert all(t >= 0 for t in result.timings.values())


def test_unreadable_and_wrong_kinds_are_diagnostics_not_crashes(tmp_path, settings):
    missing = compile_policy(tmp_path / "nope.sched", settings)
    assert [d.code for d in missing.diagnostics] == ["E000"] and missing.failed == "read"
    obj = tmp_path / "ready.bpf.o"
    obj.write_bytes(b"\x7fELF")
    taken = compile_policy(obj, settings)
    assert not taken.ok and "this command takes" in taken.diagnostics[0].message


def test_c_given_as_text_is_never_written_to_the_path_that_names_it(tmp_path, settings):
    named = tmp_path / "canary" / "policy.bpf.c"  # does not exist; must stay so
    source = Source(named, '#include "vmlinux.h"\nchar _license[] SEC("license") = "GPL";\n')
    result = check_file(source, settings, emit_c=None)
    assert not named.exists() and not named.parent.exists()
    assert result.c_path is not None and result.c_path != named


def test_translate_of_text_names_what_the_caller_says():
    text = (EXAMPLES / "fifo.sched").read_text()
    named = translate(Source(Path("policy.sched"), text), c_name="generated.bpf.c")
    assert named.ok and named.c_text is not None
    assert '#line 1 "policy.sched"' in named.c_text or '"policy.sched"' in named.c_text
    assert str(EXAMPLES) not in named.c_text


def test_artifacts_are_immutable():
    [outcome] = run(TRANSLATE, [EXAMPLES / "fifo.sched"], Options())
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.artifact.c_text = "changed"  # type: ignore[misc]


# ---- the code base around it ----------------------------------------------------------------

# The functions that are stages; only the pipeline (and the module defining each) calls them.
STAGE_FUNCTIONS = {
    "parse_policy",
    "analyze",
    "lower_policy",
    "compile_c",
    "check_c",
    "scan_c",
    "map_to_dsl",
    "load_on_kernels",
    "apply_report",
    "apply_sets",
}
STAGE_CALLERS_ALLOWED = {"schedc/compiler/pipeline.py"}


@functools.lru_cache(maxsize=1)  # parsed once: every rule below reads the same trees
def _modules() -> dict[str, ast.Module]:
    return {
        str(p.relative_to(ROOT)): ast.parse(p.read_text(encoding="utf-8"))
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def _module_name(path: str) -> str:
    name = path.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def _imports(tree: ast.Module, own: str) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = own.split(".")[: -node.level]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("schedc")}


def test_no_module_but_the_pipeline_composes_stages():
    offenders = []
    for path, tree in _modules().items():
        if path in STAGE_CALLERS_ALLOWED:
            continue
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("schedc"):
                for alias in node.names:
                    if alias.name in STAGE_FUNCTIONS and alias.name not in defined:
                        offenders.append(f"{path} imports {alias.name}")
            # `from schedc.verifier import checks` then `checks.check_c(...)`: a call too
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in STAGE_FUNCTIONS
                and node.func.attr not in defined
            ):
                offenders.append(f"{path}:{node.lineno} calls {node.func.attr}")
    assert not offenders, "\n".join(offenders)


LOWER_LAYERS = ("schedc.dsl", "schedc.compiler", "schedc.verifier")
UPPER_LAYERS = ("schedc.repo", "schedc.agent", "schedc.cli")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    names = {_module_name(p) for p in modules}
    graph: dict[str, set[str]] = {}
    for path, tree in modules.items():
        own = _module_name(path)
        targets = set()
        for imported in _imports(tree, own if path.endswith("__init__.py") else own):
            while imported and imported not in names:
                imported = imported.rpartition(".")[0]
            if imported and imported != own:
                targets.add(imported)
        graph[own] = targets
    return graph


def test_the_compiler_layers_never_import_the_repository_agent_or_cli():
    bad = [
        f"{src} -> {dst}"
        for src, dsts in _graph().items()
        if src.startswith(LOWER_LAYERS)
        for dst in dsts
        if dst.startswith(UPPER_LAYERS)
    ]
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt == "schedc" or node.startswith(nxt + "."):
                continue  # a package's __init__ is not an edge back from its own modules
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"p.x": {"p"}, "p": {"p.x"}}) == []  # a package and its own module
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    cycles = _cycles(_graph())
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_the_project_by_name_at_run_time():
    """No importlib.import_module or __import__ at all: a name computed at run time could be
    one of schedc's own modules, an edge the import graph above cannot see."""
    offenders = []
    for path, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) in {"import_module", "__import__"}:
                offenders.append(f"{path}:{node.lineno}")
    assert not offenders


def _called(call: ast.Call) -> str | None:
    """The name a call calls: `f` of f(...) and of x.f(...)."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


# ---- what exactly one module does ------------------------------------------------------------

SETTINGS_MODULE = "schedc/settings.py"


def _is_environ(node: ast.expr) -> bool:
    """os.environ, or `environ` as `from os import environ` names it."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _key(node: ast.expr | None) -> str:
    """The variable a read names: the string as written, or '?' when computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return "?"


def environment_reads(tree: ast.Module) -> list[tuple[int, str]]:
    """Where a module reads one variable of the environment, as (line, name): os.environ.get,
    .pop, .setdefault, os.environ[...], `... in os.environ`, os.getenv; the whole of it
    (.items(), .keys(), .values()) as '*'. Handing os.environ on to a child
    (dict(os.environ, ...), env=os.environ.copy()) is not a read."""
    reads: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            first = node.args[0] if node.args else None
            if isinstance(func, ast.Attribute) and _is_environ(func.value):
                if func.attr in {"get", "pop", "setdefault"}:
                    reads.append((node.lineno, _key(first)))
                elif func.attr in {"items", "keys", "values"}:
                    reads.append((node.lineno, "*"))
            elif _called(node) == "getenv":
                reads.append((node.lineno, _key(first)))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if _is_environ(node.value):
                reads.append((node.lineno, _key(node.slice)))
        elif isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)) and _is_environ(right):
                    reads.append((node.lineno, _key(node.left)))
    return sorted(reads)


def test_the_environment_read_finder_finds_reads():
    tree = ast.parse(
        "import os\nfrom os import environ, getenv\n"
        'os.environ.get("SCHEDC_A")\n'
        'x = os.environ["SCHEDC_B"]\n'
        '"SCHEDC_C" in os.environ\n'
        "getenv(name)\n"
        'environ.get("HOME", "/")\n'
        "{k: v for k, v in os.environ.items()}\n"
        'child = dict(os.environ, TMPDIR="/tmp")\n'  # handed on, not read
        'os.environ["SCHEDC_D"] = "1"\n'  # written, not read
    )
    assert environment_reads(tree) == [
        (3, "SCHEDC_A"),
        (4, "SCHEDC_B"),
        (5, "SCHEDC_C"),
        (6, "?"),
        (7, "HOME"),
        (8, "*"),
    ]


def test_only_settings_reads_schedc_variables_from_the_environment():
    """SCHEDC_* are read in schedc/settings.py alone (a Settings field or a function there),
    so that one module lists every setting. Other modules may read variables that are not
    ours (NO_COLOR, TERM, ANTHROPIC_API_KEY, XDG_*) by name; a name computed at run time, or
    the whole environment, could be ours, so it counts too."""
    offenders = [
        f"{path}:{line} reads {name}"
        for path, tree in _modules().items()
        if path != SETTINGS_MODULE
        for line, name in environment_reads(tree)
        if name.startswith("SCHEDC_") or name in {"?", "*"}
    ]
    assert not offenders, "\n".join(offenders)
    assert any(n.startswith("SCHEDC_") for _, n in environment_reads(_modules()[SETTINGS_MODULE]))


# Code that prints or ends the process although it is not the CLI: (module, top-level function
# or "<module>"), or (module, "*") for a program that runs in the guest VM.
PRINTS_OR_EXITS_ALLOWED = {
    ("schedc/__main__.py", "<module>"): "`python -m schedc`: the CLI's entry point",
    ("schedc/repo/__main__.py", "<module>"): "`python -m schedc.repo`: `schedc repo`",
    ("schedc/lifecycle.py", "_say"): "run_main's one line when a signal stops an entry point",
    ("schedc/lifecycle.py", "_start_watchdog"): "ends a process whose cleanup hangs",
    ("schedc/agent/worker.py", "main"): "the MCP worker process: progress lines on its stderr",
    ("schedc/agent/worker.py", "<module>"): "the MCP worker process's exit status",
    ("schedc/agent/worker.py", "run_request"): "the worker's job, started by main or forked",
    ("schedc/agent/zygote.py", "*"): "the MCP zygote process: forks workers, each ends in _exit",
    ("schedc/verifier/rules/worker.py", "<module>"): "the sandboxed libclang worker's status",
    ("schedc/verifier/btf.py", "main"): "`python -m schedc.verifier.btf`, for kit scripts",
    ("schedc/verifier/btf.py", "<module>"): "its exit status",
    ("schedc/verifier/guest_loader.py", "*"): "runs in the guest VM",
    ("schedc/verifier/warm_agent.py", "*"): "runs in the guest VM",
    ("schedc/behaviour/runner.py", "*"): "runs in the guest VM",
}


def _prints_or_exits(tree: ast.Module) -> list[tuple[str, int, str]]:
    """(top-level function or "<module>", line, what) of every print(), exit(), sys.exit,
    os._exit, raise SystemExit and sys.stdout/stderr.write."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        what = None
        if isinstance(node, ast.Call):
            name = _called(node)
            func = node.func
            owner = func.value if isinstance(func, ast.Attribute) else None
            if isinstance(func, ast.Name) and name in {"print", "exit", "quit"}:
                what = f"{name}()"
            elif isinstance(owner, ast.Name) and (owner.id, name) in {
                ("sys", "exit"),
                ("os", "_exit"),
            }:
                what = f"{owner.id}.{name}"
            elif (
                name == "write"
                and isinstance(owner, ast.Attribute)
                and owner.attr in {"stdout", "stderr"}
                and isinstance(owner.value, ast.Name)
                and owner.value.id == "sys"
            ):
                what = f"sys.{owner.attr}.write"
        elif isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "SystemExit":
                what = "raise SystemExit"
        if what is not None:
            found.append((where, node.lineno, what))
        for child in ast.iter_child_nodes(node):
            top = where
            if where == "<module>" and isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                top = child.name
            visit(child, top)

    visit(tree, "<module>")
    return found


def test_the_print_finder_finds_prints_and_exits():
    tree = ast.parse(
        "import os, sys\n"
        "def f():\n    print('x', file=sys.stderr)\n    sys.stderr.write('y')\n"
        "class C:\n    def m(self):\n        os._exit(3)\n"
        "raise SystemExit(main())\n"
        "log.print_stats()\n"  # a method of another name
    )
    assert _prints_or_exits(tree) == [
        ("f", 3, "print()"),
        ("f", 4, "sys.stderr.write"),
        ("C", 7, "os._exit"),
        ("<module>", 8, "raise SystemExit"),
    ]


def test_only_the_cli_prints_or_exits():
    """Stages, operations and the repository return data and raise; schedc/cli/ turns that
    into text and an exit status. The exceptions are other processes' entry points
    (PRINTS_OR_EXITS_ALLOWED, each with its reason)."""
    offenders = []
    for path, tree in _modules().items():
        if path.startswith("schedc/cli/"):
            continue
        for where, line, what in _prints_or_exits(tree):
            allowed = {(path, "*"), (path, where)} & PRINTS_OR_EXITS_ALLOWED.keys()
            if not allowed:
                offenders.append(f"{path}:{line} ({where}) {what}")
    assert not offenders, "\n".join(offenders)


def _string_constants(tree: ast.Module, value: str) -> list[int]:
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == value]


def test_e000_is_written_once_as_read_error_and_e009_is_built_in_one_place():
    """The code of an unreadable file is the constant READ_ERROR, not a literal beside it;
    the nesting limit's diagnostic (E009) is made by one function."""
    modules = _modules()
    e000 = [(p, line) for p, t in modules.items() for line in _string_constants(t, "E000")]
    assert len(e000) == 1, e000
    [(where, _line)] = e000
    assigned = [
        t.id
        for n in modules[where].body
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
        if n.value.value == "E000"
        for t in n.targets
        if isinstance(t, ast.Name)
    ]
    assert assigned == ["READ_ERROR"]
    e009 = [(p, line) for p, t in modules.items() for line in _string_constants(t, "E009")]
    assert len(e009) == 1, e009


def test_exit_statuses_and_shared_helpers_are_defined_once():
    """One `Exit` enum (cli/exit.py), the two signal statuses it takes from lifecycle.py
    (which is below the CLI and returns them itself), and one definition of each name that
    was once written twice with different meanings."""
    once = {"record_performance", "generated_c_path", "within", "Exit"}
    defined: dict[str, list[str]] = {}
    statuses: list[str] = []
    for path, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in once:
                defined.setdefault(node.name, []).append(path)
            if isinstance(node, ast.Assign):
                statuses += [
                    f"{path}: {t.id}"
                    for t in node.targets
                    if isinstance(t, ast.Name) and t.id.startswith("EXIT_")
                ]
    assert defined == {
        "record_performance": ["schedc/repo/perf.py"],
        "generated_c_path": ["schedc/compiler/pipeline.py"],
        "within": ["schedc/paths.py"],
        "Exit": ["schedc/cli/exit.py"],
    }
    assert sorted(statuses) == [
        "schedc/lifecycle.py: EXIT_BROKEN_PIPE",
        "schedc/lifecycle.py: EXIT_INTERRUPTED",
    ]
