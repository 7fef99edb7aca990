"""The operations an agent may call: one implementation behind the MCP tools and the synthesis
loop's tools.

Each operation has a pydantic model for its arguments (which is also the tool's JSON schema),
a handler, and a flag saying whether it runs clang, libclang or a VM; those run in a worker
process with a time and memory limit (schedc.agent.runner), so a hostile or pathological policy
can only cost a worker, never the server. Results are JSON-ready dicts with `"ok"`; a failure
that is not about the policy itself is `{"ok": false, "error": {"kind", "message", "hint"}}`.

Sources arrive as text, never as paths: they are written to a scratch folder as `policy.sched`
or `policy.bpf.c`, and every diagnostic names that file, with lines and columns of the text the
agent sent.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schedc.agent.classify import HostTask, classify
from schedc.agent.profiling import PROFILING, NotAllowed, ProfileAllow
from schedc.behaviour.run import check_sandboxes
from schedc.behaviour.scenario import ScenarioError
from schedc.bench.runner import bench_objects, check_environment, compile_for_bench
from schedc.compiler.pipeline import Source, check_file, compile_policy, translate, verify_policies
from schedc.compiler.toolchain import load_toolchain
from schedc.diagnostics import Diagnostic, has_errors, summary_line
from schedc.dsl.language import NAME_RE
from schedc.profile.model import Profile, Target
from schedc.repo import ingest, layout
from schedc.repo.add import AddOptions, add_policy, behaviour_json
from schedc.repo.bench_bridge import record_input
from schedc.repo.catalog import open_store
from schedc.repo.entries import load_entries, verification_of
from schedc.repo.evidence import ScenarioInput, read_scenario, run_scenarios
from schedc.repo.evidence import summary as evidence_summary
from schedc.repo.gitstore import GitStore
from schedc.repo.history import policy_log, show_json, show_policy
from schedc.repo.index import Query, SearchIndex, index_path
from schedc.repo.models import (
    MAX_SCENARIO_CHARS,
    BehaviourReport,
    Parent,
    PolicyName,
    RecordProfile,
    Tag,
    WorkloadId,
)
from schedc.repo.perf import record_performance, with_profile
from schedc.settings import Settings
from schedc.verifier.checks import kernel_targets
from schedc.verifier.rules.kernel import DEFAULT_TARGET, parse_kernel_version
from schedc.verifier.sandbox import ProcessExit, ProgramReport, RunReport
from schedc.verifier.verify import KernelVerdict, VerifyResult
from schedc.workloads import DEFAULT_WORKLOAD, RECIPES, RUN_LOADS, WorkloadParams

MAX_SOURCE_CHARS = 256 * 1024  # the DSL's own file limit (E007)
MAX_VALUES = 1000
MAX_RUN_SECONDS = 60.0
MAX_TEST_RUNS = 3  # test_policy / submit_policy runs per side: each one is a scenario's length
MAX_EXPLAIN_TASKS = 32
MAX_PROFILE_SECONDS = 60.0
MAX_BENCH_RUNS = 5  # bench_policy runs per side
MAX_BENCH_SECONDS = 30  # bench_policy's timed workloads (stress-ng, cyclictest, wakebench)
MAX_BENCH_SCALE = 2.0  # bench_policy's fixed-work workloads: 2x a few seconds under TCG

Language = Literal["dsl", "c"]
Progress = Callable[[str], None]

_NAME_PATTERN = f"^{NAME_RE.pattern}$"
_REVISION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/~^-]{0,63}$"  # no leading '-': never an option
_KERNEL_PATTERN = r"^[0-9]+\.[0-9]+(\.[0-9]+)?$"

SourceText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_SOURCE_CHARS,
        description="the whole policy text: a .sched DSL policy, or sched_ext BPF C",
    ),
]
LanguageField = Annotated[
    Language,
    Field(description="'dsl' for the schedc policy language (see dsl_reference), 'c' for BPF C"),
]
Name = Annotated[  # the pattern first, so that it shows in the JSON schema
    str,
    Field(pattern=_NAME_PATTERN, description="policy name: [a-z][a-z0-9_]{0,23}"),
    *PolicyName.__metadata__,  # and the repository's own name check
]
Revision = Annotated[
    str,
    Field(
        pattern=_REVISION_PATTERN,
        description="a git revision of the repository, or vN for version N of the policy",
    ),
]
TagField = Annotated[Tag, Field(max_length=32, description="lowercase tag, e.g. latency")]
WorkloadField = Annotated[
    WorkloadId, Field(max_length=64, description="workload id, e.g. hackbench or web-server")
]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchArgs(Args):
    query: str = Field(
        "",
        max_length=500,
        description="words to look for in names, descriptions, tags, workloads and sources",
    )
    tags: list[TagField] = Field(default_factory=list, max_length=16)
    workload: WorkloadField | None = Field(None, description="only policies measured on it")
    kernel: str | None = Field(
        None, pattern=_KERNEL_PATTERN, description="only policies verified on it, e.g. 6.12"
    )
    behaviour_passing: bool = Field(
        False,
        description="only policies with behaviour reports that all passed (those on kernel, "
        "when given): every expectation of every stored scenario held",
    )
    limit: int = Field(5, ge=1, le=50)


class GetArgs(Args):
    name: Name
    revision: Revision | None = None


class CompileArgs(Args):
    source: SourceText
    language: LanguageField = "dsl"
    emit_c: bool = Field(False, description="also return the generated C (DSL only)")


class CheckArgs(Args):
    source: SourceText
    language: LanguageField = "dsl"
    target_kernel: str | None = Field(
        None,
        pattern=_KERNEL_PATTERN,
        description="oldest kernel the policy must load on; default: every kernel in use "
        "(each from its BTF)",
    )


# `--set NAME=VALUE`: a DSL param's value for this build (docs/dsl.md section 3.3).
SetText = Annotated[str, Field(max_length=120, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}=[^\s=]{1,40}$")]
SET_FIELD = Field(
    default_factory=list,
    max_length=32,
    description="NAME=VALUE strings: build the DSL policy with these param values instead of "
    "its defaults (as --set on the command line; checked against each param's type and range)",
)


class VerifyArgs(Args):
    source: SourceText | None = Field(None, description="the policy text; or give name")
    name: Name | None = Field(None, description="a policy in the repository instead of source")
    revision: Revision | None = None
    language: LanguageField = "dsl"
    run_seconds: float | None = Field(
        None,
        gt=0,
        le=MAX_RUN_SECONDS,
        description="also attach it in the sandbox VM under a workload for this long",
    )
    workload: Literal[tuple(sorted(RUN_LOADS))] = Field(  # type: ignore[valid-type]
        DEFAULT_WORKLOAD, description="load used with run_seconds"
    )
    set: list[SetText] = SET_FIELD

    @model_validator(mode="after")
    def _one_policy(self) -> VerifyArgs:
        if (self.source is None) == (self.name is None):
            raise ValueError("give exactly one of source and name")
        if self.revision is not None and self.name is None:
            raise ValueError("revision goes with name")
        return self


ScenarioText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_SCENARIO_CHARS,
        description="a scenario file's TOML text: task groups and expectations "
        "(docs/behaviour.md; the examples/*.scenario.toml files are models)",
    ),
]
ScenarioName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="the scenario's name (its diagnostics name SCENARIO.scenario.toml, and a "
        "stored report is kept under it)",
    ),
]


class TestArgs(Args):
    __test__ = False  # not a pytest class

    source: SourceText | None = Field(None, description="the policy text; or give name")
    name: Name | None = Field(None, description="a policy in the repository instead of source")
    revision: Revision | None = None
    language: LanguageField = "dsl"
    scenario: ScenarioText
    scenario_name: ScenarioName = "scenario"
    runs: int = Field(1, ge=1, le=MAX_TEST_RUNS, description="runs per side (policy, baseline)")
    set: list[SetText] = SET_FIELD

    @model_validator(mode="after")
    def _one_policy(self) -> TestArgs:
        if (self.source is None) == (self.name is None):
            raise ValueError("give exactly one of source and name")
        if self.revision is not None and self.name is None:
            raise ValueError("revision goes with name")
        return self


Comm = Annotated[str, Field(max_length=15, pattern=r"^[\x20-\x7e]*$")]


class TaskAttributes(Args):
    """A task as the class conditions see it; what is not given takes the default shown."""

    comm: Comm = Field("task", description="the task's name, at most 15 characters")
    parent_comm: Comm = Field("bash", description="the parent process's name")
    process_comm: Comm | None = Field(
        None,
        description="the name of its process (main thread), e.g. firefox for a Renderer "
        "thread; default: the task is the main thread, so its own comm",
    )
    cgroup: str = Field(
        "/",
        max_length=255,
        pattern=r"^/([A-Za-z0-9_.@:+-]+(/[A-Za-z0-9_.@:+-]+){0,7})?$",
        description="the task's cgroup v2 path, e.g. /system.slice/nginx.service",
    )
    nice: int = Field(0, ge=-20, le=19)
    uid: int = Field(0, ge=0, le=2**32 - 1)
    pid: int = Field(1000, ge=1, le=2**22)
    tgid: int = Field(1000, ge=1, le=2**22)
    kthread: bool = False
    weight: int | None = Field(
        None, ge=1, le=10000, description="sched_ext weight (default: the nice value's)"
    )
    nr_cpus_allowed: int = Field(4, ge=1, le=4096)
    avg_runtime_ms: float = Field(
        0.0, ge=0, le=1e6, description="average CPU time per run (task.avg_runtime), in ms"
    )
    wakeup_rate: int = Field(0, ge=0, le=10**7, description="wakeups per second")
    since_ran_ms: float = Field(
        0.0, ge=0, le=1e6, description="time since the task last stopped running, in ms"
    )

    @model_validator(mode="after")
    def _no_dot_parts(self) -> TaskAttributes:
        if any(part in (".", "..") for part in self.cgroup.split("/")):
            raise ValueError("a cgroup path has no '.' or '..' parts")
        return self


class ExplainArgs(Args):
    source: SourceText | None = Field(None, description="a DSL policy's text; or give name")
    name: Name | None = Field(None, description="a DSL policy in the repository instead")
    revision: Revision | None = None
    tasks: list[TaskAttributes] = Field(min_length=1, max_length=MAX_EXPLAIN_TASKS)

    @model_validator(mode="after")
    def _one_policy(self) -> ExplainArgs:
        if (self.source is None) == (self.name is None):
            raise ValueError("give exactly one of source and name")
        if self.revision is not None and self.name is None:
            raise ValueError("revision goes with name")
        return self


class SubmitArgs(Args):
    source: SourceText
    language: LanguageField = "dsl"
    name: Name
    description: str = Field(min_length=1, max_length=500)
    tags: list[TagField] = Field(default_factory=list, max_length=16)
    workloads: list[WorkloadField] = Field(default_factory=list, max_length=16)
    parent: Annotated[Parent, Field(max_length=90)] | None = Field(
        None, description="the policy this one derives from: NAME or NAME@REV"
    )
    verify: Literal["auto", "always", "never"] = Field(
        "auto",
        description="'auto': run the kernel verifier when a kernel is at hand; 'always': "
        "refuse without one; 'never': compile and check only (recorded as unverified)",
    )
    agent: str | None = Field(None, max_length=100, description="who wrote it, e.g. a model")
    scenario: ScenarioText | None = Field(
        None,
        description="also test the policy on this scenario and store the report beside its "
        "verification (a test_policy report of this very source and scenario from this "
        "session is stored instead of running it again); a failed expectation is stored "
        "marked failed and the result has ok false",
    )
    scenario_name: ScenarioName = "scenario"
    runs: int = Field(1, ge=1, le=MAX_TEST_RUNS, description="runs per side, with scenario")


class RecordArgs(Args):
    name: Name
    workload: WorkloadField
    metric: str = Field(min_length=1, max_length=64, description="e.g. 'time' or 'bogo ops/s'")
    unit: str = Field("", max_length=32)
    direction: Literal["higher", "lower"] = Field(description="which way is better")
    values: list[float] = Field(min_length=1, max_length=MAX_VALUES)
    baseline_values: list[float] = Field(default_factory=list, max_length=MAX_VALUES)
    baseline_scheduler: str | None = Field(None, max_length=64, description="e.g. eevdf")
    workload_description: str = Field("", max_length=500)
    tunables: dict[str, str] = Field(default_factory=dict, max_length=32)
    kernel: str | None = Field(None, max_length=64)
    notes: str = Field("", max_length=2000)
    agent: str | None = Field(None, max_length=100)


class BenchArgs(Args):
    source: SourceText | None = Field(None, description="the policy text; or give name")
    name: Name | None = Field(None, description="a policy in the repository instead of source")
    revision: Revision | None = None
    language: LanguageField = "dsl"
    workload: Literal[tuple(sorted(RECIPES))] = Field(  # type: ignore[valid-type]
        description="the built-in workload to measure (docs/bench.md, 'Workload recipes'): "
        "batch-makespan and compile (time, lower is better), hackbench (time), stress-ng "
        "(bogo ops/s, higher), cyclictest and wakebench (wakeup latency p99, lower)"
    )
    seconds: int = Field(
        3,
        ge=1,
        le=MAX_BENCH_SECONDS,
        description="length in whole seconds of each run of the timed workloads (stress-ng, "
        "cyclictest, wakebench)",
    )
    scale: float = Field(
        1.0,
        ge=0.05,
        le=MAX_BENCH_SCALE,
        description="amount of work of the fixed-work workloads (hackbench, batch-makespan, "
        "compile); 1 takes a few seconds per run under TCG",
    )
    runs: int = Field(
        3,
        ge=1,
        le=MAX_BENCH_RUNS,
        description="runs per side (EEVDF, the policy), interleaved; 3 or more give a "
        "bootstrap interval",
    )
    warmup: int = Field(0, ge=0, le=2, description="baseline runs before, not counted")
    set: list[SetText] = SET_FIELD
    profile: Profile | None = Field(
        None,
        description="the workload profile (a `schedc profile -o` JSON object) these figures "
        "stand for; kept with the stored record, so repository search by profile finds it",
    )
    agent: str | None = Field(None, max_length=100, description="who asked, e.g. a model")

    @model_validator(mode="after")
    def _one_policy(self) -> BenchArgs:
        if (self.source is None) == (self.name is None):
            raise ValueError("give exactly one of source and name")
        if self.revision is not None and self.name is None:
            raise ValueError("revision goes with name")
        return self


class ReferenceArgs(Args):
    pass


class ProfileArgs(Args):
    pid: int | None = Field(None, ge=1, description="a process the server allows profiling")
    cgroup: str | None = Field(
        None,
        max_length=512,
        description="a cgroup v2 folder the server allows ('/app.slice' or a /sys/fs/cgroup path)",
    )
    command: str | None = Field(
        None,
        max_length=32,
        description="the NAME of a command the server was started to allow "
        "(--allow-profile-command NAME=...); the server runs it",
    )
    all: bool = Field(False, description="every task on the machine, if the server allows it")
    seconds: float = Field(5.0, ge=0.5, le=MAX_PROFILE_SECONDS, description="sampling window")
    interval_ms: int = Field(100, ge=10, le=1000, description="sampling interval")
    scenario: bool = Field(
        False, description="also return a test_policy scenario of the same shape (TOML text)"
    )
    draft: bool = Field(False, description="also return a first DSL draft whose classes match")

    @model_validator(mode="after")
    def _one_target(self) -> ProfileArgs:
        given = [self.pid is not None, self.cgroup is not None, self.command is not None, self.all]
        if sum(given) != 1:
            raise ValueError("give exactly one of pid, cgroup, command and all")
        return self


@dataclass
class Context:
    """What every operation runs against: the repository, the settings and a progress sink."""

    repo: Path | None
    settings: Settings
    progress: Progress = field(default=lambda _m: None)
    # A passing verify_policy result for the very source being submitted (the runner keeps
    # them per session): submit_policy records it instead of booting the kernel again.
    prior_verification: dict[str, Any] | None = None
    # The stored forms of a test_policy call's reports (one per kernel of the matrix) of the
    # very source and scenario being submitted (the runner keeps them per session):
    # submit_policy stores them.
    prior_behaviour: list[dict[str, Any]] | None = None
    # What profile_workload may look at (the server's --allow-profile-* options).
    profile_allow: ProfileAllow = field(default_factory=ProfileAllow)
    # Set when the client cancels a call that runs in the server (profile_workload).
    cancel: threading.Event | None = None
    # Where the shell running the operations shows notices to its operator (`schedc mcp`,
    # `schedc synthesize`: a line on stderr); they are also given as progress.
    notice: Progress | None = None

    def store(self) -> GitStore:
        """The repository; the default one is created and seeded on first use (said as a
        notice and as progress)."""
        return open_store(self.repo, self.settings, self._notice)

    def _notice(self, message: str) -> None:
        if self.notice is not None:
            self.notice(message)
        self.progress(message)


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    args: type[Args]
    handler: Callable[[Context, Any], dict[str, Any]]
    isolated: bool = False  # runs clang, libclang or a VM: in a worker, with a time limit
    slow: bool = False  # may boot the sandbox VM: the long time limit
    read_only: bool = False  # changes nothing: no repository commit, no VM


# -- sources -----------------------------------------------------------------------------------
def source_name(language: Language) -> str:
    return layout.DSL_SOURCE if language == "dsl" else layout.C_SOURCE


@contextmanager
def staged(source: str, language: Language) -> Iterator[Path]:
    """The source as a file named policy.sched / policy.bpf.c in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="schedc-agent-") as tmp:
        path = Path(tmp) / source_name(language)
        path.write_text(source, encoding="utf-8")
        yield path


