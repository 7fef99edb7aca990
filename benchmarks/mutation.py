"""Mutation score of chosen modules, with mutmut: how many small changes of the code the fast
host tests notice.

    .venv/bin/python -m pip install -e '.[mutation]'
    nice -n 19 .venv/bin/python benchmarks/mutation.py schedc/repo/sync.py --time-limit 1800

For each module it copies this checkout (the files git knows and the untracked ones it does
not ignore, plus schedc.toml) to a scratch folder, writes that copy's `[tool.mutmut]` for the
module and its tests (MODULES below: the module's own fast host tests, `-m "not vm"`, `-x`),
runs `mutmut run` there with one child (the machine is shared) under a time limit, and prints
the score (killed / mutants tried) and each surviving mutant's diff. The checkout itself is
never touched. `pyproject.toml`'s `[tool.mutmut]` is the documented default configuration for
running mutmut by hand on repo/sync.py; see benchmarks/README.md for the recorded figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The language's fast tests: boundaries, the error goldens, the visitors and the documented
# errors (each is seconds; mutmut runs only those that reach the mutated function).
DSL_TESTS = [
    "tests/test_dsl_boundaries.py", "tests/test_dsl_expressions.py", "tests/test_dsl_syntax.py",
    "tests/test_golden.py",
    "tests/test_dsl_visitors.py", "tests/test_errors_doc.py", "tests/test_where_to_add.py",
    "tests/test_operators.py",
]

# Module -> the tests that decide it (fast host tests only: the VM is never booted).
MODULES: dict[str, list[str]] = {
    "schedc/repo/sync.py": ["tests/test_repo_sync.py"],
    "schedc/dsl/tunables.py": ["tests/test_tunables.py"],
    "schedc/dsl/sema.py": DSL_TESTS,
    "schedc/dsl/expr.py": DSL_TESTS,
    "schedc/dsl/parser.py": DSL_TESTS,
    "schedc/repo/index.py": ["tests/test_repo_search.py", "tests/test_repo_profile.py"],
    "schedc/verifier/rules/ops.py": ["tests/test_check_rules.py"],
    "schedc/verifier/rules/code.py": ["tests/test_check_rules.py"],
    "schedc/verifier/rules/flow.py": ["tests/test_check_rules.py"],
    "schedc/compiler/lower.py": [
        "tests/test_lowering.py", "tests/test_matchers_host.py", "tests/test_latency_host.py",
        # the generated dispatch (aging, max_wait, shares) that policy_features turns on
        "tests/test_dispatch_host.py", "tests/test_max_wait_host.py",
    ],
}
PYTEST_ARGS = ["-m", "not vm", "-x", "-q", "-p", "no:cacheprovider"]
KILLED = ("killed", "timeout", "caught by type check", "segfault")
COPY_ALSO = ["examples", "docs", "scripts", "benchmarks", "schedc.toml", "README.md"]


def checkout_files() -> list[str]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout
    files = [f for f in listed.split("\0") if f and (ROOT / f).is_file()]
    return files + (["schedc.toml"] if (ROOT / "schedc.toml").is_file() else [])


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def mutmut_section(module: str, tests: list[str]) -> str:
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["schedc"]\n'
        f"only_mutate = {toml_list([module])}\n"
        f"also_copy = {toml_list(COPY_ALSO)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        f"pytest_add_cli_args = {toml_list(PYTEST_ARGS)}\n"
    )


def prepare(module: str, tests: list[str], scratch: Path) -> Path:
    copy = scratch / "checkout"
    for name in checkout_files():
        dest = copy / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest)
    pyproject = copy / "pyproject.toml"
    text = re.sub(r"\n\[tool\.mutmut\]\n(?:(?!\n\[).)*", "\n", pyproject.read_text(), flags=re.S)
    pyproject.write_text(text + mutmut_section(module, tests))
    return copy


def outcomes(copy: Path, module: str) -> dict[str, int | None]:
    """mutant name -> the test run's exit code (None: not run before the time limit)."""
    meta = copy / "mutants" / (module + ".meta")
    if not meta.is_file():
        return {}
    data = json.loads(meta.read_text())
    return dict(data.get("exit_code_by_key", {}))


def show(copy: Path, env: dict[str, str], name: str) -> str:
    ran = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=copy, env=env,
        capture_output=True, text=True, check=False,
    )
    return ran.stdout.strip() or ran.stderr.strip()


