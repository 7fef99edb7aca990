"""What an agent may profile: the allow-list a server is started with, and its judgement of one
`profile_workload` request.

An MCP client is not trusted with the machine it runs on. A server started with no
`--allow-profile-*` option profiles nothing; with options it profiles only

- `--allow-profile-pid PID`: that process (its threads and its descendants);
- `--allow-profile-cgroup PATH`: that cgroup v2 folder and the cgroups below it (the path is
  resolved, so `..` and symlinks cannot reach a sibling);
- `--allow-profile-command NAME=COMMAND`: the command the *operator* wrote, started by the
  server when a client asks for NAME. A client names a command; it never sends a command line;
- `--allow-profile-all`: every task on the machine (needs root).
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path

from schedc.profile.model import Target

CGROUP_ROOT = Path("/sys/fs/cgroup")
_COMMAND_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# One profile at a time per server: two would measure each other (and start an allowed
# command twice).
PROFILING = threading.Lock()


class NotAllowed(Exception):
    """A request outside the allow-list (message, hint)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


START_HINT = (
    "start the server with --allow-profile-pid PID, --allow-profile-cgroup PATH, "
    "--allow-profile-command NAME=COMMAND or --allow-profile-all (see docs/agent.md)"
)


@dataclass(frozen=True)
class ProfileAllow:
    pids: frozenset[int] = frozenset()
    cgroups: tuple[Path, ...] = ()  # resolved folders
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    everything: bool = False
    cgroup_root: Path = CGROUP_ROOT

    def empty(self) -> bool:
        return not (self.pids or self.cgroups or self.commands or self.everything)

    def describe(self) -> str:
        parts = [f"pid {p}" for p in sorted(self.pids)]
        parts += [f"cgroup {c}" for c in self.cgroups]
        parts += [f"command {n}" for n in sorted(self.commands)]
        if self.everything:
            parts.append("all tasks")
        return ", ".join(parts) or "nothing"

    def target(
        self, *, pid: int | None, cgroup: str | None, command: str | None, everything: bool
    ) -> Target:
        """The Target for one request, or NotAllowed."""
        if self.empty():
            raise NotAllowed("this server was not started with permission to profile", START_HINT)
        if pid is not None:
            if pid not in self.pids:
                raise NotAllowed(
                    f"pid {pid} is not one this server may profile",
                    f"this server may profile: {self.describe()}",
                )
            return Target(mode="pids", pids=[pid])
        if cgroup is not None:
            return Target(mode="cgroup", cgroup=str(self._cgroup(cgroup)))
        if command is not None:
            if command not in self.commands:
                raise NotAllowed(
                    f"'{command[:32]}' is not a command this server may start",
                    f"this server may profile: {self.describe()}",
                )
            return Target(mode="command", command=list(self.commands[command]))
        if everything:
            if not self.everything:
                raise NotAllowed(
                    "this server may not profile every task",
                    f"this server may profile: {self.describe()}",
                )
            return Target(mode="all")
        raise ValueError("give one of pid, cgroup, command and all")

    def _cgroup(self, given: str) -> Path:
        """An allowed cgroup folder for a client's path: absolute, or relative to the cgroup
        root; resolved before it is judged."""
        path = Path(given)
        if not path.is_absolute():
            path = self.cgroup_root / path
        elif not path.is_relative_to(self.cgroup_root):  # "/app.slice" as the cgroup names it
            path = self.cgroup_root / path.relative_to("/")
        real = Path(os.path.realpath(path))
        for allowed in self.cgroups:
            if real == allowed or real.is_relative_to(allowed):
                if not real.is_dir():
                    raise NotAllowed(f"cgroup {given[:200]} does not exist", "check the path")
                return real
        raise NotAllowed(
            f"cgroup {given[:200]} is not one this server may profile",
            f"this server may profile: {self.describe()}",
        )


def parse_allow(
    pids: list[int],
    cgroups: list[str],
    commands: list[str],
    everything: bool,
    cgroup_root: Path = CGROUP_ROOT,
) -> ProfileAllow:
    """The allow-list from the server's options; ValueError names the bad option."""
    for pid in pids:
        if pid < 1:
            raise ValueError(f"--allow-profile-pid {pid}: a process id is a positive number")
    folders = []
    for c in cgroups:
        path = Path(c)
        if not path.is_absolute():
            path = cgroup_root / path
        real = Path(os.path.realpath(path))
        if not real.is_dir():
            raise ValueError(f"--allow-profile-cgroup {c}: no such cgroup folder ({real})")
        folders.append(real)
    named: dict[str, tuple[str, ...]] = {}
    for spec in commands:
        name, sep, line = spec.partition("=")
        if not sep or not _COMMAND_NAME.fullmatch(name):
            raise ValueError(
                f"--allow-profile-command {spec!r}: write NAME=COMMAND, NAME being "
                "lowercase letters, digits, '_' or '-' (e.g. build='make -j4')"
            )
        try:
            argv = tuple(shlex.split(line))
        except ValueError as exc:
            raise ValueError(f"--allow-profile-command {name}: {exc}") from None
        if not argv:
            raise ValueError(f"--allow-profile-command {name}: the command is empty")
        if name in named:
            raise ValueError(f"--allow-profile-command {name} is given twice")
        named[name] = argv
    if everything and os.geteuid() != 0:
        raise ValueError("--allow-profile-all needs root (other users' tasks cannot be read)")
    return ProfileAllow(frozenset(pids), tuple(folders), named, everything, cgroup_root)
