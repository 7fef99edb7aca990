"""Performance records from `schedc bench` results.

`schedc bench --format json` prints the JSON envelope (docs/json.md) whose `results` list
holds one object per (policy, workload, kernel), with the workload, metric, unit, direction,
the baseline's and the policy's run values and the environment of the run; `repo record
--from` reads that as it is, and the shapes of older schedc too (a lone result object, or
{"results": [...]}). `schedc bench --record`
hands each result to `schedc.repo.perf.record_bench_result(policy_source, result)`, which
files it under the policy in the repository (SCHEDC_REPO) whose source is that file. This
module only reads results; it imports nothing that writes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from schedc.repo.entries import load_entries
from schedc.repo.gitstore import GitStore, RepoError
from schedc.repo.machine import machine


def is_bench_result(data: object) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("policy"), dict)
        and isinstance(data.get("baseline"), dict)
    )


def record_input(result: dict[str, Any]) -> dict[str, Any]:
    """One bench result → the fields of a PerformanceRecord (see perf.INPUT_FIELDS)."""
    env = result.get("environment") or {}
    recipe = env.get("recipe") or {}
    baseline = result.get("baseline") or {}
    policy = result.get("policy") or {}
    host = machine()
    cores = env.get("vcpus") if isinstance(env.get("vcpus"), int) else host.cores
    notes = "; ".join(
        str(x) for x in (env.get("where"), env.get("accelerator"), env.get("timing_note")) if x
    )
    description = " — ".join(str(x) for x in (recipe.get("summary"), recipe.get("command")) if x)
    given: dict[str, Any] = {
        "workload": result.get("workload"),
        "workload_description": description,
        "metric": result.get("metric"),
        "unit": result.get("unit") or "",
        "direction": result.get("direction"),
        "values": policy.get("values"),
        "baseline_values": baseline.get("values") or [],
        "baseline_scheduler": baseline.get("scheduler"),
        "kernel": env.get("kernel"),
        "date": env.get("date"),
        "notes": notes,
        "emulated": env.get("emulated") if isinstance(env.get("emulated"), bool) else None,
        "accelerator": env.get("accelerator") if isinstance(env.get("accelerator"), str) else None,
    }
    if cores != host.cores:
        fingerprint = hashlib.sha256(f"{host.cpu_model}|{cores}".encode()).hexdigest()[:12]
        given["machine"] = {"cpu_model": host.cpu_model, "cores": cores, "fingerprint": fingerprint}
    return {k: v for k, v in given.items() if v is not None}


def bench_inputs(data: object, name: str | None = None) -> list[dict[str, Any]] | None:
    """The records in a bench JSON document (for policy `name` when it holds several
    policies); None when the document is not bench output."""
    results = data.get("results") if isinstance(data, dict) else None
    if is_bench_result(data):
        results = [data]
    if not isinstance(results, list) or not results or not all(map(is_bench_result, results)):
        return None
    names = {r["policy"].get("name") for r in results}
    if name is not None and len(names) > 1:
        results = [r for r in results if r["policy"].get("name") == name]
        if not results:
            raise RepoError(
                f"the bench results are for {', '.join(sorted(map(str, names)))}, not '{name}'",
                exit_code=2,
            )
    return [record_input(r) for r in results]


def policy_for(store: GitStore, source: str, bench_name: str | None) -> str:
    try:
        digest = "sha256:" + hashlib.sha256(Path(source).read_bytes()).hexdigest()
    except OSError:
        digest = None
    entries = [e for e in load_entries(store) if e.meta is not None]
    for entry in entries:
        if digest and entry.meta and entry.meta.content_hash == digest:
            return entry.name
    for entry in entries:
        if entry.name == bench_name:
            return entry.name
    raise RepoError(
        f"{source} is not in the policy repository at {store.root}",
        f"add it first (schedc repo add {source}), then record again with "
        "schedc repo record NAME --from BENCH.json",
    )
