"""`schedc check`: static checks of sched_ext policies, before clang and the kernel verifier.

An LLM (or a person) writing sched_ext C fails in predictable ways that clang accepts and the
kernel either rejects with an opaque verifier log or, worse, accepts and then ejects at run
time. The rules (verifier/rules/, listed in rules/catalog.py, explained in docs/checks.md) look
for those on the libclang AST of the policy's own file, and explain them in sched_ext terms.

    check_c(path, toolchain, include_dirs, target_kernel) -> [Diagnostic]   C text
    scan_c(path, toolchain, text, include_dirs) -> [Diagnostic]             the security rules
    map_to_dsl(diags, c_path, c_text, source) -> [Diagnostic]               back to DSL lines

These are the pipeline's `scan` and `lint` stages (schedc/compiler/pipeline.py composes them;
`check_file` there is `schedc check`). For a .sched policy the generated C is checked, and
findings are mapped back to DSL lines through the `#line` directives the generator writes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from clang import cindex as ci

from schedc.compiler import cage
from schedc.compiler.source import read_source
from schedc.compiler.toolchain import HIDDEN_HINT, Toolchain, confine, hidden_header
from schedc.diagnostics import Diagnostic, Severity
from schedc.settings import (
    HOST_BTF,
    EnvironmentProblem,
    Settings,
    btf_has_sched_ext,
    cache_root,
    kernel_matrix,
    kernel_name,
    kernel_release,
    llvm_lib_dir,
)
from schedc.verifier.btf import kernel_facts
from schedc.verifier.rules import code, flow, ops
from schedc.verifier.rules.base import CheckContext
from schedc.verifier.rules.catalog import CLANG_ERROR
from schedc.verifier.rules.clang import (
    ParseError,
    builtin_include_dir,
    inline_assembly,
    own_top_level,
    parse,
    skipped_blocks,
)
from schedc.verifier.rules.kernel import (
    DEFAULT_TARGET,
    MIN_KERNEL,
    KernelVersion,
    Target,
    parse_kernel_version,
    release_version,
    version_text,
)
from schedc.verifier.rules.libclang import use_libclang
from schedc.verifier.rules.model import PolicyModel
from schedc.verifier.rules.security import (
    SKIPPABLE,
    blocks_parsing,
    compiled_only,
    include_findings,
    macro_use,
    scan_text,
)

Rule = Callable[[CheckContext], list[Diagnostic]]

RULE_PASSES: list[Rule] = [*ops.PASSES, *flow.PASSES, *code.PASSES]

_INCLUDE_FLAGS = ("-I", "-isystem", "-idirafter")
_LINE_DIRECTIVE = re.compile(r'^\s*#\s*line\s+(\d+)\s+"([^"]*)"')


def libclang_args(toolchain: Toolchain, include_dirs: Iterable[Path] = ()) -> list[str]:
    """The compile's own flags (-target bpf, defines, include folders), plus clang's builtin
    headers (libclang finds them itself only beside its own clang binary)."""
    args = [*toolchain.base_flags, *toolchain.include_flags(list(include_dirs))]
    builtin = builtin_include_dir(toolchain.clang)
    if builtin is not None:
        args += ["-isystem", str(builtin)]
    return args


def include_dirs_of(args: list[str]) -> list[Path]:
    return [Path(args[i + 1]) for i, a in enumerate(args[:-1]) if a in _INCLUDE_FLAGS]


def target_of(target_kernel: str | KernelVersion) -> KernelVersion:
    return parse_kernel_version(target_kernel) if isinstance(target_kernel, str) else target_kernel


TargetSpec = str | KernelVersion | Target | Sequence[Target]


def targets_of(target_kernel: TargetSpec) -> tuple[Target, ...]:
    """The kernels to check for: a version (`6.12`, (6, 12): the tables only), one Target or
    several (each with its BTF facts, see kernel_targets)."""
    if isinstance(target_kernel, Target):
        return (target_kernel,)
    if isinstance(target_kernel, str) or (
        isinstance(target_kernel, tuple)
        and len(target_kernel) == 2
        and all(isinstance(v, int) for v in target_kernel)
    ):
        return (Target(target_of(target_kernel)),)  # type: ignore[arg-type]
    found = tuple(target_kernel)  # type: ignore[arg-type]
    if not found or not all(isinstance(t, Target) for t in found):
        raise ValueError(f"not a target kernel: {target_kernel!r}")
    return found  # type: ignore[return-value]


def kernel_targets(settings: Settings) -> tuple[Target, ...]:
    """The target kernels of a check when none is given: the kernels in use
    (`kernel_matrix(settings, attach=False)`), each named by its release (from its bzImage) and read from its
    BTF (its kfuncs, ops members and flags). A kernel whose BTF is broken raises
    EnvironmentProblem (see verifier/btf.py); with no kernel and no BTF at all, the default
    version only, as before."""
    targets: dict[str, Target] = {}
    for kit in kernel_matrix(settings, attach=False):
        btf = Path(kit.btf) if kit.btf else None
        release = kernel_release(Path(kit.kernel)) if kit.kernel else None
        if kit.on_host:  # the host's kernel in the matrix (`host`): its release, its BTF
            release = kernel_name(kit)
        if btf is None and kit.kernel is None and btf_has_sched_ext(HOST_BTF):
            btf, release = HOST_BTF, os.uname().release
        if btf is None:
            continue
        version = release_version(release) if release else None
        facts = kernel_facts(btf, cache_root(settings))
        target = Target(max(version or DEFAULT_TARGET, MIN_KERNEL), release or "", facts)
        targets.setdefault(target.name, target)
    return tuple(targets.values()) or (Target(DEFAULT_TARGET),)


def check_c(
    path: Path,
    toolchain: Toolchain,
    include_dirs: Iterable[Path] | None = None,
    target_kernel: TargetSpec = DEFAULT_TARGET,
    *,
    text: str | None = None,
    line_files: Iterable[Path] = (),
    timings: dict[str, float] | None = None,
) -> list[Diagnostic]:
    """Every finding in a C policy. `text` checks that text as the content of `path` (the file
    need not exist); `line_files` are files its #line directives may name. libclang runs in a
    worker in the sandbox (see analyse), once: the rules run for every target kernel, and a
    finding for some of several targets only says which (`... [Linux 7.2.13]`)."""
    if text is None:
        text, unreadable = read_source(path)
        if text is None:
            return unreadable
    found = analyse(
        "check", path, text, toolchain, include_dirs or (), line_files, target_kernel, timings
    )
    return _sorted(found)


def scan_c(
    path: Path,
    toolchain: Toolchain,
    text: str,
    include_dirs: Iterable[Path] = (),
    line_files: Iterable[Path] = (),
) -> list[Diagnostic]:
    """Only the findings that stop a policy before clang (K044, K060-K062, K063, K064): what
    `schedc compile` of C checks first. In the sandbox like every libclang run."""
    found = analyse("scan", path, text, toolchain, include_dirs, line_files)
    return _sorted(found)


WORKER = "schedc.verifier.rules.worker"


def analyse(
    op: str,
    path: Path,
    text: str,
    toolchain: Toolchain,
    include_dirs: Iterable[Path] = (),
    line_files: Iterable[Path] = (),
    target_kernel: TargetSpec = DEFAULT_TARGET,
    timings: dict[str, float] | None = None,
) -> list[Diagnostic]:
    """Run `op` ("scan" or "check") on C text in a worker process (`python -m
    schedc.verifier.rules.worker`) inside the sandbox, with the compile limits; a worker that
    crashes or runs out of time is a finding about the policy, not a crash of schedc."""
    include_dirs, line_files = list(include_dirs), list(line_files)
    if toolchain.libclang is None:
        llvm = llvm_lib_dir(toolchain.clang).parent
        raise EnvironmentProblem(
            f"no libclang beside {toolchain.clang} (looked in {llvm / 'lib'}): the checks parse "
            "C with the libclang of the clang that compiles",
            "install the libclang of that clang (Debian: apt-get install libclang1-"
            + (llvm.name.removeprefix("llvm-") if llvm.name.startswith("llvm-") else "N")
            + " for clang-N)",
        )
    args = libclang_args(toolchain, include_dirs)
    targets = targets_of(target_kernel)
    request = {
        "op": op,
        "path": str(path),
        "text": text,
        "args": args,
        # The policy's folder as the sandbox names it (its real folder is bound at this
        # name, which is all the worker sees: a resolved name through a symlinked parent
        # does not exist in there, and every header beside the policy looked outside it).
        "allowed": [str(d) for d in include_dirs_of(args) + [Path(os.path.abspath(path)).parent]],
        "line_files": [str(p) for p in line_files],
        "cwd": os.getcwd(),
        "target_kernel": version_text(targets[0].version),
        "targets": [t.to_json() for t in targets],
        "libclang": toolchain.libclang,
    }
    visible = toolchain.visible(path, include_dirs, line_files) + cage.python_paths(
        toolchain.libclang
    )
    outcome = cage.run(
        toolchain.cage,
        [sys.executable, "-I", "-m", WORKER],
        ro=visible,
        stdin=json.dumps(request).encode(),
        chdir=Path(os.getcwd()),
    )
    if outcome.timed_out:
        return [_too_complex(path, f"the analysis took longer than {cage.COMPILE_TIMEOUT:g} s")]
    try:
        answer = json.loads(outcome.stdout) if outcome.returncode == 0 else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        if outcome.signal is not None:
            try:
                name = signal.Signals(outcome.signal).name
            except ValueError:
                name = f"signal {outcome.signal}"
            return [_too_complex(path, f"libclang crashed ({name}) on it")]
        tail = outcome.stderr.decode("utf-8", errors="replace").strip()[-400:]
        raise EnvironmentProblem(
            f"the libclang worker failed (exit {outcome.returncode}): {tail or 'no output'}",
            "run `schedc check` on a small policy to see whether libclang works here; "
            + cage.INSTALL_HINT,
        )
    if timings is not None:
        timings.update({k: float(v) for k, v in dict(answer.get("timings", {})).items()})
    found = [Diagnostic.from_json(d) for d in answer.get("diagnostics", [])]
    allowed = [Path(p) for p in request["allowed"]]  # type: ignore[union-attr]
    return _explain_hidden(confine(found, visible, path), path, allowed)


def _explain_hidden(diags: list[Diagnostic], path: Path, allowed: list[Path]) -> list[Diagnostic]:
    """The sandbox shows no file outside the allowed folders, so clang says 'file not found'
    for a header that links out of them: say what really happened (K061)."""
    out = []
    for d in diags:
        hidden = hidden_header(d.message, allowed) if d.code == CLANG_ERROR else None
        if hidden is None:
            out.append(d)
            continue
        found = include_findings([(str(hidden), d.line or 0)], d.file or str(path), allowed)
        out += [replace(f, line=d.line, column=d.column) for f in found] or [
            replace(d, hint=HIDDEN_HINT)
        ]
    return out


def _too_complex(path: Path, why: str) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR,
        "K044",
        f"the policy is too complex to analyse: {why}",
        str(path),
        hint="look for a huge or deeply nested expression (thousands of operators or "
        "nested macros) and split it up",
    )


def analyse_here(request: dict[str, object]) -> dict[str, object]:
    """The worker's side of analyse(): scan, parse and rules, in this process."""
    use_libclang(str(request["libclang"]) if request.get("libclang") else None)
    path = Path(str(request["path"]))
    text = str(request["text"])
    args = [str(a) for a in request["args"]]  # type: ignore[attr-defined]
    allowed = [Path(str(a)) for a in request["allowed"]]  # type: ignore[attr-defined]
    line_files = [Path(str(p)) for p in request["line_files"]]  # type: ignore[attr-defined]
    timings: dict[str, float] = {}
    findings = scan_text(text, str(path), line_files, str(request.get("cwd") or os.getcwd()))
    if any(d.code in SKIPPABLE for d in findings) and not any(d.code == "K044" for d in findings):
        # Judge what clang compiles: a preprocessing run (here, in the sandbox, which shows
        # no host file) says which blocks are skipped. Its own errors are not reported.
        t0 = time.perf_counter()
        try:
            findings = compiled_only(findings, str(path), skipped_blocks(path, args, text))
        except ParseError:
            pass  # every finding stays
        timings["preprocess"] = time.perf_counter() - t0
    if request["op"] == "scan" or blocks_parsing(findings):
        return _answer(findings, timings)
    t0 = time.perf_counter()
    try:
        tu = parse(path, args, text)
    except ParseError as exc:
        return _answer([Diagnostic(Severity.ERROR, CLANG_ERROR, str(exc), str(path))], timings)
    timings["parse"] = time.perf_counter() - t0
    errors = clang_errors(tu)
    if errors:
        return _answer(findings + errors, timings)
    findings += include_findings(_own_inclusions(tu, path), str(path), allowed)
    t1 = time.perf_counter()
    try:
        top = own_top_level(tu, path)
        if not any(d.code == "K063" for d in findings):
            findings += inline_assembly(top, macro_use(text, str(path)))
        model = PolicyModel(tu, path)
        findings += run_rules(model, _request_targets(request))
    except RecursionError:
        findings.append(_too_complex(path, "its syntax tree is nested too deep"))
    timings["rules"] = time.perf_counter() - t1
    return _answer(findings, timings)


