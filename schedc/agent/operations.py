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
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schedc.compiler.pipeline import Source, check_file, compile_policy, translate, verify_policies
from schedc.diagnostics import Diagnostic, has_errors, summary_line
from schedc.dsl.language import NAME_RE
from schedc.repo import ingest, layout
from schedc.repo.add import AddOptions, add_policy
from schedc.repo.catalog import open_store
from schedc.repo.gitstore import GitStore
from schedc.repo.history import policy_log, show_json, show_policy
from schedc.repo.index import Query, SearchIndex, index_path
from schedc.repo.models import Parent, PolicyName, Tag, WorkloadId
from schedc.repo.perf import record_performance
from schedc.settings import Settings
from schedc.verifier.checks import kernel_targets
from schedc.verifier.rules.kernel import DEFAULT_TARGET, parse_kernel_version
from schedc.verifier.sandbox import DEFAULT_WORKLOAD, WORKLOADS, ProgramReport
from schedc.verifier.verify import VerifyResult

MAX_SOURCE_CHARS = 256 * 1024  # the DSL's own file limit (E007)
MAX_VALUES = 1000
MAX_RUN_SECONDS = 60.0

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
    workload: Literal[tuple(sorted(WORKLOADS))] = Field(  # type: ignore[valid-type]
        DEFAULT_WORKLOAD, description="load used with run_seconds"
    )

    @model_validator(mode="after")
    def _one_policy(self) -> VerifyArgs:
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


class ReferenceArgs(Args):
    pass


@dataclass
class Context:
    """What every operation runs against: the repository, the settings and a progress sink."""

    repo: Path | None
    settings: Settings
    progress: Progress = field(default=lambda _m: None)
    # A passing verify_policy result for the very source being submitted (the runner keeps
    # them per session): submit_policy records it instead of booting the kernel again.
    prior_verification: dict[str, Any] | None = None

    def store(self) -> GitStore:
        """The repository; the default one is created and seeded on first use (said on
        stderr and as progress)."""
        return open_store(self.repo, self.settings, self._notice)

    def _notice(self, message: str) -> None:
        print(f"schedc: {message}", file=sys.stderr, flush=True)
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
        payload = index.search(Query(a.query, list(a.tags), a.workload, a.kernel, a.limit))
    finally:
        index.close()
    payload.pop("index", None)  # cache bookkeeping, of no use to an agent
    return payload


def do_get(ctx: Context, a: GetArgs) -> dict[str, Any]:
    store = ctx.store()
    spec = f"{a.name}@{a.revision}" if a.revision else a.name
    entry, sha = show_policy(store, spec)
    payload = show_json(entry, sha)
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


def do_verify(ctx: Context, a: VerifyArgs) -> dict[str, Any]:
    source, language, origin = a.source, a.language, None
    if a.name is not None:
        got = do_get(ctx, GetArgs(name=a.name, revision=a.revision))
        meta = got.get("meta") or {}
        if got.get("source") is None or meta.get("kind") not in ("dsl", "c"):
            return error(
                "not_found",
                f"'{a.name}' has no source to verify (a catalogue entry?)",
                "verify a policy that was submitted with its source",
            )
        source, language = str(got["source"]), meta["kind"]
        origin = {"name": a.name, "commit": got["commit"]}
    assert source is not None
    with staged(source, language) as path:  # verify scans C before clang sees it
        results = verify_policies(
            [path],
            ctx.settings,
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


def do_submit(ctx: Context, a: SubmitArgs) -> dict[str, Any]:
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
    )
    with staged(a.source, a.language) as path:  # add checks (and so scans C) before clang
        prior = ctx.prior_verification if a.verify != "never" else None
        verified = _verify_result(prior) if prior else None
        result = add_policy(store, path, ctx.settings, options, ctx.progress, verified)
        result.diagnostics = relocate(result.diagnostics, path)
        payload = result.to_json()
        payload["verification_reused"] = verified is not None and result.status != "rejected"
        payload["source"] = path.name
        payload["summary"] = summary_line(result.diagnostics) or "no errors, no warnings"
        return payload


def source_key(language: str, source: str) -> str:
    """What identifies a verified source: its language and its text."""
    return language + ":" + hashlib.sha256(source.encode("utf-8")).hexdigest()


def _verify_result(payload: dict[str, Any]) -> VerifyResult:
    """A verify_policy answer back as the VerifyResult that the repository records."""
    return VerifyResult(
        policy=str(payload.get("policy")),
        ok=bool(payload.get("ok")),
        stage=str(payload.get("stage")),
        programs=[
            ProgramReport(
                str(p["name"]), p["insns_processed"], p["states"], p["verification_time_us"]
            )
            for p in payload.get("programs") or []
        ],
    )


def do_record(ctx: Context, a: RecordArgs) -> dict[str, Any]:
    given = a.model_dump(exclude={"name", "agent"})
    result = record_performance(ctx.store(), a.name, [given], agent=a.agent)
    return result.to_json()


def do_reference(_ctx: Context, _a: ReferenceArgs) -> dict[str, Any]:
    from schedc.agent.reference import dsl_reference, examples  # noqa: PLC0415

    return {
        "ok": True,
        "reference": dsl_reference(),
        "examples": [
            {"name": e.name, "uri": e.uri, "description": e.description} for e in examples()
        ],
    }


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
            "rejected with its diagnostics. One call does all of compile, check and verify.",
            SubmitArgs,
            do_submit,
            isolated=True,
            slow=True,
        ),
        Operation(
            "record_result",
            "Append a measured result (values against a baseline scheduler) to a policy in "
            "the repository.",
            RecordArgs,
            do_record,
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
