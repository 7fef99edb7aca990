"""The pipeline, written once: every command, the repository, bench, behaviour tests and the
agent build a policy through `run` with a subset of `STAGES`.

    read → open → parse → sema → lower → c_source → emit → scan → lint → clang → load

Each stage is a function from one immutable `Artifact` to the next (plus diagnostics). A stage
applies to some kinds of input (a `.sched` policy, C, a `.bpf.o` object), declares the artifact
fields it needs and gives, and a pipeline whose stages are out of order is refused when it is
built (`PipelineError`), before any input is touched. The runner stops an input at the first
stage that reports an error and records each stage's time. `load` is a batch stage: every
object that reached it is verified in one boot of the sandbox.

The named pipelines are subsets of `STAGES` in its order:
    TRANSLATE  DSL → C text (no tools needed)
    COMPILE    → a BPF object (C is scanned by the security rules first)
    CHECK      → the static checks (`schedc check`), on the generated C for the DSL
    CHECKED    CHECK, then clang (`schedc repo add`: checked and compiled once)
    VERIFY     → checks, clang, then the kernel verifier (`schedc verify`)
    BUILD      COMPILE that also takes ready objects (bench, behaviour tests)
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from schedc.compiler.lower import lower_policy
from schedc.compiler.source import (
    C_SUFFIX,
    DSL_SUFFIX,
    OBJECT_SUFFIX,
    READ_ERROR,
    Kind,
    cannot_read,
    default_object_path,
    kind_of,
    read_source,
)
from schedc.compiler.toolchain import (
    LINK_ERROR,
    Toolchain,
    compile_c,
    link_objects,
    load_toolchain,
    write_atomic,
)
from schedc.diagnostics import Diagnostic, Severity, has_errors
from schedc.dsl import ast
from schedc.dsl.parser import parse_policy
from schedc.dsl.sema import TypedPolicy, analyze
from schedc.dsl.tunables import apply_sets
from schedc.settings import Settings, cache_root, find_bpftool, is_embedded_btf
from schedc.verifier import checks
from schedc.verifier.rules.kernel import DEFAULT_TARGET, KernelVersion, Target
from schedc.verifier.sandbox import DEFAULT_WORKLOAD, LoadReport
from schedc.verifier.verify import (
    VerifyResult,
    apply_report,
    load_on_kernels,
    on_kernel,
    preflight,
    verdict_of,
)

__all__ = [
    "ALL_KINDS",
    "BUILD",
    "CHECK",
    "CHECKED",
    "COMPILE",
    "C_SUFFIX",
    "DSL_SUFFIX",
    "STAGES",
    "TRANSLATE",
    "VERIFY",
    "Artifact",
    "Options",
    "Outcome",
    "Pipeline",
    "PipelineError",
    "Source",
    "Stage",
    "Step",
    "check_file",
    "compile_policy",
    "default_object_path",
    "run",
    "select",
    "translate",
    "verify_policies",
]

ALL_KINDS: frozenset[Kind] = frozenset(("dsl", "c", "object"))


@dataclass(frozen=True)
class Source:
    """An input: a path, and its text when the caller already has it (an agent's draft, a
    stored revision); the path then only names it in diagnostics."""

    path: Path
    text: str | None = None
    # More C files of the same policy (a C policy only): each is compiled as its own unit and
    # the objects are linked into one (`schedc compile --link`, scx's lib/*.bpf.c).
    link: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Artifact:
    """What the stages know about one input so far; each stage returns a new one."""

    path: Path
    kind: Kind
    index: int = 0
    given_text: str | None = None
    text: str | None = None
    tree: ast.Policy | None = None
    policy: TypedPolicy | None = None
    front_codes: frozenset[str] = frozenset()  # what the front end reported (its warnings)
    c_text: str | None = None
    c_path: Path | None = None  # the name the C has (its #line directives say so)
    c_file: Path | None = None  # the C on disk, for libclang and clang
    object_path: Path | None = None
    loads: tuple[LoadReport, ...] = ()  # one per kernel of the matrix, each naming its kernel
    params_set: dict[str, str] = field(default_factory=dict)  # --set NAME=VALUE it was built with
    link: tuple[Path, ...] = ()  # the policy's other C units (Source.link)
    link_texts: tuple[str, ...] = ()  # their texts, once read

    @property
    def load(self) -> LoadReport | None:
        """The first kernel's report (the only one without a matrix)."""
        return self.loads[0] if self.loads else None


