"""One libclang analysis: `python -m schedc.verifier.rules.worker` reads a request (JSON) on
stdin and writes its findings (JSON) on stdout.

schedc.verifier.checks.analyse starts it inside the sandbox (schedc.compiler.cage), so the
parse of untrusted C sees no host file but the toolchain and the include folders; a crash of
libclang costs this process, and the parent reports it as a finding.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints (ours, libclang's) cannot corrupt the answer
    sys.stdout = sys.stderr
    from schedc.verifier.checks import analyse_here  # noqa: PLC0415 (after the fds are set)

    result = analyse_here(request)
    answer.write(json.dumps(result))
    answer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