SQL_WORDS = re.compile(r"\b(select|insert|delete|update|create|drop|from|where|join)\b", re.I)


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    """The removed and the added lines of a mutant's diff (`mutmut show`)."""
    lines = diff.splitlines()
    removed = [ln[1:] for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    return removed, added


# pycparser's C generator writes a c_ast.Constant as its value alone: its type argument
# (the first) never reaches the generated C.
CONSTANT_TYPE = re.compile(r'c_ast\.Constant\(\s*(?:None|"[^"]*")\s*,')


def equivalent_reason(diff: str) -> str | None:
    """Why a surviving mutant is equivalent, for the classes that can be told from its diff
    alone: an SQL statement with only its letters' case changed (SQL keywords and sqlite's
    table and column names are case-insensitive), or only the type argument of a pycparser
    c_ast.Constant changed (the generated C has its value only). None for every other
    survivor."""
    removed, added = changed_lines(diff)
    if not removed or len(removed) != len(added):
        return None
    pairs = list(zip(removed, added, strict=True))
    if all(old != new and old.lower() == new.lower() and SQL_WORDS.search(old)
           for old, new in pairs):
        return "SQL text in another case"
    if all(old != new and CONSTANT_TYPE.search(old) and CONSTANT_TYPE.search(new)
           and CONSTANT_TYPE.sub("C(", old) == CONSTANT_TYPE.sub("C(", new)
           for old, new in pairs):
        return "the type of a c_ast.Constant, which the C generator does not write"
    return None


def run_module(module: str, tests: list[str], limit: float, keep: bool) -> dict[str, object]:
    scratch = Path(tempfile.mkdtemp(prefix="schedc-mutation."))
    copy = prepare(module, tests, scratch)
    env = dict(os.environ)
    # A schedc that a test starts as a process imports the mutated tree too.
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "mutants"), env.get("PYTHONPATH", "")])
    start = time.monotonic()
    log = scratch / "mutmut.log"
    timed_out = False
    with open(log, "wb") as sink:
        # mutmut resumes where it stopped: run again until every mutant has a verdict, mutmut
        # gives up, or the time limit.
        failures = 0
        while not timed_out and failures < 3:
            left = limit - (time.monotonic() - start)
            try:
                ran = subprocess.run(
                    [sys.executable, "-m", "mutmut", "run", "--max-children", "1"],
                    cwd=copy, env=env, timeout=max(left, 1), check=False,
                    stdout=sink, stderr=subprocess.STDOUT,
                )
            except subprocess.TimeoutExpired:
                timed_out = True
                break
            codes = outcomes(copy, module)
            # A fresh copy's first stats run fails now and then (mutmut 3.8: "Failed to run
            # pytest"); the next run of the same copy goes on.
            failures += ran.returncode != 0
            if codes and None not in codes.values():
                break
    seconds = time.monotonic() - start
    codes = outcomes(copy, module)
    from mutmut.stats import status_by_exit_code  # noqa: PLC0415 (the optional tool)

    status = {k: status_by_exit_code[c] for k, c in codes.items()}
    tried = {k: v for k, v in status.items() if v != "not checked"}
    killed = [k for k, v in tried.items() if v in KILLED]
    # "no tests": no test of the selection reaches the mutated function, a survivor too.
    survived = sorted(k for k, v in tried.items() if v in ("survived", "no tests"))
    other = sorted(f"{k} ({v})" for k, v in tried.items() if k not in killed and k not in survived)
    diffs = {name: show(copy, env, name) for name in survived}
    equivalent = {n: r for n in survived if (r := equivalent_reason(diffs[n])) is not None}
    survived = [n for n in survived if n not in equivalent]
    scored = len(tried) - len(equivalent)  # equivalent mutants cannot be killed: not scored
    result = {
        "module": module,
        "tests": tests,
        "mutants": len(codes),
        "tried": len(tried),
        "killed": len(killed),
        "survived": survived,
        "equivalent": equivalent,
        "other": other,
        "score": round(100 * len(killed) / scored, 1) if scored else None,
        "seconds": round(seconds),
        "time_limit_hit": timed_out,
        "diffs": diffs,
    }
    if not tried:
        result["log"] = log.read_text(errors="replace")[-3000:]
    if keep:
        result["scratch"] = str(copy)
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=["schedc/repo/sync.py"],
                        help=f"modules to mutate (known: {', '.join(MODULES)})")
    parser.add_argument("--time-limit", type=float, default=1800,
                        help="seconds per module (default 1800); mutants not reached are untried")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    args = parser.parse_args(argv)
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        print("mutmut is not installed: .venv/bin/python -m pip install -e '.[mutation]'",
              file=sys.stderr)
        return 2
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"no test selection for {', '.join(unknown)}: add it to MODULES in "
              "benchmarks/mutation.py", file=sys.stderr)
        return 2
    results = [run_module(m, MODULES[m], args.time_limit, args.keep) for m in args.modules]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        limit = " (time limit hit: the rest untried)" if r["time_limit_hit"] else ""
        same = len(r["equivalent"])  # type: ignore[arg-type]
        print(f"{r['module']}: {r['killed']}/{int(r['tried']) - same} killed = {r['score']}% "
              f"of {r['mutants']} mutants ({same} equivalent, not scored), {r['seconds']} s"
              f"{limit}")
        for name, why in r["equivalent"].items():  # type: ignore[attr-defined]
            print(f"  equivalent: {name}: {why}")
        if "log" in r:
            print("  mutmut tried nothing; the end of its output:\n" + str(r["log"]))
        for name in r["other"]:
            print(f"  neither killed nor survived: {name}")
        for name in r["survived"]:
            print(f"  survived: {name}\n" + "\n".join("    " + line for line in
                                                     str(r["diffs"][name]).splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