def _request_targets(request: dict[str, object]) -> list[Target]:
    given = request.get("targets")
    if isinstance(given, list) and given:
        return [Target.from_json(t) for t in given]
    return [Target(target_of(str(request["target_kernel"])))]


def run_rules(model: PolicyModel, targets: Sequence[Target]) -> list[Diagnostic]:
    """Every rule for every target kernel. A finding that all targets give is reported once as
    it is; one that only some give says for which: `... [Linux 7.2.13]`."""
    per_target: dict[Diagnostic, list[str]] = {}
    for target in targets:
        context = CheckContext(model, target.version, target.facts, target.kernel)
        for rule in RULE_PASSES:
            for d in rule(context):
                names = per_target.setdefault(d, [])
                if target.name not in names:
                    names.append(target.name)
    every = len({t.name for t in targets})
    out = []
    for d, names in per_target.items():
        if len(names) == every:
            out.append(d)
        else:
            out.append(replace(d, message=f"{d.message} [{for_kernels(names)}]"))
    return out


def for_kernels(names: Sequence[str]) -> str:
    """`Linux 7.2.13`, `Linux 6.12.117 and 7.2.13`: the kernels a finding is for."""
    if len(names) == 1:
        return f"Linux {names[0]}"
    return f"Linux {', '.join(names[:-1])} and {names[-1]}"