@dataclass(frozen=True)
class Options:
    """How to build. `toolchain` is called only when a stage needs clang (a DSL policy with
    errors needs none); `out` names the object of a single input, `build` a folder for several."""

    settings: Settings | None = None
    toolchain: Callable[[], Toolchain] | None = None
    include_dirs: tuple[Path, ...] = ()
    target_kernel: KernelVersion = DEFAULT_TARGET
    # The kernels `lint` checks for, each with its BTF facts (checks.kernel_targets); empty:
    # `target_kernel` alone, from the tables.
    targets: tuple[Target, ...] = ()
    out: Path | None = None
    build: Path | None = None
    emit_c: Path | None = None
    c_name: str | None = None
    c_folder: str = "gen"  # the cache folder for generated C when emit_c is not given
    use_pch: bool = True
    mode: str = "sandbox"  # where `load` runs: host | sandbox
    run_seconds: float | None = None
    workload: str = DEFAULT_WORKLOAD
    progress: Callable[[str], None] | None = None

    def tools(self) -> Toolchain:
        if self.toolchain is None:
            raise PipelineError("this pipeline needs a toolchain: pass Options(toolchain=...)")
        return self.toolchain()


Diagnostics = list[Diagnostic]


@dataclass(frozen=True)
class Step:
    """What one stage made of one artifact; `timings` are its own parts (libclang's parse)."""

    artifact: Artifact
    diagnostics: Diagnostics = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


StageFn = Callable[[Artifact, Options], Step]
BatchFn = Callable[[list[Artifact], Options], list[Step]]


@dataclass(frozen=True)
class Stage:
    name: str
    kinds: frozenset[Kind]
    needs: frozenset[str]
    gives: frozenset[str]
    run: StageFn | None = None
    batch: BatchFn | None = None
    phase: str = "compile"  # what `schedc verify` reports as the stage reached

    def applies(self, kind: Kind) -> bool:
        return kind in self.kinds


class PipelineError(Exception):
    """A pipeline built wrongly: a programming error, found before any input is touched."""


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise PipelineError(f"a stage appears twice in {names}")
        for kind in ALL_KINDS:
            have = {"path", "kind"}
            for stage in self.stages:
                if not stage.applies(kind):
                    continue
                missing = stage.needs - have
                if missing:
                    raise PipelineError(
                        f"stage {stage.name!r} needs {', '.join(sorted(missing))} for {kind} "
                        f"input, which no earlier stage of {names} gives"
                    )
                have |= stage.gives

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def __contains__(self, name: object) -> bool:
        return name in self.names


@dataclass(frozen=True)
class Outcome:
    """One input after the pipeline: the last artifact, every diagnostic, per-stage times."""

    artifact: Artifact
    diagnostics: list[Diagnostic] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reached: tuple[str, ...] = ()  # the stages that ran, in order
    failed: str | None = None  # the stage that reported errors

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    @property
    def source(self) -> str:
        return str(self.artifact.path)

    @property
    def policy(self) -> TypedPolicy | None:
        return self.artifact.policy

    @property
    def c_text(self) -> str | None:
        return self.artifact.c_text

    @property
    def c_path(self) -> Path | None:
        return self.artifact.c_file

    @property
    def object_path(self) -> Path | None:
        return self.artifact.object_path if self.ok else None


# ---- the stages ----------------------------------------------------------------------------


