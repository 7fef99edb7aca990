"""`repo add`: accept a policy into the repository as one commit.

The slow part (compile, check, verify) runs before the lock; the version number and the files
are decided under it, from HEAD as it is then, so two processes adding the same name get two
consecutive versions and neither is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter, ValidationError

from schedc import __version__
from schedc.diagnostics import Diagnostic, Severity
from schedc.repo import layout
from schedc.repo.entries import describe, load_entry, verification_of
from schedc.repo.evidence import ScenarioInput
from schedc.repo.gitstore import Change, GitStore, RepoError
from schedc.repo.ingest import Candidate, RunTest, VerifyMode, prepare
from schedc.repo.models import (
    BehaviourReport,
    Parent,
    PolicyMeta,
    PolicyName,
    Tag,
    WorkloadId,
    merge_behaviour,
    now,
    to_json_text,
)
from schedc.settings import Settings
from schedc.verifier.rules.kernel import DEFAULT_TARGET, KernelVersion
from schedc.verifier.verify import VerifyResult


@dataclass
class AddOptions:
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)
    description: str | None = None
    parent: str | None = None
    author: str | None = None
    agent: str | None = None
    verify: VerifyMode = "auto"
    unverified_reason: str = "skipped (--unverified): compiled and checked only"
    target_kernel: KernelVersion = DEFAULT_TARGET
    scenarios: list[ScenarioInput] = field(default_factory=list)  # behaviour tests to run
    runs: int = 1  # per side of each scenario
    # Reports of this very source made earlier in the caller's session (the agent runner's
    # test_policy): kept instead of running those scenarios again.
    tested: list[BehaviourReport] = field(default_factory=list)
    # `--run WORKLOAD`: attach in the sandbox under this load on every kernel and record it.
    run_test: RunTest | None = None


@dataclass
class AddResult:
    status: Literal["added", "unchanged", "rejected"]
    source: str
    diagnostics: list[Diagnostic]
    meta: PolicyMeta | None = None
    commit: str | None = None
    behaviour: list[BehaviourReport] = field(default_factory=list)  # this add's reports

    @property
    def behaviour_ok(self) -> bool | None:
        """None without reports; else whether every expectation of every report held."""
        return all(r.ok for r in self.behaviour) if self.behaviour else None

    @property
    def run_ok(self) -> bool | None:
        """None without a run test; else whether it held on every kernel."""
        verification = self.meta.verification if self.meta else None
        return verification.run_ok if verification else None

    @property
    def ok(self) -> bool:
        """Added (or unchanged), and no behaviour report or run test of this add failed."""
        return (
            self.status != "rejected"
            and self.behaviour_ok is not False
            and self.run_ok is not False
        )

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "status": self.status,
            "source": self.source,
            "name": self.meta.name if self.meta else None,
            "version": self.meta.version if self.meta else None,
            "commit": self.commit,
            "verification": self.meta.verification.model_dump(mode="json")
            if self.meta and self.meta.verification
            else None,
            "run_ok": self.run_ok,
            "behaviour_ok": self.behaviour_ok,
            "behaviour": [behaviour_json(r) for r in self.behaviour],
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


def behaviour_json(report: BehaviourReport, text: bool = False) -> dict[str, object]:
    """A report as results show it: per expectation kind, groups, expected, measured,
    baseline, ok (the scenario's text only when asked: `repo show` and `get_policy`)."""
    data = report.model_dump(mode="json", exclude={"scenario_text", "processes"})
    data["expectations"] = [
        {k: e[k] for k in ("kind", "groups", "expected", "measured", "baseline", "unit", "ok")}
        | ({"line": e["line"]} if e["line"] else {})
        | ({"detail": e["detail"]} if e["detail"] and not e["ok"] else {})
        for e in data["expectations"]
    ]
    data["failed_processes"] = report.processes.get("failed", [])
    if text:
        data["scenario_text"] = report.scenario_text
    return data


def add_policy(
    store: GitStore,
    path: Path,
    settings: Settings,
    options: AddOptions,
    progress: Callable[[str], None] | None = None,
    verified: VerifyResult | None = None,
) -> AddResult:
    """`verified`: a passing verification of this very source, already done (see prepare)."""
    _check_options(options)  # before compiling (or booting a VM) for nothing
    prepared = prepare(
        path,
        settings,
        name=options.name,
        verify=options.verify,
        target_kernel=options.target_kernel,
        progress=progress,
        unverified_reason=options.unverified_reason,
        verified=verified,
        scenarios=options.scenarios,
        runs=options.runs,
        tested=options.tested,
        run_test=options.run_test,
    )
    candidate = prepared.candidate
    if candidate is None:
        return AddResult("rejected", str(path), prepared.diagnostics)
    diags = list(prepared.diagnostics)
    if options.parent and store.read_kind(layout.policy_dir(options.parent.split("@")[0])) is None:
        diags.append(
            Diagnostic(
                Severity.WARNING,
                "R010",
                f"the parent '{options.parent}' is not in this repository",
                str(path),
                hint="lineage is recorded as given; add the parent too to keep it browsable",
            )
        )
    outcome: dict[str, PolicyMeta] = {}

    def plan() -> Change | None:
        previous = _previous(store, candidate.name)
        meta = _meta(candidate, options, previous)
        new_evidence = candidate.behaviour or options.run_test is not None
        if previous is not None and _same(previous, meta) and not new_evidence:
            outcome["unchanged"] = previous
            return None
        outcome["meta"] = meta
        kept = _earlier_behaviour(store, candidate.name, previous, candidate.content_hash)
        try:
            behaviour = merge_behaviour(kept, candidate.behaviour)
        except ValueError as exc:
            raise RepoError(str(exc), "add the policy under another --name", exit_code=1) from exc
        return _change(candidate, meta, previous, behaviour)

    scope = [layout.policy_dir(candidate.name)]
    commit = store.apply(scope, plan, store.identity(options.author))
    if "unchanged" in outcome:
        return AddResult("unchanged", str(path), diags, outcome["unchanged"])
    return AddResult("added", str(path), diags, outcome["meta"], commit, list(candidate.behaviour))


def _earlier_behaviour(
    store: GitStore, name: str, previous: PolicyMeta | None, content_hash: str
) -> list[BehaviourReport]:
    """The stored reports that still speak for the policy: those of this very source (a new
    source drops them: they were measured on other code). An unreadable report file keeps
    nothing (fsck reports it)."""
    if previous is None or previous.content_hash != content_hash:
        return []
    entry = load_entry(store, name)
    report, _problem = verification_of(entry) if entry is not None else (None, None)
    if report is None:
        return []
    return [r for r in report.behaviour if r.content_hash == content_hash]


def _check_options(options: AddOptions) -> None:
    checks: list[tuple[str, object, object]] = [
        ("--tag", TypeAdapter(list[Tag]), options.tags),
        ("--workload", TypeAdapter(list[WorkloadId]), options.workloads),
        ("--parent", TypeAdapter(Parent | None), options.parent),
        ("--name", TypeAdapter(PolicyName | None), options.name),
    ]
    for option, adapter, value in checks:
        try:
            adapter.validate_python(value)  # type: ignore[attr-defined]
        except ValidationError as exc:
            raise RepoError(f"{option}: {describe(exc)}", exit_code=2) from exc


def _previous(store: GitStore, name: str) -> PolicyMeta | None:
    entry = load_entry(store, name)
    if entry is None:
        return None
    if entry.meta is None:
        where, problem = next(
            ((p, w) for p, w in entry.problems if p.endswith(layout.META)),
            (layout.policy_file(name, layout.META), "unreadable"),
        )
        raise RepoError(
            f"the existing entry '{name}' is broken: {where}: {problem}",
            "repair it by hand or with git (schedc repo fsck lists every problem), "
            "or add this policy under another --name",
        )
    if entry.meta.kind == "catalog":
        raise RepoError(
            f"'{name}' is a catalogue entry for an existing scx scheduler",
            f"add your policy under its own --name, with --parent {name} to record the lineage",
        )
    return entry.meta


def _meta(candidate: Candidate, options: AddOptions, previous: PolicyMeta | None) -> PolicyMeta:
    stamp = now()
    try:
        return PolicyMeta(
            name=candidate.name,
            kind=candidate.kind,
            description=options.description or candidate.description,
            tags=list(dict.fromkeys([*candidate.tags, *options.tags])),
            workloads=list(dict.fromkeys(options.workloads)),
            author=options.author or (previous.author if previous else None),
            agent=options.agent,
            parent=options.parent,
            version=previous.version + 1 if previous else 1,
            source=candidate.source_file,  # type: ignore[arg-type]
            content_hash=candidate.content_hash,
            compiler_version=__version__,
            target_kernels=[candidate.verification.target_kernel],
            tunables=candidate.tunables,
            verification=candidate.verification.summary,
            created=previous.created if previous else stamp,
            updated=stamp,
        )
    except ValidationError as exc:
        raise RepoError(f"invalid metadata: {describe(exc)}", exit_code=2) from exc


def _same(previous: PolicyMeta, meta: PolicyMeta) -> bool:
    """A re-add of the same source with the same metadata changes nothing."""
    keys = ("content_hash", "description", "tags", "workloads", "parent", "target_kernels")
    return all(getattr(previous, k) == getattr(meta, k) for k in keys)


def _change(
    candidate: Candidate,
    meta: PolicyMeta,
    previous: PolicyMeta | None,
    behaviour: list[BehaviourReport],
) -> Change:
    name = meta.name
    verification = candidate.verification.model_copy(update={"behaviour": behaviour})
    files = {
        layout.policy_file(name, candidate.source_file): candidate.source_text,
        layout.policy_file(name, layout.META): to_json_text(meta),
        layout.policy_file(name, layout.VERIFICATION): to_json_text(verification),
    }
    remove = []
    if candidate.generated_c is not None:
        files[layout.policy_file(name, layout.GENERATED)] = candidate.generated_c
    elif previous is not None and previous.kind == "dsl":
        remove.append(layout.policy_file(name, layout.GENERATED))
    if previous is not None and previous.source and previous.source != candidate.source_file:
        remove.append(layout.policy_file(name, previous.source))
    return Change(files, commit_message(meta, candidate.behaviour), remove)


def commit_message(meta: PolicyMeta, behaviour: list[BehaviourReport] | None = None) -> str:
    """`add NAME vN: description`, then trailers that `log` reads back."""
    summary = meta.description.splitlines()[0] if meta.description else meta.kind
    verification = meta.verification
    trailers = [
        "Schedc-Action: add",
        f"Schedc-Policy: {meta.name}",
        f"Schedc-Version: {meta.version}",
        f"Schedc-Kind: {meta.kind}",
        f"Schedc-Content-Hash: {meta.content_hash}",
        f"Schedc-Verification: {verification.status if verification else 'none'}",
        f"Schedc-Compiler: {meta.compiler_version}",
    ]
    if verification:
        for kernel in [k.kernel for k in verification.kernels] or [verification.kernel]:
            if kernel:
                trailers.append(f"Schedc-Kernel: {kernel}")
        for k in verification.kernels:
            if k.run is not None:
                verdict = "passing" if k.run.ok else "failing"
                trailers.append(f"Schedc-Run: {k.run.workload} {verdict} on {k.kernel}")
    for report in behaviour or []:
        verdict = "passing" if report.ok else "failing"
        trailers.append(f"Schedc-Behaviour: {report.scenario} {verdict} on {report.kernel}")
    if meta.parent:
        trailers.append(f"Schedc-Parent: {meta.parent}")
    if meta.agent:
        trailers.append(f"Schedc-Agent: {meta.agent}")
    return f"add {meta.name} v{meta.version}: {summary[:72]}\n\n" + "\n".join(trailers) + "\n"