def _answer(diags: list[Diagnostic], timings: dict[str, float]) -> dict[str, object]:
    return {"diagnostics": [d.to_json() for d in diags], "timings": timings}


def clang_errors(tu: ci.TranslationUnit) -> list[Diagnostic]:
    """clang's own errors: the rules need a translation unit that compiles."""
    out = []
    for d in tu.diagnostics:
        if d.severity < ci.Diagnostic.Error:
            continue
        loc = d.location
        file = loc.file.name if loc.file else None
        out.append(
            Diagnostic(
                Severity.ERROR,
                CLANG_ERROR,
                d.spelling,
                file,
                loc.line or None,
                loc.column or None,
                loc.line or None,
                loc.column or None,
            )
        )
    return out


def _own_inclusions(tu: ci.TranslationUnit, path: Path) -> list[tuple[str, int]]:
    """(file, line of the #include) for every file the policy's own text includes."""
    own = str(path)
    return [
        (inc.include.name, inc.location.line)
        for inc in tu.get_includes()
        if inc.depth == 1 and inc.source is not None and inc.source.name == own
    ]


def _sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    unique = list(dict.fromkeys(diags))
    return sorted(unique, key=Diagnostic.sort_key)


# ---- generated C: findings back to the DSL lines ---------------------------------------------