def _read(a: Artifact, o: Options) -> Step:
    if a.given_text is not None:
        text, diags = a.given_text, []
    else:
        text, diags = read_source(a.path)
    if not a.link:
        return Step(replace(a, text=text), diags)
    if a.kind != "c":
        return Step(a, [_link_needs_c(a)])
    texts = []
    for unit in a.link:
        unit_text, unit_diags = read_source(unit)
        diags += unit_diags
        texts.append(unit_text or "")
    return Step(replace(a, text=text, link_texts=tuple(texts)), diags)


def _link_needs_c(a: Artifact) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR,
        LINK_ERROR,
        f"--link adds C units to a C policy; {a.path} is not {C_SUFFIX}",
        str(a.path),
        hint="a .sched policy is one file: compile it alone, or link C units to a "
        f"{C_SUFFIX} policy",
    )


def _open(a: Artifact, o: Options) -> Step:
    if a.link:
        return Step(a, [_link_needs_c(a)])
    if not a.path.is_file():
        return Step(a, [cannot_read(a.path, "no such file")])
    return Step(replace(a, object_path=a.path), [])


def _parse(a: Artifact, o: Options) -> Step:
    tree, diags = parse_policy(a.text or "", str(a.path))
    return Step(replace(a, tree=tree), diags)


def _sema(a: Artifact, o: Options) -> Step:
    assert a.tree is not None
    typed, diags = analyze(a.tree, a.text or "")
    return Step(replace(a, policy=typed, front_codes=frozenset(d.code for d in diags)), diags)


def _set(a: Artifact, o: Options) -> Step:
    """`--set NAME=VALUE` (settings.params): the params' values the object is built with."""
    sets = o.settings.params if o.settings is not None else ()
    if not sets:
        return Step(a)
    if a.policy is None:  # a C policy: its globals are its own business
        return Step(
            a,
            [
                Diagnostic(
                    Severity.ERROR,
                    "E123",
                    "--set gives values to the params of a DSL policy; this is BPF C",
                    str(a.path),
                    hint="set a C policy's `const volatile` globals in its own source",
                )
            ],
        )
    values, diags = apply_sets(a.policy, sets, str(a.path))
    return Step(replace(a, params_set=values), diags)


def generated_c_path(cache: Path, source: Path, folder: str = "gen") -> Path:
    """Where generated C lives when --emit-c is not given: one file per source path and
    folder (a check keeps its own, so it never races a compile of the same policy)."""
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    return cache / folder / f"{source.stem}-{digest}{C_SUFFIX}"


def _c_path_for(a: Artifact, o: Options) -> Path:
    if o.emit_c is not None:
        return o.emit_c
    if o.c_name is not None:
        return Path(o.c_name)
    if o.build is not None:
        return _in_build(o.build, a, C_SUFFIX)
    if o.settings is not None:
        return generated_c_path(cache_root(o.settings), a.path, o.c_folder)
    return Path(f"{a.path.stem}{C_SUFFIX}")


def _lower(a: Artifact, o: Options) -> Step:
    assert a.policy is not None
    c_path = _c_path_for(a, o)
    c_text = lower_policy(a.policy, str(a.path), str(c_path))
    return Step(replace(a, c_text=c_text, c_path=c_path))


def _c_source(a: Artifact, o: Options) -> Step:
    """A C policy is its own C. C given as text is written where generated C would go,
    never to the path that only names it."""
    if a.given_text is None:
        return Step(replace(a, c_text=a.text, c_path=a.path, c_file=a.path))
    return Step(replace(a, c_text=a.text, c_path=_c_path_for(a, o)))


def _emit(a: Artifact, o: Options) -> Step:
    assert a.c_path is not None and a.c_text is not None
    if a.c_file is None:
        write_atomic(a.c_path, a.c_text)
    return Step(replace(a, c_file=a.c_path))