@contextmanager
def built(
    ctx: Context, found: PolicyText, settings: Settings
) -> Iterator[tuple[Path, Any, dict[str, Any] | None]]:
    """The policy staged and compiled for the sandbox in a scratch folder: (its path, the
    compiled objects, None), or (path, ..., the compile diagnostics as a result)."""
    with staged(found.source, found.language) as path:
        build = path.with_name("build")
        build.mkdir()
        compiled = compile_for_bench([path], settings, build, progress=ctx.progress)
        failed = None
        if not compiled.ok:
            failed = _diagnostics(relocate(compiled.diagnostics, path))
            failed["stage"] = "compile"
        yield path, compiled, failed


def _scratch_c(path: Path) -> Path | None:
    """Where a staged DSL policy's generated C goes: beside it, removed with the scratch
    folder (nothing is left in the cache by a worker that is killed)."""
    return path.with_name("generated.bpf.c") if path.name.endswith(".sched") else None


def relocate(diags: list[Diagnostic], path: Path) -> list[Diagnostic]:
    """Diagnostics about the scratch file name it as the agent knows it: policy.sched."""
    return ingest.relocate(diags, path, Path(path.name))


def _diagnostics(diags: list[Diagnostic]) -> dict[str, Any]:
    return {
        "ok": not has_errors(diags),
        "summary": summary_line(diags) or "no errors, no warnings",
        "diagnostics": [d.to_json() for d in diags],
    }


