"""The git side of the repository: locating it, a lock, commit-or-nothing changes, and reads
from any revision.

Every write goes through `GitStore.apply`: under an exclusive lock (fcntl.flock on a file
inside .git, so it is never committed), a plan reads HEAD and says which files to write; they
are written, staged and committed together. Any failure puts the touched paths back to HEAD —
index and worktree — so the repository is either one commit further or exactly as it was.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import git

from schedc.repo import layout

LOCK_TIMEOUT_S = 300.0


class RepoError(Exception):
    """An operation that cannot be done. `exit_code` 1 for a refused operation (conflict,
    invalid entry), 2 for usage or environment (no repository, no remote)."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def default_location() -> Path:
    """SCHEDC_REPO, else the XDG data directory."""
    explicit = os.environ.get("SCHEDC_REPO")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "schedc" / "policies"


def resolve_location(option: str | Path | None) -> Path:
    return Path(option).expanduser() if option else default_location()


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def env(self) -> dict[str, str]:
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


@dataclass
class Change:
    """What a plan wants committed: files to write (path → text) and the commit message."""

    files: dict[str, str]
    message: str
    remove: list[str] = field(default_factory=list)


class GitStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        if not (root / ".git").exists():
            raise RepoError(
                f"no policy repository at {root}",
                f"create one with `schedc repo init --repo {root}` (or clone a shared one with "
                f"`schedc repo init --from URL --repo {root}`)",
                exit_code=2,
            )
        try:
            self.repo = git.Repo(root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise RepoError(f"{root} is not a git repository: {exc}", exit_code=2) from exc
        # Paths are names, never patterns: `show '*'` must not match every policy.
        self.repo.git.update_environment(GIT_LITERAL_PATHSPECS="1")
        if not (root / layout.MARKER).is_file():
            raise RepoError(
                f"{root} is a git repository but not a schedc policy repository "
                f"(no {layout.MARKER})",
                "point --repo or SCHEDC_REPO at a policy repository, or run `schedc repo init` "
                "on an empty folder",
                exit_code=2,
            )

    # -- reading ------------------------------------------------------------------------------
    def head(self) -> str | None:
        """HEAD's commit, from the refs alone (no object lookup: search calls it every time)."""
        try:
            return git.SymbolicReference.dereference_recursive(self.repo, "HEAD")
        except ValueError:
            return None

    def commit(self, rev: str = "HEAD") -> git.Commit:
        try:
            return self.repo.commit(rev)
        except (git.BadName, ValueError) as exc:
            raise RepoError(f"unknown revision '{rev}'", exit_code=1) from exc

    def read(self, path: str, rev: str = "HEAD") -> bytes | None:
        try:
            obj = self.commit(rev).tree[path]
        except KeyError:
            return None
        if obj.type != "blob":
            return None
        return obj.data_stream.read()

    def listdir(self, path: str, rev: str = "HEAD") -> list[tuple[str, str]]:
        """(name, 'blob' | 'tree') of the entries of a folder at `rev`; [] when missing."""
        try:
            tree = self.commit(rev).tree[path]
        except KeyError:
            return []
        if tree.type != "tree":
            return []
        return [(obj.name, obj.type) for obj in tree]

    def read_many(self, rev: str, paths: Sequence[str] | None = None) -> dict[str, bytes]:
        """Every blob under policies/ at `rev` (or just `paths`), in two git processes:
        fast enough to index ten thousand policies."""
        listing = self._git_out(
            ["ls-tree", "-r", "-z", "--full-tree", rev, "--", *(paths or [layout.POLICIES])]
        )
        shas: list[tuple[str, str]] = []
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, path = entry.partition(b"\t")
            _mode, kind, sha = meta.split()
            if kind == b"blob":
                shas.append((sha.decode(), path.decode("utf-8", "replace")))
        if not shas:
            return {}
        data = self._git_out(
            ["cat-file", "--batch"], stdin="".join(f"{sha}\n" for sha, _ in shas).encode()
        )
        out: dict[str, bytes] = {}
        pos = 0
        for _sha, path in shas:
            end = data.index(b"\n", pos)
            size = int(data[pos:end].split()[2])
            out[path] = data[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1
        return out

    def changed_paths(self, old: str, new: str) -> list[str]:
        text = self._git_out(["diff", "--name-only", "-z", "--no-renames", old, new, "--"])
        return [p.decode("utf-8", "replace") for p in text.split(b"\0") if p]

    def has_commit(self, sha: str) -> bool:
        try:
            self.repo.commit(sha)
            return True
        except (git.BadName, ValueError):
            return False

    def _git_out(self, args: list[str], stdin: bytes | None = None) -> bytes:
        proc = subprocess.run(
            ["git", "-C", str(self.root), "--literal-pathspecs", *args],
            input=stdin,
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RepoError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout

    # -- identity ---------------------------------------------------------------------------
    def identity(self, author: str | None = None) -> Identity:
        reader = self.repo.config_reader()
        user = getpass.getuser()
        name = author or reader.get_value("user", "name", default="") or user
        email = reader.get_value("user", "email", default="") or f"{user}@{socket.gethostname()}"
        return Identity(str(name), str(email))

    # -- writing ------------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes; waits up to LOCK_TIMEOUT_S for the holder to finish."""
        path = Path(self.repo.git_dir) / layout.LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RepoError(
                            f"the repository {self.root} stayed locked for {LOCK_TIMEOUT_S:g}s",
                            "another schedc is writing to it; try again when it has finished",
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def dirty(self, scope: Sequence[str]) -> list[str]:
        out = self.repo.git.status("--porcelain", "--untracked-files=all", "--", *scope)
        return [line[3:] for line in out.splitlines() if line.strip()]

    def apply(
        self,
        scope: Sequence[str],
        plan: Callable[[], Change | None],
        identity: Identity,
    ) -> str | None:
        """Under the lock, commit what `plan` returns (it may read HEAD: it runs after every
        earlier writer has finished). Returns the new commit, or None when there was nothing
        to do. On any failure the paths in `scope` are restored to HEAD and the error raised."""
        with self.lock():
            dirty = self.dirty(scope)
            if dirty:
                raise RepoError(
                    f"uncommitted changes in the repository: {', '.join(dirty[:5])}",
                    f"commit or discard them first (git -C {self.root} status)",
                )
            change = plan()
            if change is None:
                return None
            try:
                return self._commit(scope, change, identity)
            except BaseException:
                self.restore(scope)
                raise

    def _commit(self, scope: Sequence[str], change: Change, identity: Identity) -> str | None:
        for rel, text in change.files.items():
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        for rel in change.remove:
            (self.root / rel).unlink(missing_ok=True)
        g = self.repo.git
        g.add("-A", "--", *scope)
        staged = g.diff("--cached", "--name-only", "--", *scope)
        if not staged.strip():
            return None
        g.commit("-q", "-m", change.message, "--", *scope, env=identity.env())
        return self.repo.head.commit.hexsha

    def restore(self, scope: Sequence[str]) -> None:
        """Index and worktree of `scope` back to HEAD; files HEAD does not have are removed."""
        g = self.repo.git
        try:
            g.reset("-q", "HEAD", "--", *scope)
        except git.GitCommandError:
            pass
        tracked = [p for p in scope if self.read_kind(p) is not None]
        if tracked:
            g.checkout("HEAD", "--", *tracked)
        g.clean("-fdq", "--", *scope)

    def read_kind(self, path: str, rev: str = "HEAD") -> str | None:
        try:
            return str(self.commit(rev).tree[path].type)
        except KeyError:
            return None

    # -- creating ------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, files: Mapping[str, str], message: str) -> GitStore:
        if (root / ".git").exists():
            raise RepoError(f"{root} already holds a git repository", exit_code=2)
        if root.exists() and any(root.iterdir()):
            raise RepoError(
                f"{root} exists and is not empty",
                "choose an empty or new folder for the repository",
                exit_code=2,
            )
        root.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(root, initial_branch="main")
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        store = cls(root)
        repo.git.add("-A")
        repo.git.commit("-q", "-m", message, env=store.identity().env())
        return store

    @classmethod
    def clone(cls, url: str, root: Path) -> GitStore:
        if root.exists() and any(root.iterdir()):
            raise RepoError(f"{root} exists and is not empty", exit_code=2)
        try:
            repo = git.Repo.clone_from(url, root)
            if not repo.head.is_valid():
                _check_out_a_branch(repo)
        except git.GitCommandError as exc:
            raise RepoError(f"cannot clone {url}: {exc.stderr.strip()}", exit_code=2) from exc
        return cls(root)


def _check_out_a_branch(repo: git.Repo) -> None:
    """A bare remote made with `git init --bare` may name a default branch nobody pushed
    (master, while we push main): check out main, else the only branch there is."""
    branches = [r.remote_head for r in repo.remote().refs if r.remote_head != "HEAD"]
    if not branches:
        return  # an empty remote: the GitStore check says it is no policy repository
    branch = "main" if "main" in branches else sorted(branches)[0]
    repo.git.checkout("-q", "-b", branch, "--track", f"origin/{branch}")
