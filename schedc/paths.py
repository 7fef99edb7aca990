"""Whether a path lies in one of some folders: the one comparison behind the sandbox's view of
diagnostics (`compiler/toolchain.confine`), the security rules' #include check
(`verifier/rules/security.include_findings`) and the repository's look for git processes
working in it (`repo/gitstore.GitStore.git_processes`). Imports nothing of schedc, so every
layer may use it."""

from __future__ import annotations

import os
from collections.abc import Iterable

StrPath = str | os.PathLike[str]


def within(path: StrPath, roots: Iterable[StrPath], *, resolve: bool) -> bool:
    """True when `path` is one of `roots` or lies below one of them. A root is a whole folder
    name: /a/bc is not within /a/b, and a trailing separator on either side changes nothing.

    `resolve`: both sides are first resolved (os.path.realpath: symbolic links followed, so a
    link inside a root that points outside it is outside); otherwise both are only made
    absolute and normalised (os.path.abspath: `..` and doubled separators folded): the name as
    given, which is what a sandbox that binds folders by their names shows."""
    normal = os.path.realpath if resolve else os.path.abspath
    here = normal(path)
    for root in roots:
        top = normal(root)
        if here == top or here.startswith(top.rstrip(os.sep) + os.sep):
            return True
    return False