# -- handlers ----------------------------------------------------------------------------------
def do_search(ctx: Context, a: SearchArgs) -> dict[str, Any]:
    store = ctx.store()
    index = SearchIndex(store, index_path(ctx.settings, store.root))
    try:
        query = Query(
            a.query,
            list(a.tags),
            a.workload,
            a.kernel,
            a.limit,
            behaviour_passing=a.behaviour_passing,
        )
        payload = index.search(query)
    finally:
        index.close()
    payload.pop("index", None)  # cache bookkeeping, of no use to an agent
    return payload


def do_get(ctx: Context, a: GetArgs) -> dict[str, Any]:
    store = ctx.store()
    spec = f"{a.name}@{a.revision}" if a.revision else a.name
    entry, sha = show_policy(store, spec)
    payload = show_json(entry, sha)
    report, _problem = verification_of(entry)  # a problem is in payload["problems"]
    payload["behaviour"] = (
        [behaviour_json(r, text=True) for r in report.behaviour] if report else []
    )
    payload["history"] = [e.to_json() for e in policy_log(store, a.name)[:20]]
    return payload


def do_compile(ctx: Context, a: CompileArgs) -> dict[str, Any]:
    with staged(a.source, a.language) as path:  # C is scanned, and compiled in the sandbox
        result = compile_policy(
            path, ctx.settings, out=path.with_name("policy.bpf.o"), emit_c=_scratch_c(path)
        )
        payload = _diagnostics(relocate(result.diagnostics, path))
        obj = result.object_path
        payload["artifacts"] = {"object_bytes": obj.stat().st_size} if obj else None
        if result.policy is not None:
            payload["policy"] = {
                "name": result.policy.name,
                "description": result.policy.description,
            }
        if a.emit_c and result.policy is not None:  # with #line names the agent knows
            named = translate(Source(Path(layout.DSL_SOURCE), a.source), c_name=layout.C_SOURCE)
            payload["c"] = named.c_text
        return payload


