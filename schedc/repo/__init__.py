"""The git-backed policy repository: policies with validated metadata, verification reports and
performance records, versioned by git, searchable through an SQLite FTS5 index, shared through
any git remote. `schedc repo --help`; docs/repo.md.

`record_performance(policy_source, bench_result)` is what `schedc bench --record` calls
(schedc.repo.bench_bridge.record_bench_result); it is imported on first use.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "record_performance":
        from schedc.repo.bench_bridge import record_bench_result  # noqa: PLC0415

        return record_bench_result
    raise AttributeError(f"module 'schedc.repo' has no attribute '{name}'")