def _scan(a: Artifact, o: Options) -> Step:
    """C is untrusted: the security rules (K044, K060-K064) before clang sees it (clang runs
    in the sandbox anyway; this says clearly what is refused and why)."""
    assert a.text is not None
    found = checks.scan_c(a.path, o.tools(), a.text, o.include_dirs)
    for unit, text in zip(a.link, a.link_texts, strict=True):
        found += checks.scan_c(unit, o.tools(), text, o.include_dirs)
    return Step(a, found)


def _lint(a: Artifact, o: Options) -> Step:
    """The static checks on the C; for the DSL, findings move to the DSL lines."""
    assert a.c_file is not None and a.c_text is not None
    timings: dict[str, float] = {}
    dsl = a.kind == "dsl"
    found = checks.check_c(
        a.c_file,
        o.tools(),
        o.include_dirs,
        o.targets or o.target_kernel,
        text=a.c_text,
        line_files=[a.path] if dsl else [],
        timings=timings,
    )
    if dsl:
        found = checks.map_to_dsl(found, a.c_file, a.c_text, a.path, a.front_codes)
    for unit, text in zip(a.link, a.link_texts, strict=True):
        found += checks.check_c(
            unit, o.tools(), o.include_dirs, o.targets or o.target_kernel, text=text
        )
    if not dsl:
        found += _embedded_btf_note(o.tools(), a, found)
    return Step(a, found, {f"lint:{k}": v for k, v in timings.items()})


def _object_path_for(a: Artifact, o: Options) -> Path:
    if o.out is not None:
        return o.out
    if o.build is not None:
        return _in_build(o.build, a, OBJECT_SUFFIX)
    return default_object_path(a.path)


def _in_build(build: Path, a: Artifact, suffix: str) -> Path:
    """An input's own folder of a build of several: build/INDEX/NAME.suffix."""
    return build / str(a.index) / (a.path.name.split(".")[0] + suffix)


def _clang(a: Artifact, o: Options) -> Step:
    assert a.c_file is not None
    out = _object_path_for(a, o)
    if a.kind == "c":
        if a.link:
            return _clang_and_link(a, o, out)
        # No precompiled runtime header: C policies include their own headers.
        diags = compile_c(
            o.tools(), a.c_file, out, include_dirs=list(o.include_dirs), use_pch=False
        )
        diags += _embedded_btf_note(o.tools(), a, diags)
        return Step(a if has_errors(diags) else replace(a, object_path=out), diags)
    # A policy may compare an expression with itself (`task.nice < task.nice`): legal, and the
    # front end's business; clang's tautology warnings would point at generated C.
    diags = compile_c(
        o.tools(),
        a.c_file,
        out,
        include_dirs=list(o.include_dirs),
        use_pch=o.use_pch,
        extra_flags=["-Wno-tautological-compare"],
        inputs=[a.path],  # the #line directives name the DSL file: clang reads its lines
    )
    if not has_errors(diags):
        return Step(replace(a, object_path=out), diags)
    internal = Diagnostic(
        Severity.ERROR,
        "S900",
        "internal error: the generated C did not compile; this is a schedc bug",
        str(a.path),
        hint=f"please report it with the policy and {a.c_file}",
    )
    return Step(a, [internal, *diags])


def _embedded_btf_note(tc: Toolchain, a: Artifact, diags: list[Diagnostic]) -> list[Diagnostic]:
    """C005 when a C policy failed against the embedded minimal BTF: it may only lack kernel
    types that the cut left out (docs/compile.md, "Without a kernel kit")."""
    if not has_errors(diags) or not is_embedded_btf(tc.btf):
        return []
    return [
        Diagnostic(
            Severity.NOTE,
            "C005",
            "compiled against schedc's embedded minimal BTF (no kernel BTF is configured), "
            "which has only the kernel types generated policies use",
            str(a.path),
            hint="pass --btf FILE or set SCHEDC_BTF to the vmlinux BTF of a sched_ext kernel "
            "(a sandbox kit's vmlinux.btf, or /sys/kernel/btf/vmlinux of a sched_ext host)",
        )
    ]