def do_check(ctx: Context, a: CheckArgs) -> dict[str, Any]:
    with staged(a.source, a.language) as path:  # the generated C stays in the scratch folder
        given = parse_kernel_version(a.target_kernel) if a.target_kernel else None
        targets = kernel_targets(ctx.settings) if given is None else ()
        result = check_file(
            path,
            ctx.settings,
            target_kernel=given or DEFAULT_TARGET,
            emit_c=_scratch_c(path),
            targets=targets,
        )
        return _diagnostics(relocate(result.diagnostics, path))


@dataclass
class PolicyText:
    source: str
    language: Language
    origin: dict[str, Any] | None  # the repository entry it came from, if any


def policy_text(
    ctx: Context,
    source: str | None,
    language: Language,
    name: str | None,
    revision: str | None,
    what: str = "verify",
) -> PolicyText | dict[str, Any]:
    """The source an operation works on: given as text, or a stored policy's (an error
    result when that policy has no source)."""
    if name is None:
        assert source is not None
        return PolicyText(source, language, None)
    got = do_get(ctx, GetArgs(name=name, revision=revision))
    meta = got.get("meta") or {}
    if got.get("source") is None or meta.get("kind") not in ("dsl", "c"):
        return error(
            "not_found",
            f"'{name}' has no source to {what} (a catalogue entry?)",
            f"{what} a policy that was submitted with its source",
        )
    return PolicyText(str(got["source"]), meta["kind"], {"name": name, "commit": got["commit"]})


