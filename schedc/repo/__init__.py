"""The git-backed policy repository: policies with validated metadata, verification reports and
performance records, versioned by git, searchable through an SQLite FTS5 index, shared through
any git remote. `schedc repo --help`; docs/repo.md.

The repository takes what the pipeline made (compiled, checked, verified policies, bench
results) from its callers — the CLI and the agent; nothing in dsl/, compiler/ or verifier/
imports it. `schedc bench --record` calls `schedc.repo.perf.record_bench_result`.
"""