def _clang_and_link(a: Artifact, o: Options, out: Path) -> Step:
    """A policy of several C files: each compiled on its own, then linked into `out`."""
    assert a.c_file is not None
    if o.settings is None:
        raise PipelineError("linking needs Options(settings=...) for bpftool")
    bpftool = find_bpftool(o.settings)
    units = Path(tempfile.mkdtemp(dir=_parent_of(out), prefix=f".{out.name}.", suffix=".units"))
    try:
        objects: list[Path] = []
        diags: list[Diagnostic] = []
        for n, c_file in enumerate([a.c_file, *a.link]):
            objects.append(units / f"{n}{OBJECT_SUFFIX}")
            diags += compile_c(
                o.tools(), c_file, objects[-1], include_dirs=list(o.include_dirs), use_pch=False
            )
        if has_errors(diags):
            return Step(a, diags + _embedded_btf_note(o.tools(), a, diags))
        sources = [a.path, *a.link]
        diags += link_objects(
            o.tools(), bpftool, list(zip(objects, sources, strict=True)), out, a.path
        )
        return Step(a if has_errors(diags) else replace(a, object_path=out), diags)
    finally:
        shutil.rmtree(units, ignore_errors=True)


def _parent_of(out: Path) -> Path:
    parent = Path(os.path.abspath(out)).parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _load(arts: list[Artifact], o: Options) -> list[Step]:
    """The kernel verifier on every object, in one boot of the sandbox (or on the host)."""
    if o.settings is None:
        raise PipelineError("the load stage needs Options(settings=...)")
    objects = [a.object_path for a in arts if a.object_path is not None]
    per_kernel = load_on_kernels(
        objects,
        o.settings,
        mode=o.mode,
        run_seconds=o.run_seconds,
        workload=o.workload,
        progress=o.progress,
    )
    steps = []
    for i, a in enumerate(arts):
        loads = tuple(reports[i] for reports in per_kernel)
        diagnostics = []
        for r in loads:
            found = apply_report(r, str(a.path))
            if len(loads) > 1:
                found = [on_kernel(d, r.kernel or "?") for d in found]
            diagnostics += found
        steps.append(Step(replace(a, loads=loads), diagnostics))
    return steps


def _stage(
    name: str,
    kinds: Iterable[Kind],
    needs: Iterable[str],
    gives: Iterable[str],
    fn: StageFn | None = None,
    *,
    batch: BatchFn | None = None,
    phase: str = "compile",
) -> Stage:
    return Stage(name, frozenset(kinds), frozenset(needs), frozenset(gives), fn, batch, phase)


# The one order. Nothing else in schedc composes these functions.
STAGES: tuple[Stage, ...] = (
    _stage("read", ("dsl", "c"), (), ("text",), _read),
    _stage("open", ("object",), (), ("object_path",), _open),
    _stage("parse", ("dsl",), ("text",), ("tree",), _parse),
    _stage("sema", ("dsl",), ("tree",), ("policy",), _sema),
    _stage("set", ("dsl", "c"), ("text",), (), _set),
    _stage("lower", ("dsl",), ("policy",), ("c_text", "c_path"), _lower),
    _stage("c_source", ("c",), ("text",), ("c_text", "c_path"), _c_source),
    _stage("emit", ("dsl", "c"), ("c_text", "c_path"), ("c_file",), _emit),
    _stage("scan", ("c",), ("text",), (), _scan, phase="check"),
    _stage("lint", ("dsl", "c"), ("c_text", "c_file"), (), _lint, phase="check"),
    _stage("clang", ("dsl", "c"), ("c_file",), ("object_path",), _clang),
    _stage("load", ALL_KINDS, ("object_path",), ("loads",), batch=_load, phase="verifier"),
)