def do_verify(ctx: Context, a: VerifyArgs) -> dict[str, Any]:
    found = policy_text(ctx, a.source, a.language, a.name, a.revision)
    if not isinstance(found, PolicyText):
        return found
    source, language, origin = found.source, found.language, found.origin
    settings = ctx.settings.with_overrides(params=a.set) if a.set else ctx.settings
    with staged(source, language) as path:  # verify scans C before clang sees it
        results = verify_policies(
            [path],
            settings,
            run_seconds=a.run_seconds,
            workload=a.workload,
            progress=ctx.progress,
        )
        result = results[0]
        result.diagnostics = relocate(result.diagnostics, path)
        result.policy = path.name
        payload = result.to_json()
        payload["summary"] = _verify_summary(payload)
        payload["source_key"] = source_key(language, source)
        if origin:
            payload["from_repository"] = origin
        return payload


def _verify_summary(payload: dict[str, Any]) -> str:
    if not payload["ok"]:
        return f"stopped at the {payload['stage']} stage"
    insns = sum(p["insns_processed"] or 0 for p in payload["programs"])
    text = f"the kernel verifier accepted {len(payload['programs'])} programs ({insns} insns)"
    run = payload.get("run")
    if run:
        text += f"; ran {run['seconds']:g}s under '{run['workload']}' and stayed enabled"
    return text


def scenario_file(name: str) -> str:
    """The file name a scenario given as text goes by in diagnostics."""
    return f"{name}.scenario.toml"


def _scenario_problem(exc: ScenarioError) -> dict[str, Any]:
    payload = _diagnostics(exc.diagnostics)
    payload["stage"] = "scenario"
    return payload


def do_test(ctx: Context, a: TestArgs) -> dict[str, Any]:
    found = policy_text(ctx, a.source, a.language, a.name, a.revision, what="test")
    if not isinstance(found, PolicyText):
        return found
    try:
        scenario = read_scenario(a.scenario, scenario_file(a.scenario_name))
    except ScenarioError as exc:  # before anything is compiled or booted
        return _scenario_problem(exc)
    check_sandboxes(ctx.settings)  # every kernel of the matrix, before compiling
    settings = ctx.settings.with_overrides(params=a.set) if a.set else ctx.settings
    with built(ctx, found, settings) as (path, compiled, failed):
        if failed is not None:
            return failed
        content_hash = "sha256:" + hashlib.sha256(found.source.encode("utf-8")).hexdigest()
        reports, diags = run_scenarios(
            a.name or "policy",
            path.name,
            compiled.policies[0].object_path,
            [scenario],
            ctx.settings,
            content_hash,
            runs=a.runs,
            counters=compiled.policies[0].counters,
            progress=ctx.progress,
        )
    # One report per kernel of the matrix, in its order; "report" is the first kernel's.
    payload = {
        "ok": all(r.ok for r in reports),
        "stage": "test",
        "summary": "; ".join(evidence_summary(r) for r in reports),
        "report": behaviour_json(reports[0]),
        "reports": [behaviour_json(r) for r in reports],
        "set": dict(compiled.policies[0].params_set),  # --set values it was built with
        "diagnostics": [d.to_json() for d in diags],
        "source_key": source_key(found.language, found.source),
        "scenario_hash": reports[0].scenario_hash,
        # The stored forms, for the runner to keep for submit_policy (they are not sent on).
        "evidence": [r.model_dump(mode="json") for r in reports],
    }
    if found.origin:
        payload["from_repository"] = found.origin
    return payload


def do_explain(ctx: Context, a: ExplainArgs) -> dict[str, Any]:
    found = policy_text(ctx, a.source, "dsl", a.name, a.revision, what="explain")
    if not isinstance(found, PolicyText):
        return found
    if found.language != "dsl":
        return error(
            "invalid_request",
            f"'{a.name}' is a BPF C policy: only a DSL policy has class conditions to explain",
            None,
        )
    translated = translate(Source(Path(layout.DSL_SOURCE), found.source))
    if translated.policy is None or translated.c_text is None or has_errors(translated.diagnostics):
        payload = _diagnostics(translated.diagnostics)
        payload["stage"] = "translate"
        return payload
    policy = translated.policy
    hosts = [_host_task(t) for t in a.tasks]
    classes = classify(policy, translated.c_text, load_toolchain(ctx.settings), hosts)
    lines = found.source.splitlines()
    reads = sorted("task." + ".".join(attr) for attr in policy.attrs)
    answers = []
    for given, cls in zip(a.tasks, classes, strict=True):
        queue = cls.queue
        unset = [r for r in reads if _is_default(given, _ATTRIBUTE_FIELDS.get(r, r))]
        answers.append(
            {
                "task": given.model_dump(exclude_defaults=True),
                "class": cls.name,
                "line": cls.span.line,
                "statement": lines[cls.span.line - 1].strip()
                if 0 < cls.span.line <= len(lines)
                else "",
                "queue": queue.name if queue else None,
                "queue_order": queue.order if queue else None,
                "dispatch_position": policy.dispatch_order.index(queue) + 1
                if queue in policy.dispatch_order
                else None,
                "preempts": cls.preempts,
                "preempts_classes": [policy.classes[i].name for i in cls.preempt_targets],
                "cpus": None if cls.cpus_except else cls.cpus,
                "cpus_excluded": cls.cpus if cls.cpus_except else None,
                "queue_strict_start": queue.strict_start if queue else None,
                "defaults_used": unset,
            }
        )
    return {
        "ok": True,
        "policy": policy.name,
        "classes": [c.name for c in policy.classes],
        "reads": reads,
        "results": answers,
        "method": "the policy's generated schedc_classify(), compiled for this host and run "
        "on each task (no VM); defaults_used lists attributes the policy reads that kept "
        "their default value",
    }


