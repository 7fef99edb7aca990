"""The compile pipeline as a list of small passes: read → parse → sema → lower → clang.

Each pass returns data and diagnostics; `compile_policy` stops after the first pass with
errors and never prints. Timings per pass are kept for `benchmarks/compile.py`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from schedc.compiler.lower import lower_policy
from schedc.compiler.toolchain import Toolchain, compile_c, load_toolchain, write_atomic
from schedc.diagnostics import Diagnostic, Severity, has_errors
from schedc.dsl.parser import parse_policy
from schedc.dsl.sema import TypedPolicy, analyze
from schedc.settings import Settings, cache_root

DSL_SUFFIX = ".sched"
C_SUFFIX = ".bpf.c"


@dataclass
class CompileResult:
    source: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    policy: TypedPolicy | None = None
    c_text: str | None = None
    c_path: Path | None = None
    object_path: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "diagnostics": [d.to_json() for d in self.diagnostics],
            "artifacts": {
                "object": str(self.object_path) if self.object_path else None,
                "c": str(self.c_path) if self.c_path else None,
            },
        }


def read_source(path: Path, result: CompileResult) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        result.diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "E000",
                f"cannot read {path}: {exc.strerror}",
                str(path),
                hint="check the path",
            )
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        result.diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "E000",
                "the file is not UTF-8 text",
                str(path),
                line,
                1,
                hint="policies are plain UTF-8 text",
            )
        )
        return None


def front_end(text: str, file: str, result: CompileResult) -> TypedPolicy | None:
    """Parse and analyze; the part of the pipeline that needs no tools."""
    t0 = time.perf_counter()
    tree, diags = parse_policy(text, file)
    t1 = time.perf_counter()
    result.timings["parse"] = t1 - t0
    result.diagnostics += diags
    if tree is None:
        return None
    typed, diags = analyze(tree, text)
    result.timings["sema"] = time.perf_counter() - t1
    result.diagnostics += diags
    return typed


def generated_c_path(tc_cache: Path, source: Path) -> Path:
    """Where generated C lives when --emit-c is not given: one file per source path."""
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    return tc_cache / "gen" / f"{source.stem}-{digest}{C_SUFFIX}"


def default_object_path(source: Path) -> Path:
    name = source.name
    for suffix in (C_SUFFIX, DSL_SUFFIX):
        if name.endswith(suffix):
            return source.with_name(name[: -len(suffix)] + ".bpf.o")
    return source.with_name(name + ".bpf.o")


def translate(
    path: Path, *, emit_c: Path | None = None, c_name: str | None = None
) -> CompileResult:
    """DSL → C text only (no clang, no BTF needed). The C is written to emit_c if given;
    c_name is the path the C will have, for its own #line directives."""
    result = CompileResult(str(path))
    text = read_source(path, result)
    if text is None:
        return result
    typed = front_end(text, str(path), result)
    if typed is None or not result.ok:
        return result
    result.policy = typed
    t0 = time.perf_counter()
    if c_name is None:
        c_name = str(emit_c) if emit_c else f"{path.stem}{C_SUFFIX}"
    result.c_text = lower_policy(typed, str(path), c_name)
    result.timings["lower"] = time.perf_counter() - t0
    if emit_c is not None:
        write_atomic(emit_c, result.c_text)
        result.c_path = emit_c
    return result


def compile_policy(
    path: Path,
    settings: Settings,
    *,
    out: Path | None = None,
    emit_c: Path | None = None,
    include_dirs: list[Path] | None = None,
    toolchain: Toolchain | None = None,
    use_pch: bool = True,
) -> CompileResult:
    """A `.sched` or `.bpf.c` policy to a BPF object. Raises EnvironmentProblem for missing
    tools; everything wrong with the policy itself comes back as diagnostics."""
    is_c = path.name.endswith(C_SUFFIX) or path.suffix == ".c"
    out = out or default_object_path(path)
    if is_c:
        result = CompileResult(str(path))
        text = read_source(path, result)
        if text is None:
            return result
        tc = toolchain or load_toolchain(settings)
        t0 = time.perf_counter()
        # The security rules first, as in `schedc check`: C is untrusted (clang runs in the
        # sandbox anyway; this says clearly what is refused and why).
        from schedc.verifier.checks import scan_c  # noqa: PLC0415 (checks imports this module)

        blocked = scan_c(path, tc, text, include_dirs or [])
        result.timings["scan"] = time.perf_counter() - t0
        if has_errors(blocked):
            result.diagnostics += blocked
            return result
        t0 = time.perf_counter()
        result.diagnostics += compile_c(tc, path, out, include_dirs=include_dirs, use_pch=False)
        result.timings["clang"] = time.perf_counter() - t0
        result.c_path = path
        if result.ok:
            result.object_path = out
        return result

    c_path = emit_c or generated_c_path(cache_root(settings), path)
    result = translate(path, emit_c=emit_c, c_name=str(c_path))
    if result.c_text is None or not result.ok:
        return result
    tc = toolchain or load_toolchain(settings)
    if result.c_path is None:
        write_atomic(c_path, result.c_text)
        result.c_path = c_path
    t0 = time.perf_counter()
    # A policy may compare an expression with itself (`task.nice < task.nice`): legal, and the
    # front end's business; clang's tautology warnings would point at generated C.
    clang_diags = compile_c(
        tc,
        c_path,
        out,
        include_dirs=include_dirs,
        use_pch=use_pch,
        extra_flags=["-Wno-tautological-compare"],
        inputs=[path],  # the #line directives name the DSL file: clang reads its lines
    )
    result.timings["clang"] = time.perf_counter() - t0
    if has_errors(clang_diags):
        result.diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                "S900",
                "internal error: the generated C did not compile; this is a schedc bug",
                str(path),
                hint=f"please report it with the policy and {c_path}",
            )
        )
    result.diagnostics += clang_diags
    if result.ok:
        result.object_path = out
    return result
