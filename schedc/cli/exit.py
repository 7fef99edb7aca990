"""The exit statuses of every `schedc` command, in one place."""

from __future__ import annotations

from enum import IntEnum

from schedc.lifecycle import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED


class Exit(IntEnum):
    """What a `schedc` process returns. A signal N that stops it gives 128 + N (143 SIGTERM,
    129 SIGHUP), set by schedc.lifecycle.run_main, which also returns the last two."""

    OK = 0
    ERRORS = 1
    """The policy has errors; a run, a test or a check failed; the repository refused."""
    USAGE = 2
    """A usage or environment problem (no clang, no BTF, no sandbox kernel), with the remedy."""
    INTERRUPTED = EXIT_INTERRUPTED  # 130: Ctrl-C
    BROKEN_PIPE = EXIT_BROKEN_PIPE  # 141: the reader of stdout went away (`schedc … | head`)