_ATTRIBUTE_FIELDS = {
    "task.parent.comm": "parent_comm",
    "task.process.comm": "process_comm",
    "task.avg_runtime": "avg_runtime_ms",
    "task.since_ran": "since_ran_ms",
    "task.pinned": "nr_cpus_allowed",
}
_ATTRIBUTE_FIELDS |= {
    f"task.{n}": n
    for n in ("comm", "cgroup", "nice", "uid", "pid", "tgid", "kthread", "weight", "wakeup_rate")
}
_ATTRIBUTE_FIELDS["task.nr_cpus_allowed"] = "nr_cpus_allowed"

# The kernel's CFS weight of each nice value (-20..19), which sched_ext scales to 1..10000
# with 100 at nice 0.
_NICE_WEIGHT = (
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
    110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
)  # fmt: skip


def _is_default(task: TaskAttributes, field_name: str) -> bool:
    info = TaskAttributes.model_fields.get(field_name)
    return info is not None and getattr(task, field_name) == info.default


def _host_task(t: TaskAttributes) -> HostTask:
    weight = t.weight
    if weight is None:
        weight = max(1, min(10000, round(_NICE_WEIGHT[t.nice + 20] * 100 / 1024)))
    return HostTask(
        comm=t.comm,
        parent_comm=t.parent_comm,
        process_comm=t.process_comm,
        cgroup=tuple(p for p in t.cgroup.split("/") if p),
        kthread=t.kthread,
        nice=t.nice,
        uid=t.uid,
        pid=t.pid,
        tgid=t.tgid,
        weight=weight,
        nr_cpus_allowed=t.nr_cpus_allowed,
        avg_runtime_ns=round(t.avg_runtime_ms * 1e6),
        wakeup_rate=t.wakeup_rate,
        since_ran_ns=round(t.since_ran_ms * 1e6),
    )


def do_submit(ctx: Context, a: SubmitArgs) -> dict[str, Any]:
    scenarios: list[ScenarioInput] = []
    if a.scenario is not None:
        try:
            scenarios = [read_scenario(a.scenario, scenario_file(a.scenario_name))]
        except ScenarioError as exc:  # before anything is compiled, booted or committed
            payload = _scenario_problem(exc)
            payload["status"] = "rejected"
            return payload
    tested = (
        [BehaviourReport.model_validate(r) for r in ctx.prior_behaviour]
        if ctx.prior_behaviour and scenarios
        else []
    )
    store = ctx.store()
    options = AddOptions(
        name=a.name,
        tags=list(a.tags),
        workloads=list(a.workloads),
        description=a.description,
        parent=a.parent,
        agent=a.agent,
        verify=a.verify,
        unverified_reason="submitted with verify='never': compiled and checked only",
        scenarios=scenarios,
        runs=a.runs,
        tested=tested,
    )
    with staged(a.source, a.language) as path:  # add checks (and so scans C) before clang
        prior = ctx.prior_verification if a.verify != "never" else None
        verified = _verify_result(prior) if prior else None
        result = add_policy(store, path, ctx.settings, options, ctx.progress, verified)
        result.diagnostics = relocate(result.diagnostics, path)
        payload = result.to_json()
        payload["verification_reused"] = verified is not None and result.status != "rejected"
        payload["behaviour_reused"] = bool(tested) and result.status != "rejected"
        payload["source"] = path.name
        payload["summary"] = summary_line(result.diagnostics) or "no errors, no warnings"
        return payload


def source_key(language: str, source: str) -> str:
    """What identifies a verified source: its language and its text."""
    return language + ":" + hashlib.sha256(source.encode("utf-8")).hexdigest()


def _programs(items: Any) -> list[ProgramReport]:
    return [
        ProgramReport(
            str(p["name"]),
            p["insns_processed"],
            p["states"],
            p["verification_time_us"],
            p.get("peak_states"),
        )
        for p in items or []
    ]


def _run_report(data: Any) -> RunReport | None:
    """A run test as verify_policy answered it (its JSON) back as a RunReport."""
    if not isinstance(data, dict):
        return None
    crashed = data.get("crashed")
    return RunReport(
        seconds=float(data["seconds"]),
        workload=str(data["workload"]),
        attached=bool(data["attached"]),
        attach_error=data.get("attach_error"),
        enabled_throughout=bool(data["enabled_throughout"]),
        samples=int(data.get("samples") or 0),
        ops=data.get("ops"),
        exit_reason=data.get("exit_reason"),
        exit_message=data.get("exit_message"),
        kernel_log="",
        crashed=None
        if crashed is None
        else [
            ProcessExit(int(c["pid"]), str(c["comm"]), str(c["signal"]), str(c["how"]))
            for c in crashed
        ],
        phases=_phases(data.get("phases")),
    )


def _phases(data: Any) -> dict[str, float] | None:
    if not isinstance(data, dict):
        return None
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def _verify_result(payload: dict[str, Any]) -> VerifyResult:
    """A verify_policy answer back as the VerifyResult that the repository records: every
    kernel's verdict, with its run test when verify_policy had one."""
    return VerifyResult(
        policy=str(payload.get("policy")),
        ok=bool(payload.get("ok")),
        stage=str(payload.get("stage")),
        programs=_programs(payload.get("programs")),
        run=_run_report(payload.get("run")),
        kernels=[
            KernelVerdict(
                kernel=str(k["kernel"]),
                ok=bool(k["ok"]),
                programs=_programs(k.get("programs")),
                run=_run_report(k.get("run")),
                error=k.get("error"),
            )
            for k in payload.get("kernels") or []
        ],
    )