# Findings on generated C that the DSL front end already reports at the DSL line.
DSL_EQUIVALENTS = {"K070": "W005"}  # strict priority without aging


def map_to_dsl(
    diags: list[Diagnostic], c_path: Path, c_text: str, source: Path, dsl_codes: Iterable[str] = ()
) -> list[Diagnostic]:
    """Move findings in generated C to the DSL line its `#line` directives name. A finding in C
    that no DSL line produced is reported on the DSL file with the C position in its hint:
    an error there is a schedc bug (every policy schedc accepts must load)."""
    directives = _line_directives(c_text)
    c_real = c_path.resolve()
    known = set(dsl_codes)
    out = []
    for d in diags:
        if DSL_EQUIVALENTS.get(d.code) in known:
            continue
        if d.file is None or Path(d.file).resolve() != c_real:
            out.append(d)
            continue
        if d.line is None:
            out.append(replace(d, file=str(source)))
            continue
        file, line = _presumed(directives, d.line, str(c_path))
        if Path(file).resolve() == c_real:
            out.append(_in_generated_code(d, source, c_path))
        else:
            out.append(
                replace(d, file=file, line=line, column=None, end_line=None, end_column=None)
            )
    return out


def _in_generated_code(d: Diagnostic, source: Path, c_path: Path) -> Diagnostic:
    where = f"found at {c_path}:{d.line}, in the C schedc generated"
    if d.severity is Severity.ERROR:
        where += "; schedc should never generate this, please report it with the policy"
    hint = f"{d.hint} ({where})" if d.hint else where
    return replace(
        d, file=str(source), line=None, column=None, end_line=None, end_column=None, hint=hint
    )


def _line_directives(c_text: str) -> list[tuple[int, int, str]]:
    found = []
    for number, line in enumerate(c_text.splitlines(), start=1):
        m = _LINE_DIRECTIVE.match(line)
        if m:
            found.append((number, int(m.group(1)), m.group(2)))
    return found


def _presumed(directives: list[tuple[int, int, str]], line: int, own: str) -> tuple[str, int]:
    """clang's presumed location of a physical line: the last #line before it decides."""
    current: tuple[int, int, str] | None = None
    for directive in directives:
        if directive[0] >= line:
            break
        current = directive
    if current is None:
        return own, line
    at, start, file = current
    return file, start + (line - at - 1)
