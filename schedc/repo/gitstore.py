"""The git side of the repository: locating it, a lock, commit-or-nothing changes, and reads
from any revision.

Every write goes through `GitStore.apply`: under an exclusive lock (fcntl.flock on a file
inside .git, so it is never committed), a plan reads HEAD and says which files to write; they
are written, staged and committed together. Any failure puts the touched paths back to HEAD —
index and worktree — so the repository is either one commit further or exactly as it was.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import git

from schedc.paths import within
from schedc.repo import layout
from schedc.settings import crash_point, default_repo_location

LOCK_TIMEOUT_S = 300.0
SYMLINK_MODE = 0o120000
MAX_BLOB_BYTES = 4 << 20  # a file larger than this in a policy folder is not read
# Written before a change touches the worktree, removed once it is committed or undone: found
# by the next writer (under the lock, so its writer is gone), it names what to roll back.
JOURNAL = "schedc-pending.json"
# Lock files git leaves behind when it is killed: found while holding the repository lock and
# with no git process at work in the repository, they are stale.
GIT_LOCKS = ("index.lock", "HEAD.lock", "packed-refs.lock", "config.lock")
FRESH_LOCK_S = 1.0  # a git lock file younger than this may belong to a git just starting


class RepoError(Exception):
    """An operation that cannot be done. `exit_code` 1 for a refused operation (conflict,
    invalid entry), 2 for usage or environment (no repository, no remote)."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def default_location() -> Path:
    """SCHEDC_REPO, else the XDG data directory (settings.default_repo_location)."""
    return default_repo_location()


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


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: int
    kind: str  # blob | tree | commit
    sha: str
    size: int


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
        # Readers (git status) take no optional index lock, so a lock file found by a writer
        # holding the repository lock is never a reader's.
        self.repo.git.update_environment(GIT_LITERAL_PATHSPECS="1", GIT_OPTIONAL_LOCKS="0")
        self.notices: list[str] = []  # what recovery did, for the caller to tell
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
        """A regular file's data at `rev`; None when missing, a folder or a symbolic link."""
        try:
            obj = self.commit(rev).tree[path]
        except KeyError:
            return None
        if obj.type != "blob" or obj.mode == SYMLINK_MODE or obj.size > MAX_BLOB_BYTES:
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

    def tree_entries(self, rev: str, paths: Sequence[str] | None = None) -> list[TreeEntry]:
        """Every file at `rev` under `paths` (default: the whole tree), with mode and size."""
        listing = self._git_out(
            ["ls-tree", "-r", "-z", "-l", "--full-tree", rev, "--", *(paths or [])]
        )
        out = []
        for item in listing.split(b"\0"):
            if not item:
                continue
            meta, _, path = item.partition(b"\t")
            mode, kind, sha, size = meta.split()
            out.append(
                TreeEntry(
                    path.decode("utf-8", "replace"),
                    int(mode, 8),
                    kind.decode(),
                    sha.decode(),
                    int(size) if size.isdigit() else 0,
                )
            )
        return out

    def symlinks(self, rev: str = "HEAD", paths: Sequence[str] | None = None) -> list[str]:
        """Paths at `rev` that are symbolic links (git mode 120000): the repository refuses
        them, since writing through one writes outside the repository."""
        return [e.path for e in self.tree_entries(rev, paths) if e.mode == SYMLINK_MODE]

    def read_many(
        self,
        rev: str,
        paths: Sequence[str] | None = None,
        refused: dict[str, str] | None = None,
    ) -> dict[str, bytes]:
        """Every regular file under policies/ at `rev` (or just `paths`), in two git
        processes: fast enough to index ten thousand policies. Symbolic links and files over
        MAX_BLOB_BYTES are not read; they go into `refused` (path → why) when it is given."""
        wanted: list[TreeEntry] = []
        for entry in self.tree_entries(rev, paths or [layout.POLICIES]):
            if entry.kind != "blob":
                continue
            why = None
            if entry.mode == SYMLINK_MODE:
                why = "a symbolic link: refused (the repository holds regular files only)"
            elif entry.size > MAX_BLOB_BYTES:
                why = f"{entry.size} bytes: larger than the limit of {MAX_BLOB_BYTES} bytes"
            if why is None:
                wanted.append(entry)
            elif refused is not None:
                refused[entry.path] = why
        if not wanted:
            return {}
        data = self._git_out(
            ["cat-file", "--batch"], stdin="".join(f"{e.sha}\n" for e in wanted).encode()
        )
        out: dict[str, bytes] = {}
        pos = 0
        for entry in wanted:
            end = data.index(b"\n", pos)
            size = int(data[pos:end].split()[2])
            out[entry.path] = data[end + 1 : end + 1 + size]
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
            env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"),
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
    @property
    def git_dir(self) -> Path:
        return Path(self.repo.git_dir)

    def _lock_fd(self) -> int:
        return os.open(
            self.git_dir / layout.LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes; waits up to LOCK_TIMEOUT_S for the holder to finish.
        Once it holds the lock it first recovers from a writer that was killed (`recover`)."""
        fd = self._lock_fd()
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
            with git_errors():
                self.recover()
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextmanager
    def lock_if_free(self) -> Iterator[bool]:
        """The lock if nobody holds it (True), else nothing (False): for fsck, which must not
        call a live writer's files stale."""
        fd = self._lock_fd()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
            yield held
        finally:
            os.close(fd)

    # -- crash recovery ----------------------------------------------------------------------
    def stale_git_locks(self) -> list[str]:
        """Lock files of git's (relative to .git) that exist and are at least FRESH_LOCK_S old
        (a younger one is waited for: a git that has just started may not be visible yet).
        Holding the repository lock, with no git process at work in the repository, they were
        left by a killed git."""
        found = self._git_lock_files()
        ages = []
        for rel in found:
            try:
                ages.append(time.time() - os.lstat(self.git_dir / rel).st_mtime)
            except FileNotFoundError:
                pass
        if ages and min(ages) < FRESH_LOCK_S:
            time.sleep(max(0.0, FRESH_LOCK_S - min(ages)))
            found = self._git_lock_files()
        return found

    def _git_lock_files(self) -> list[str]:
        found = [name for name in GIT_LOCKS if os.path.lexists(self.git_dir / name)]
        for folder, _dirs, files in os.walk(self.git_dir / "refs"):
            found += [
                os.path.relpath(os.path.join(folder, f), self.git_dir)
                for f in files
                if f.endswith(".lock")
            ]
        return sorted(found)

    def git_processes(self) -> list[int]:
        """Live git processes (of this user: others' are not readable) whose working folder
        is inside the repository. git changes to the top of the worktree before it works."""
        roots = {os.path.realpath(self.root), os.path.realpath(self.git_dir)}
        found = []
        try:
            pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
        except OSError:
            return []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                    if not f.read().startswith("git"):
                        continue
                with open(f"/proc/{pid}/stat", "rb") as f:
                    parent = int(f.read().rpartition(b")")[2].split()[1])
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except (OSError, ValueError, IndexError):
                continue  # gone, a zombie, or another user's
            if parent == os.getpid() or b"cat-file" in argv:
                continue  # gitpython's object readers (ours or a reader's): they lock nothing
            if within(cwd, roots, resolve=True):
                found.append(int(pid))
        return found

    def pending(self) -> list[str] | None:
        """The scope of a change whose writer has not finished (or was killed), if any."""
        path = self.git_dir / JOURNAL
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            scope = json.loads(raw)["scope"]
            if not isinstance(scope, list) or not all(_scope_ok(p) for p in scope):
                raise ValueError("bad scope")
        except (ValueError, KeyError, TypeError):
            return [layout.POLICIES]  # unreadable: only schedc writes it, and only policies/
        return [str(p) for p in scope]

    def recover(self) -> list[str]:
        """Call holding the lock: undo what a killed writer left. Removes git's stale lock
        files (none may exist while a git process works in the repository: then this refuses)
        and puts the scope of an unfinished change back to HEAD. That scope was clean when the
        change began (writes refuse to start otherwise), so no one's work is lost. Returns
        what it did (also appended to `notices`)."""
        done: list[str] = []
        stale = self.stale_git_locks()
        if stale:
            busy = self.git_processes()
            if busy:
                raise RepoError(
                    f"git is at work in {self.root} (pid {', '.join(map(str, busy))}) and holds "
                    f".git/{stale[0]}",
                    "let it finish (or end it), then try again",
                )
            for rel in stale:
                (self.git_dir / rel).unlink(missing_ok=True)
                done.append(f"removed .git/{rel}, left by a git process that was killed")
        scope = self.pending()
        if scope is not None:
            if (self.git_dir / "MERGE_HEAD").exists():
                try:
                    self.repo.git.merge("--abort")
                except git.GitCommandError:
                    pass
            self.restore(scope)
            (self.git_dir / JOURNAL).unlink(missing_ok=True)
            done.append(
                f"rolled back an interrupted change to {', '.join(scope)} (its writer was "
                "killed before it committed): back to HEAD"
            )
        self.notices += done
        return done

    def _begin(self, scope: Sequence[str], action: str) -> None:
        data = {"action": action, "scope": list(scope), "pid": os.getpid(), "started": time.time()}
        tmp = self.git_dir / f"{JOURNAL}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.git_dir / JOURNAL)

    def _end(self) -> None:
        (self.git_dir / JOURNAL).unlink(missing_ok=True)

    @contextmanager
    def journal(self, scope: Sequence[str], action: str) -> Iterator[None]:
        """Around a change to the worktree: if it fails, `scope` goes back to HEAD; if the
        process is killed, the next writer (or `fsck --repair`) does that."""
        self._begin(scope, action)
        try:
            yield
        except BaseException:
            self.restore(scope)  # if this fails too, the journal stays: the next writer retries
            self._end()
            raise
        self._end()

    # -- symbolic links ----------------------------------------------------------------------
    def worktree_links(self, scope: Sequence[str] = (".",)) -> list[str]:
        """Symbolic links in the worktree at or under `scope` (or on the way to it)."""
        found: list[str] = []
        for rel in scope:
            parts = [p for p in PurePosixPath(rel).parts if p != "."]
            here = self.root
            complete = True
            for i, part in enumerate(parts):
                here = here / part
                try:
                    mode = os.lstat(here).st_mode
                except (FileNotFoundError, NotADirectoryError):
                    complete = False
                    break
                if stat.S_ISLNK(mode):
                    found.append("/".join(parts[: i + 1]))
                    complete = False
                    break
            if not complete or not here.is_dir():
                continue
            for folder, dirs, files in os.walk(here):
                if Path(folder) == self.root and ".git" in dirs:
                    dirs.remove(".git")
                for name in dirs + files:
                    full = os.path.join(folder, name)
                    if os.path.islink(full):
                        found.append(os.path.relpath(full, self.root))
        return sorted(set(found))

    def refuse_links(self, scope: Sequence[str], rev: str | None = "HEAD") -> None:
        """RepoError when `scope` holds a symbolic link, committed at `rev` or in the worktree:
        writing through one writes outside the repository (git mode 120000 is never valid
        here)."""
        links = self.worktree_links(scope)
        if rev is not None and self.head() is not None:
            links += self.symlinks(rev, [p for p in scope if p != "."])
            links += [p for p in _prefixes(scope) if self.read_mode(p, rev) == SYMLINK_MODE]
        if links:
            links = sorted(set(links))
            raise RepoError(
                f"refusing to write: {', '.join(links[:5])} "
                f"{'is a symbolic link' if len(links) == 1 else 'are symbolic links'}",
                "the policy repository holds regular files only; a link could point anywhere "
                f"(git -C {self.root} rm LINK, then commit; `schedc repo fsck` lists them)",
            )

    def read_mode(self, path: str, rev: str = "HEAD") -> int | None:
        try:
            return int(self.commit(rev).tree[path].mode)
        except KeyError:
            return None

    # -- files, without following links ------------------------------------------------------
    def _open_dir(self, parts: Sequence[str], create: bool) -> int:
        """A descriptor of root/parts..., opened one component at a time with O_NOFOLLOW (and
        made with mkdirat when `create`): a symbolic link anywhere on the way is refused."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        fd = os.open(self.root, flags)
        try:
            for i, part in enumerate(parts):
                where = "/".join(parts[: i + 1])
                try:
                    nxt = os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    what = (
                        "a symbolic link"
                        if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode)
                        else "not a folder"
                    )
                    raise RepoError(
                        f"refusing to write under {where}: it is {what}",
                        "the policy repository holds regular files only; `schedc repo fsck` "
                        "lists what is wrong",
                    ) from None
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def write_file(self, rel: str, text: str) -> None:
        """root/rel := text, never through a symbolic link: the folders are walked with
        O_NOFOLLOW, the data goes to a new file that then replaces the old one (a rename
        replaces a link or hard link itself, never what it points to)."""
        parts = _parts(rel)
        fd = self._open_dir(parts[:-1], create=True)
        try:
            name = parts[-1]
            try:
                mode: int | None = os.lstat(name, dir_fd=fd).st_mode
            except FileNotFoundError:
                mode = None
            if mode is not None and not stat.S_ISREG(mode):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                raise RepoError(
                    f"refusing to write {rel}: it is {what}",
                    "the policy repository holds regular files only; `schedc repo fsck` lists "
                    "what is wrong",
                )
            tmp = f".{name}.schedc-{os.getpid()}.tmp"
            try:
                os.unlink(tmp, dir_fd=fd)
            except FileNotFoundError:
                pass
            out = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=fd,
            )
            try:
                with os.fdopen(out, "wb") as f:
                    f.write(text.encode("utf-8"))
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=fd)
                except FileNotFoundError:
                    pass
                raise
        finally:
            os.close(fd)

    def remove_file(self, rel: str) -> None:
        """Unlink root/rel if it exists (unlink removes a link itself, never its target)."""
        parts = _parts(rel)
        try:
            fd = self._open_dir(parts[:-1], create=False)
        except FileNotFoundError:
            return
        try:
            os.unlink(parts[-1], dir_fd=fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)

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
        to do. On any failure the paths in `scope` are restored to HEAD and the error raised;
        if the process is killed, the next writer restores them (see `recover`)."""
        with self.lock(), git_errors():
            self.refuse_links(scope)
            dirty = self.dirty(scope)
            if dirty:
                raise RepoError(
                    f"uncommitted changes in the repository: {', '.join(dirty[:5])}",
                    f"commit or discard them first (git -C {self.root} status)",
                )
            change = plan()
            if change is None:
                return None
            outside = [p for p in [*change.files, *change.remove] if not _within(p, scope)]
            if outside:
                raise RepoError(f"a change outside its scope: {', '.join(outside)}")
            with self.journal(scope, "apply"):
                return self._commit(scope, change, identity)

    def _commit(self, scope: Sequence[str], change: Change, identity: Identity) -> str | None:
        for rel, text in change.files.items():
            self.write_file(rel, text)
            _crash_point("write")  # one file written, maybe more to come
        for rel in change.remove:
            self.remove_file(rel)
        g = self.repo.git
        g.add("-A", "--", *scope)
        staged = g.diff("--cached", "--name-only", "--", *scope)
        if not staged.strip():
            return None
        _crash_point("staged")
        g.commit("-q", "-m", change.message, "--", *scope, env=identity.env())
        _crash_point("committed")
        return self.repo.head.commit.hexsha

    def restore(self, scope: Sequence[str]) -> None:
        """Index and worktree of `scope` back to HEAD; files HEAD does not have are removed."""
        g = self.repo.git
        try:
            g.reset("-q", "HEAD", "--", *scope)
        except git.GitCommandError:
            pass
        tracked = [p for p in scope if p == "." or self.read_kind(p) is not None]
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
        """A clone of `url`, refused (and removed again) when its tree holds symbolic links:
        they are looked for before anything is checked out."""
        existed = root.exists()
        if existed and any(root.iterdir()):
            raise RepoError(f"{root} exists and is not empty", exit_code=2)
        try:
            repo = git.Repo.clone_from(url, root, no_checkout=True)
            rev = "HEAD" if repo.head.is_valid() else _remote_branch(repo)
            links = _symlinks_at(repo, rev) if rev else []
            if links:
                repo.close()
                shutil.rmtree(root) if not existed else _empty(root)
                raise RepoError(
                    f"refusing to clone {url}: {', '.join(links[:5])} "
                    f"{'is a symbolic link' if len(links) == 1 else 'are symbolic links'}",
                    "a policy repository holds regular files only; a link could point anywhere "
                    "outside it. Remove the links in the shared repository first",
                )
            if repo.head.is_valid():
                repo.git.reset("-q", "--hard", "HEAD")
            else:
                _check_out_a_branch(repo)
        except git.GitCommandError as exc:
            raise RepoError(f"cannot clone {url}: {exc.stderr.strip()}", exit_code=2) from exc
        return cls(root)


@contextmanager
def git_errors() -> Iterator[None]:
    """A failing git command becomes a RepoError with git's own words, never a traceback."""
    try:
        yield
    except git.GitCommandError as exc:
        verb = exc.command[1] if isinstance(exc.command, list) and len(exc.command) > 1 else "git"
        said = (exc.stderr or exc.stdout or "").strip().removeprefix("stderr: ").strip("'\n ")
        raise RepoError(
            f"git {verb} failed: {said or exc}",
            "`schedc repo fsck` says what is wrong; `schedc repo fsck --repair` undoes what an "
            "interrupted schedc left",
        ) from None


def _parts(rel: str) -> list[str]:
    parts = list(PurePosixPath(rel).parts)
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise RepoError(f"not a path inside the repository: {rel!r}")
    return parts


def _scope_ok(path: object) -> bool:
    if not isinstance(path, str):
        return False
    if path == ".":
        return True
    try:
        _parts(path)
    except RepoError:
        return False
    return True


def _within(path: str, scope: Sequence[str]) -> bool:
    return any(s == "." or path == s or path.startswith(s.rstrip("/") + "/") for s in scope)


def _prefixes(scope: Sequence[str]) -> list[str]:
    """The folders on the way to each scope path, and the path itself."""
    out: set[str] = set()
    for rel in scope:
        parts = [p for p in PurePosixPath(rel).parts if p != "."]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(out)


def _crash_point(where: str) -> None:
    """Tests kill a writer here (SCHEDC_TEST_KILL_AT=write|staged|committed) to prove
    the next writer and `fsck --repair` recover; unset, nothing happens."""
    if crash_point() == where:
        os.kill(os.getpid(), signal.SIGKILL)


def _symlinks_at(repo: git.Repo, rev: str) -> list[str]:
    out = repo.git.ls_tree("-r", "-z", "--full-tree", rev)
    links = []
    for item in out.split("\0"):
        meta, _, path = item.partition("\t")
        if meta.split(" ")[0] == "120000":
            links.append(path)
    return links


def _remote_branch(repo: git.Repo) -> str | None:
    branches = [r.remote_head for r in repo.remote().refs if r.remote_head != "HEAD"]
    if not branches:
        return None
    return f"origin/{'main' if 'main' in branches else sorted(branches)[0]}"


def _empty(root: Path) -> None:
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _check_out_a_branch(repo: git.Repo) -> None:
    """A bare remote made with `git init --bare` may name a default branch nobody pushed
    (master, while we push main): check out main, else the only branch there is."""
    branches = [r.remote_head for r in repo.remote().refs if r.remote_head != "HEAD"]
    if not branches:
        return  # an empty remote: the GitStore check says it is no policy repository
    branch = "main" if "main" in branches else sorted(branches)[0]
    repo.git.checkout("-q", "-b", branch, "--track", f"origin/{branch}")