def do_record(ctx: Context, a: RecordArgs) -> dict[str, Any]:
    given = a.model_dump(exclude={"name", "agent"})
    result = record_performance(ctx.store(), a.name, [given], agent=a.agent)
    return result.to_json()


def _stored_as(ctx: Context, content_hash: str, name: str | None) -> tuple[str | None, str]:
    """The repository policy whose current version has this very source (by name, when one
    was given), or None and why the figures cannot be stored under one."""
    entries = [e for e in load_entries(ctx.store()) if e.meta is not None]
    for entry in entries:
        if entry.meta is not None and entry.meta.content_hash == content_hash:
            if name is None or entry.name == name:
                return entry.name, ""
    if name is not None:
        return None, (
            f"the source benched is not the current version of '{name}' (an older revision?): "
            "a record measures the version it is stored under"
        )
    return None, (
        "this source is not in the repository: submit_policy it first, then bench_policy "
        "with its name"
    )


def do_bench(ctx: Context, a: BenchArgs) -> dict[str, Any]:
    found = policy_text(ctx, a.source, a.language, a.name, a.revision, what="bench")
    if not isinstance(found, PolicyText):
        return found
    settings = ctx.settings.with_overrides(params=a.set) if a.set else ctx.settings
    check_environment(settings, [a.workload])  # before compiling: the sandbox and the tools
    with built(ctx, found, settings) as (path, compiled, failed):
        if failed is not None:
            return failed
        params = WorkloadParams(duration=a.seconds, scale=a.scale, cpus=settings.vm_cpus)
        [result] = bench_objects(
            compiled.policies,
            [a.workload],
            settings,
            runs=a.runs,
            warmup=a.warmup,
            params=params,
            progress=ctx.progress,
        )
    data = result.to_json()
    policy = data["policy"]
    assert isinstance(policy, dict)
    policy.update(source=path.name, name=a.name or compiled.policies[0].name)
    comparison = result.comparison
    content_hash = "sha256:" + hashlib.sha256(found.source.encode("utf-8")).hexdigest()
    stored, why_not = _stored_as(ctx, content_hash, a.name)
    record: dict[str, Any] = {"stored": False, "reason": why_not}
    if stored is not None and not result.policy_values:
        record = {"stored": False, "reason": "the policy completed no run: nothing to record"}
    elif stored is not None:
        given = record_input(data)
        if a.set:
            given["tunables"] = dict(compiled.policies[0].params_set)
        profile = RecordProfile.of(a.profile) if a.profile is not None else None
        made = record_performance(
            ctx.store(), stored, with_profile([given], profile), agent=a.agent or "bench_policy"
        )
        kept = made.records[0]
        record = {
            "stored": True,
            "name": stored,
            "id": kept.id,
            "commit": made.commit,
            "emulated": kept.emulated,
            "profile": kept.profile is not None,
        }
    env = data["environment"]
    assert isinstance(env, dict)
    emulated = " (emulated timings, TCG: compare the ratio, not the times)" * bool(
        env.get("emulated")
    )
    return {
        "ok": result.ok,
        "stage": "bench",
        "summary": f"{a.workload} on {env.get('kernel')}{emulated}: {comparison.statement}",
        **data,
        "record": record,
    }


def do_reference(_ctx: Context, _a: ReferenceArgs) -> dict[str, Any]:
    from schedc.agent.reference import dsl_reference, examples  # noqa: PLC0415

    return {
        "ok": True,
        "reference": dsl_reference(),
        "examples": [
            {"name": e.name, "uri": e.uri, "description": e.description} for e in examples()
        ],
    }


def do_profile(ctx: Context, a: ProfileArgs) -> dict[str, Any]:
    """A profile of a workload the server allows (schedc.agent.profiling), sampled here."""
    try:
        target = ctx.profile_allow.target(
            pid=a.pid, cgroup=a.cgroup, command=a.command, everything=a.all
        )
    except NotAllowed as exc:
        return error("not_allowed", exc.message, exc.hint)
    if not PROFILING.acquire(blocking=False):
        return error(
            "busy",
            "another profile_workload call is sampling",
            "profiles are taken one at a time (they would measure each other): call again "
            "when it has finished",
        )
    try:
        return _profile(ctx, a, target)
    finally:
        PROFILING.release()


def _profile(ctx: Context, a: ProfileArgs, target: Target) -> dict[str, Any]:
    from schedc.profile.sample import ProfileError, collect, profile_command, resolve_cgroup

    try:
        return _sampled(ctx, a, target, collect, profile_command, resolve_cgroup)
    except ProfileError as exc:  # the process is gone, the cgroup has no schedstat, ...
        return error("invalid_request", str(exc), None)


def _sampled(
    ctx: Context,
    a: ProfileArgs,
    target: Target,
    collect: Any,
    profile_command: Any,
    resolve_cgroup: Any,
) -> dict[str, Any]:
    if target.mode == "cgroup" and target.cgroup is not None:
        _folder, path = resolve_cgroup(target.cgroup)  # the folder -> the path tasks show
        target = Target(mode="cgroup", cgroup=path)
    ctx.progress(f"profiling {target.mode} for {a.seconds:g} s")
    exit_status = None
    if target.mode == "command":
        profile, exit_status = profile_command(
            target.command,
            seconds=a.seconds,
            interval_ms=a.interval_ms,
            progress=ctx.progress,
            stop=ctx.cancel,
        )
    else:
        profile = collect(
            target,
            seconds=a.seconds,
            interval_ms=a.interval_ms,
            progress=ctx.progress,
            stop=ctx.cancel,
        )
    groups = ", ".join(
        f"{g.name} ({'/'.join(c.label for c in g.classification) or 'unclassified'})"
        for g in profile.groups[:8]
    )
    payload: dict[str, Any] = {
        "ok": True,
        "summary": f"{len(profile.groups)} task groups in {profile.seconds:g} s: {groups or '-'}",
        "profile": profile.model_dump(mode="json"),
    }
    if exit_status is not None:
        payload["command_exit_status"] = exit_status
    if a.scenario:
        from schedc.profile.scenario import ProfileScenarioError, scenario_from_profile

        try:
            payload["scenario"] = scenario_from_profile(profile)
        except ProfileScenarioError as exc:  # nothing ran: nothing to reproduce
            payload["scenario"] = None
            payload["scenario_problem"] = str(exc)
    if a.draft:
        from schedc.profile.draft import draft_policy

        payload["draft"] = draft_policy(profile)
    return payload


