"""Where things live inside a policy repository (paths are POSIX, relative to its root).

schedc-repo.json                 marks the folder as a schedc repository (schema version)
README.md                        what the folder is, for someone browsing it on GitHub
policies/<name>/policy.sched     the source (or policy.bpf.c)
policies/<name>/meta.json        PolicyMeta
policies/<name>/generated.bpf.c  the C the compiler generated (DSL policies)
policies/<name>/verification.json
policies/<name>/perf/<id>.json   one PerformanceRecord per file: records from different
                                 machines never touch the same file, so they merge cleanly
"""

from __future__ import annotations

from pathlib import PurePosixPath

MARKER = "schedc-repo.json"
README = "README.md"
POLICIES = "policies"
META = "meta.json"
DSL_SOURCE = "policy.sched"
C_SOURCE = "policy.bpf.c"
GENERATED = "generated.bpf.c"
VERIFICATION = "verification.json"
PERF = "perf"
LOCK_FILE = "schedc.lock"  # inside .git: never committed, never in the worktree
KNOWN_FILES = frozenset({META, DSL_SOURCE, C_SOURCE, GENERATED, VERIFICATION})


def policy_dir(name: str) -> str:
    return f"{POLICIES}/{name}"


def policy_file(name: str, file: str) -> str:
    return f"{POLICIES}/{name}/{file}"


def record_file(name: str, record_id: str) -> str:
    return f"{POLICIES}/{name}/{PERF}/{record_id}.json"


def policy_of(path: str) -> str | None:
    """The policy a repository path belongs to: policies/<name>/... → name."""
    parts = PurePosixPath(path).parts
    if len(parts) >= 3 and parts[0] == POLICIES:
        return parts[1]
    return None


def entry_of(path: str) -> str | None:
    """Like policy_of, and also policies/<name> itself (a file or link where a policy folder
    belongs: the entry is broken, and readers must say so)."""
    parts = PurePosixPath(path).parts
    if len(parts) >= 2 and parts[0] == POLICIES:
        return parts[1]
    return None


def is_record(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return len(parts) == 4 and parts[0] == POLICIES and parts[2] == PERF
