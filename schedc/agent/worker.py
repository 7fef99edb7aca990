"""One isolated operation: `python -m schedc.agent.worker` reads a request (JSON) on stdin,
writes the result (JSON) on stdout and progress lines (`progress: ...`) on stderr.

The parent (schedc.agent.runner) starts it in its own session and kills the whole group at
the time limit. Here, before any policy is touched: stdin is swapped for /dev/null, stdout is
kept for the answer alone (anything else printed goes to stderr), and compile and check workers
get an address-space limit.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from schedc.agent.operations import OPERATIONS
from schedc.agent.runner import Runner, run_guarded
from schedc.compiler.cage import limit_memory


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    return run_request(request)


def run_request(request: dict[str, Any]) -> int:
    """One request, its answer on fd 1 (and nothing else there): this process's whole job,
    started by main() or forked by the warm zygote (schedc.agent.zygote)."""
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints (ours, a library's, a child's) cannot corrupt the answer
    sys.stdout = sys.stderr
    limit_memory(request.get("memory_bytes"))
    op = OPERATIONS[request["op"]]
    repo = request.get("repo")
    runner = Runner(repo=Path(repo) if repo else None, overrides=request.get("overrides") or {})

    def progress(message: str) -> None:
        print(f"progress: {message}", file=sys.stderr, flush=True)

    args = op.args.model_validate(request["arguments"])
    ctx = runner.context(progress)
    ctx.prior_verification = request.get("prior_verification")
    ctx.prior_behaviour = request.get("prior_behaviour")
    result = run_guarded(op, args, ctx)
    answer.write(json.dumps(result, default=str))
    answer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