def error(kind: str, message: str, hint: str | None = None) -> dict[str, Any]:
    return {"ok": False, "error": {"kind": kind, "message": message, "hint": hint}}


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "search_policies",
            "Search the policy repository. Results are ranked, say which words matched in "
            "which field (why.fields), and carry each policy's best measured result (best).",
            SearchArgs,
            do_search,
            read_only=True,
        ),
        Operation(
            "get_policy",
            "One policy from the repository: source, metadata, verification report, "
            "performance records and a history summary. revision: a git revision or vN.",
            GetArgs,
            do_get,
            read_only=True,
        ),
        Operation(
            "compile_policy",
            "Compile a policy (DSL or BPF C) with clang -target bpf. Returns diagnostics as "
            "`schedc compile --format json` does (severity, code, message, file, line, column, "
            "hint); emit_c returns the generated C of a DSL policy.",
            CompileArgs,
            do_compile,
            isolated=True,
            read_only=True,
        ),
        Operation(
            "check_policy",
            "Static checks (libclang): sched_ext API misuse, missing NULL checks, unbounded "
            "loops, kfuncs missing on the target kernel, unsafe includes. DSL policies are "
            "checked through their generated C, with findings on DSL lines.",
            CheckArgs,
            do_check,
            isolated=True,
            read_only=True,
        ),
        Operation(
            "verify_policy",
            "Compile, check and load a policy into the kernel verifier of a sched_ext kernel "
            "(the sandbox VM); run_seconds also attaches it under a workload. A rejection is "
            "mapped to the policy's source line with a hint. Slow: tens of seconds.",
            VerifyArgs,
            do_verify,
            isolated=True,
            slow=True,
        ),
        Operation(
            "submit_policy",
            "Add a policy to the repository as one commit, with its lineage (parent). It is "
            "compiled, checked and (verify='auto') verified first; a policy with errors is "
            "rejected with its diagnostics. One call does all of compile, check and verify. "
            "With scenario, its behaviour report is stored too (reused from test_policy in "
            "this session); a failing one is stored marked failed, and ok is false.",
            SubmitArgs,
            do_submit,
            isolated=True,
            slow=True,
        ),
        Operation(
            "test_policy",
            "Test what a policy does: run a scenario (TOML text: named task groups with "
            "behaviours, and expectations such as placement, order, share, wait, completion, "
            "starvation, slice) in the sandbox VM under the kernel's default scheduler and "
            "under the policy, and report each expectation's measured value beside the "
            "baseline's, and the policy's counters. With a kernel matrix every kernel is "
            "tested: `reports` has one report per kernel (`report` is the first kernel's) and "
            "`ok` is true only when all passed. A failed expectation is an error diagnostic at "
            "its scenario line. submit_policy with the same source and scenario stores these "
            "reports. Slow: a VM boot per kernel.",
            TestArgs,
            do_test,
            isolated=True,
            slow=True,
        ),
        Operation(
            "explain_classification",
            "Which class (and so which queue, dispatch position and slice rule) a DSL policy "
            "puts each given task in: comm, parent_comm, process_comm, cgroup, nice, uid, kthread, "
            "avg_runtime_ms, wakeup_rate, since_ran_ms. The policy's compiled class "
            "conditions are run on the host: quick, no VM.",
            ExplainArgs,
            do_explain,
            isolated=True,
            read_only=True,
        ),
        Operation(
            "profile_workload",
            "Profile a real workload on the server's machine (per-thread CPU time, runtime "
            "per run, wake-ups, run-queue delay from /proc) into task groups with a "
            "classification and its evidence: batch, interactive, latency-critical, "
            "io-bound. Only what the server was started to allow (a pid, a cgroup, a named "
            "command, or all); scenario/draft also return a test_policy scenario of the same "
            "shape and a first DSL draft to edit.",
            ProfileArgs,
            do_profile,
        ),
        Operation(
            "record_result",
            "Append a measured result (values against a baseline scheduler) to a policy in "
            "the repository.",
            RecordArgs,
            do_record,
        ),
        Operation(
            "bench_policy",
            "Measure a policy against the kernel's default scheduler (EEVDF) on a built-in "
            "workload in the sandbox VM: per run the baseline, then the policy (interleaved), "
            "with each side's values, medians, the ratio and its bootstrap interval. The "
            "result is stored as a performance record of the repository policy with this "
            "very source (emulated: true under TCG, with profile when given), so no figure "
            "has to be typed into record_result. Slow: a VM boot and runs x 2 runs.",
            BenchArgs,
            do_bench,
            isolated=True,
            slow=True,
        ),
        Operation(
            "dsl_reference",
            "The schedc policy language in brief: grammar, types, task attributes, limits, a "
            "template and the checklist of common mistakes, plus the example policies.",
            ReferenceArgs,
            do_reference,
            read_only=True,
        ),
    )
}
