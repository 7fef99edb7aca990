"""`repo record`: performance records, one file each under policies/<name>/perf/, one commit
per `record` call. A record is tied to the policy version (and source hash) it measured."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schedc.profile.model import ProfileFileError, read_profile
from schedc.repo import bounded, layout
from schedc.repo.bench_bridge import bench_inputs, policy_for, record_input
from schedc.repo.bounded import JSONBoundsError
from schedc.repo.entries import describe, load_entry
from schedc.repo.gitstore import Change, GitStore, RepoError, default_location
from schedc.repo.machine import host_kernel, machine
from schedc.repo.models import PerformanceRecord, RecordProfile, now, to_json_text
from schedc.settings import EnvironmentProblem

BENCH_FILE_LIMIT = 16 << 20  # a `schedc bench --format json` file with many runs fits

# Fields a caller may give; the rest (id, policy, version, hash, derived figures) are ours.
INPUT_FIELDS = frozenset(
    {
        "workload",
        "workload_description",
        "metric",
        "unit",
        "direction",
        "values",
        "baseline_values",
        "baseline_scheduler",
        "tunables",
        "kernel",
        "machine",
        "date",
        "notes",
        "profile",
        "emulated",
        "accelerator",
    }
)
PROFILE_HINT = (
    "give the file `schedc profile -o PROFILE.json` wrote (docs/profile.md), or leave "
    "out --profile"
)


@dataclass
class RecordResult:
    name: str
    commit: str | None
    records: list[PerformanceRecord]

    def to_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "name": self.name,
            "commit": self.commit,
            "records": [r.model_dump(mode="json") for r in self.records],
        }


def read_bench_file(path: Path, name: str | None = None) -> list[dict[str, Any]]:
    """A JSON file with one record, a list of them, {"records": [...]}, or the output of
    `schedc bench --format json` (for policy `name` when it measured several)."""
    try:
        with path.open("rb") as f:
            raw = f.read(BENCH_FILE_LIMIT + 1)
        data = bounded.loads(raw, limit=BENCH_FILE_LIMIT)
    except (OSError, JSONBoundsError) as exc:
        raise RepoError(f"cannot read {path}: {exc}", exit_code=2) from exc
    from_bench = bench_inputs(data, name)
    if from_bench is not None:
        return from_bench
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise RepoError(
            f"{path} holds no records",
            'give an object with "workload", "metric", "direction" and "values", '
            'a list of them, {"records": [...]}, or `schedc bench --format json` output',
            exit_code=2,
        )
    return data


def profile_option(path: Path) -> RecordProfile:
    """`--profile PROFILE.json`: what a record keeps of that profile, or a RepoError (exit 2)
    that names the file and what is wrong with it."""
    try:
        return RecordProfile.of(read_profile(path))
    except ProfileFileError as exc:
        raise RepoError(str(exc), PROFILE_HINT, exit_code=2) from exc
    except ValidationError as exc:  # a profile beyond what a record keeps
        raise RepoError(f"{path}: {describe(exc)}", PROFILE_HINT, exit_code=2) from exc


def with_profile(given: list[dict[str, Any]], profile: RecordProfile | None) -> list[dict]:
    """The records, each measured under `profile` (when given)."""
    if profile is None:
        return given
    data = profile.model_dump(mode="json")
    return [{**g, "profile": data} for g in given]


def _record_id() -> str:
    return f"{now():%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def build_record(name: str, given: dict[str, Any], author: str | None, agent: str | None) -> dict:
    unknown = sorted(set(given) - INPUT_FIELDS - {"policy"})
    if unknown:
        raise RepoError(
            f"unknown record field(s): {', '.join(unknown)}",
            f"known fields: {', '.join(sorted(INPUT_FIELDS))}",
            exit_code=2,
        )
    if given.get("policy") not in (None, name):
        raise RepoError(f"the record is for '{given['policy']}', not '{name}'", exit_code=2)
    data = {k: v for k, v in given.items() if k in INPUT_FIELDS and v is not None}
    data.setdefault("kernel", host_kernel())
    data.setdefault("machine", machine().model_dump())
    data.setdefault("date", now().isoformat())
    data.update(policy=name, id=_record_id(), author=author, agent=agent)
    return data


def record_performance(
    store: GitStore,
    name: str,
    given: list[dict[str, Any]],
    *,
    author: str | None = None,
    agent: str | None = None,
) -> RecordResult:
    drafts = [build_record(name, g, author, agent) for g in given]
    for draft in drafts:  # validate before taking the lock: a bad input never waits for it
        _validated(draft)
    made: list[PerformanceRecord] = []

    def plan() -> Change:
        entry = load_entry(store, name)
        if entry is None:
            raise RepoError(
                f"no policy named '{name}' in the repository",
                "add it first (schedc repo add) or check the name (schedc repo list)",
            )
        if entry.meta is None:
            raise RepoError(f"the entry '{name}' is broken; run `schedc repo fsck`")
        for draft in drafts:
            draft.update(policy_version=entry.meta.version, content_hash=entry.meta.content_hash)
            made.append(_validated(draft))
        files = {layout.record_file(name, r.id): to_json_text(r) for r in made}
        return Change(files, commit_message(name, made))

    commit = store.apply([layout.policy_dir(name)], plan, store.identity(author))
    return RecordResult(name, commit, made)


def _validated(draft: dict[str, Any]) -> PerformanceRecord:
    try:
        return PerformanceRecord.model_validate(draft)
    except ValidationError as exc:
        raise RepoError(f"invalid performance record: {describe(exc)}", exit_code=2) from exc


def summary(record: PerformanceRecord) -> str:
    unit = f" {record.unit}" if record.unit else ""
    text = f"{record.workload} {record.metric} {record.median:g}{unit} (n={record.n})"
    if record.improvement is not None:
        base = record.baseline_scheduler or "baseline"
        text += f", {record.improvement * 100:+.1f}% vs {base}"
    return text


def commit_message(name: str, records: list[PerformanceRecord]) -> str:
    head = summary(records[0]) + (f" and {len(records) - 1} more" if len(records) > 1 else "")
    trailers = ["Schedc-Action: record", f"Schedc-Policy: {name}"]
    trailers += [f"Schedc-Record: {r.id}" for r in records]
    trailers += sorted({f"Schedc-Workload: {r.workload}" for r in records})
    return f"record {name}: {head}\n\n" + "\n".join(trailers) + "\n"


def record_bench_result(
    policy_source: str, result: dict[str, Any], profile: RecordProfile | None = None
) -> str:
    """`schedc bench --record`: one result into the repository at SCHEDC_REPO (or the default
    location), measured under `profile` when given (`--profile`). Returns where it went.
    Problems are EnvironmentProblems, which bench reports."""
    try:
        store = GitStore(default_location())
        policy = result.get("policy") or {}
        name = policy_for(store, policy_source, policy.get("name"))
        given = with_profile([record_input(result)], profile)
        made = record_performance(store, name, given, agent="schedc bench")
    except RepoError as problem:
        raise EnvironmentProblem(problem.message, problem.hint or "see docs/repo.md") from problem
    record = made.records[0]
    commit = (made.commit or "")[:10]
    return f"{store.root}/{layout.record_file(name, record.id)} ({commit})"


def recording_problem(policy_sources: list[str]) -> str | None:
    """Why `schedc bench --record` could not file results for these policies (a policy that
    is not in the repository), or None; asked before compiling, so no boot is wasted."""
    try:
        store = GitStore(default_location())
        for source in policy_sources:
            policy_for(store, source, Path(source).name.split(".")[0])
    except RepoError as problem:
        return f"{problem.message}; {problem.hint}" if problem.hint else problem.message
    return None