def select(*names: str) -> Pipeline:
    """The named stages, in the one order of STAGES."""
    known = {s.name for s in STAGES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PipelineError(f"no stage named {', '.join(unknown)}")
    return Pipeline(tuple(s for s in STAGES if s.name in names))


TRANSLATE = select("read", "parse", "sema", "lower", "c_source")
COMPILE = select("read", "parse", "sema", "set", "lower", "c_source", "emit", "scan", "clang")
BUILD = select(*COMPILE.names, "open")
CHECK = select("read", "parse", "sema", "set", "lower", "c_source", "emit", "lint")
CHECKED = select(*CHECK.names, "clang")
VERIFY = select(*CHECKED.names, "open", "load")


def _unsorted_unique(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    return list(dict.fromkeys(diags))


def run(pipeline: Pipeline, inputs: Sequence[Path | Source], options: Options) -> list[Outcome]:
    """Every input through the pipeline's stages, in order; an input stops at the first stage
    that reports an error. A batch stage gets every input that reached it at once."""
    live: list[Artifact] = []
    diags: list[list[Diagnostic]] = []
    timings: list[dict[str, float]] = []
    reached: list[list[str]] = []
    failed: list[str | None] = []
    for i, item in enumerate(inputs):
        src = item if isinstance(item, Source) else Source(item)
        live.append(Artifact(src.path, kind_of(src.path), i, given_text=src.text, link=src.link))
        diags.append([])
        timings.append({})
        reached.append([])
        failed.append(None)
    say = options.progress
    for i, a in enumerate(live):
        if not any(s.applies(a.kind) for s in pipeline.stages):
            diags[i].append(_not_taken(a, pipeline))
            failed[i] = "read"
    for stage in pipeline.stages:
        todo = [i for i, a in enumerate(live) if failed[i] is None and stage.applies(a.kind)]
        if not todo:
            continue
        if stage.batch is not None:
            t0 = time.perf_counter()
            steps = stage.batch([live[i] for i in todo], options)
            spent = (time.perf_counter() - t0) / len(todo)
            for i in todo:
                timings[i][stage.name] = spent
        else:
            steps = []
            for i in todo:
                if say is not None and not reached[i] and "clang" in pipeline:
                    say(f"compiling {live[i].path}")
                t0 = time.perf_counter()
                steps.append(stage.run(live[i], options))  # type: ignore[misc]
                timings[i][stage.name] = time.perf_counter() - t0
        for i, step in zip(todo, steps, strict=True):
            live[i] = step.artifact
            diags[i] += step.diagnostics
            timings[i].update(step.timings)
            reached[i].append(stage.name)
            if has_errors(step.diagnostics):
                failed[i] = stage.name
    return [
        Outcome(live[i], _unsorted_unique(diags[i]), timings[i], tuple(reached[i]), failed[i])
        for i in range(len(live))
    ]


def _not_taken(a: Artifact, pipeline: Pipeline) -> Diagnostic:
    what = {"object": "a BPF object", "c": "C", "dsl": "a policy"}[a.kind]
    return Diagnostic(
        Severity.ERROR,
        READ_ERROR,
        f"{a.path} is {what}; this command takes {DSL_SUFFIX} or {C_SUFFIX} policies",
        str(a.path),
        hint="give the policy's source",
    )


def _one(pipeline: Pipeline, item: Path | Source, options: Options) -> Outcome:
    return run(pipeline, [item], options)[0]


def _toolchain(
    settings: Settings, given: Toolchain | Callable[[], Toolchain] | None
) -> Callable[[], Toolchain]:
    if given is None:
        return functools.cache(lambda: load_toolchain(settings))
    if isinstance(given, Toolchain):
        return lambda: given
    return given


# ---- the commands' entry points: each one pipeline, no stage composed by hand --------------


def translate(
    path: Path | Source, *, emit_c: Path | None = None, c_name: str | None = None
) -> Outcome:
    """DSL → C text only (no clang, no BTF needed). The C is written to emit_c if given;
    c_name is the path the C will have, for its own #line directives."""
    pipeline = select(*TRANSLATE.names, "emit") if emit_c is not None else TRANSLATE
    return _one(pipeline, path, Options(emit_c=emit_c, c_name=c_name))


def compile_policy(
    path: Path | Source,
    settings: Settings,
    *,
    out: Path | None = None,
    emit_c: Path | None = None,
    include_dirs: Sequence[Path] | None = None,
    toolchain: Toolchain | Callable[[], Toolchain] | None = None,
    use_pch: bool = True,
) -> Outcome:
    """A `.sched` or `.bpf.c` policy to a BPF object. Raises EnvironmentProblem for missing
    tools; everything wrong with the policy itself comes back as diagnostics."""
    options = Options(
        settings=settings,
        toolchain=_toolchain(settings, toolchain),
        include_dirs=tuple(include_dirs or ()),
        out=out,
        emit_c=emit_c,
        use_pch=use_pch,
    )
    return _one(COMPILE, path, options)


def check_file(
    path: Path | Source,
    settings: Settings,
    *,
    toolchain: Toolchain | Callable[[], Toolchain] | None = None,
    include_dirs: Iterable[Path] = (),
    target_kernel: KernelVersion | str = DEFAULT_TARGET,
    emit_c: Path | None = None,
    targets: Sequence[Target] = (),
) -> Outcome:
    """`schedc check` of one policy: for the DSL, its generated C is checked and findings are
    mapped to the DSL lines. `targets` (checks.kernel_targets), when given, replace
    `target_kernel`. Raises EnvironmentProblem when a tool is missing."""
    options = Options(
        settings=settings,
        toolchain=_toolchain(settings, toolchain),
        include_dirs=tuple(include_dirs),
        target_kernel=checks.target_of(target_kernel),
        targets=tuple(targets),
        emit_c=emit_c,
        c_folder="check",
    )
    found = _one(CHECK, path, options)
    return replace(found, diagnostics=sorted(found.diagnostics, key=Diagnostic.sort_key))


def verify_policies(
    paths: Sequence[Path | Source],
    settings: Settings,
    *,
    mode: str = "auto",
    run_seconds: float | None = None,
    workload: str = DEFAULT_WORKLOAD,
    include_dirs: Sequence[Path] | None = None,
    progress: Callable[[str], None] | None = None,
    target_kernel: KernelVersion = DEFAULT_TARGET,
) -> list[VerifyResult]:
    """Every policy through VERIFY; all loadable objects in one boot of the sandbox."""
    where = preflight(mode, run_seconds, settings)
    build = Path(tempfile.mkdtemp(prefix="schedc-verify-"))
    try:
        options = Options(
            settings=settings,
            toolchain=functools.cache(lambda: load_toolchain(settings)),
            include_dirs=tuple(include_dirs or ()),
            target_kernel=target_kernel,
            build=build,
            c_folder="check",
            mode=where,
            run_seconds=run_seconds,
            workload=workload,
            progress=progress,
        )
        return [_verify_result(o) for o in run(VERIFY, paths, options)]
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _verify_result(o: Outcome) -> VerifyResult:
    phase = {s.name: s.phase for s in STAGES}
    a = o.artifact
    ran = a.load is not None and a.load.verified and a.load.ok and a.load.run is not None
    if ran:
        stage = "run"
    elif o.failed is not None:
        stage = phase[o.failed]
    elif "load" in o.reached:
        stage = "verifier"
    else:
        stage = phase[o.reached[-1]] if o.reached else "compile"
    result = VerifyResult(
        policy=o.source,
        ok=o.ok and stage in ("verifier", "run"),
        stage=stage,
        diagnostics=list(o.diagnostics),
        object_path=str(a.object_path) if a.object_path else None,
        source_kind=a.kind,
        params_set=dict(a.params_set),
    )
    if a.load is not None:
        result.programs = a.load.programs
        result.run = a.load.run if ran else None
        result.kernels = [verdict_of(r) for r in a.loads]
    return result
