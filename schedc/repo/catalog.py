"""`repo init`: a new repository, optionally seeded with the project's example policies and
with catalogue entries for the well-known scx schedulers (schedc/repo/catalog.json, package
data), so that an agent can also pick and configure an existing scheduler."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from schedc import __version__
from schedc.project_files import examples_dir
from schedc.repo import layout
from schedc.repo.add import AddOptions, AddResult, add_policy
from schedc.repo.gitstore import Change, GitStore, RepoError, resolve_location
from schedc.repo.models import SCHEMA_VERSION, PolicyMeta, now, to_json_text
from schedc.settings import EnvironmentProblem, Settings

README_TEXT = """# schedc policy repository

Scheduling policies for Linux sched_ext, kept by [schedc](https://github.com/) (`schedc repo`).

- `policies/<name>/policy.sched` or `policy.bpf.c`: the policy source
- `policies/<name>/meta.json`: description, tags, tunables, lineage, verification summary
- `policies/<name>/generated.bpf.c`: the C schedc generated from a DSL policy
- `policies/<name>/verification.json`: what the checks and the kernel verifier said
- `policies/<name>/perf/*.json`: performance records, one per measurement

Entries without a source are catalogue entries for existing scx schedulers
(`meta.json` says how to run and configure them). Change this repository with
`schedc repo add` and `schedc repo record`, which validate before they commit.
"""

SEED_REASON = (
    "seeded from the project's examples: compiled and checked here; the project's tests load "
    "every example in the sandbox kernel"
)
GITATTRIBUTES = "*.json text eol=lf\n*.sched text eol=lf\n*.c text eol=lf\n*.md text eol=lf\n"


def project_examples() -> Path | None:
    """The example policies: a source checkout's examples/ folder, or the copy a wheel ships
    (schedc.project_files); None if neither is there."""
    return examples_dir()


def catalog_metas() -> list[PolicyMeta]:
    text = resources.files("schedc.repo").joinpath("catalog.json").read_text(encoding="utf-8")
    data = json.loads(text)
    stamp = now()
    return [
        PolicyMeta(kind="catalog", created=stamp, updated=stamp, **entry)
        for entry in data["entries"]
    ]


def init_repo(location: str | Path | None, clone_from: str | None = None) -> GitStore:
    root = resolve_location(location)
    if clone_from:
        return GitStore.clone(clone_from, root)
    marker = json.dumps({"schema_version": SCHEMA_VERSION, "created_by": f"schedc {__version__}"})
    files = {
        layout.MARKER: marker + "\n",
        layout.README: README_TEXT,
        ".gitattributes": GITATTRIBUTES,
    }
    return GitStore.create(root, files, "init: schedc policy repository\n\nSchedc-Action: init\n")


@dataclass
class SeedResult:
    catalog: list[str] = field(default_factory=list)
    catalog_commit: str | None = None
    examples: list[AddResult] = field(default_factory=list)
    skipped: str | None = None  # why the examples were not added

    def to_json(self) -> dict[str, object]:
        return {
            "catalog": self.catalog,
            "catalog_commit": self.catalog_commit,
            "examples": [r.to_json() for r in self.examples],
            "examples_skipped": self.skipped,
        }


def seed(
    store: GitStore,
    settings: Settings,
    examples: Path | None,
    progress: Callable[[str], None] | None = None,
) -> SeedResult:
    """The catalogue in one commit, then each example through `add` (compiled and checked;
    recorded unverified: the project's own tests load every example in the sandbox kernel)."""
    result = SeedResult()
    metas = catalog_metas()

    def plan() -> Change | None:
        # Entries already there (a clone of a seeded repository) are left as they are.
        new = [m for m in metas if store.read_kind(layout.policy_dir(m.name)) is None]
        if not new:
            return None
        files = {layout.policy_file(m.name, layout.META): to_json_text(m) for m in new}
        names = ", ".join(m.name for m in new)
        message = (
            f"seed: catalogue of {len(new)} scx schedulers\n\n{names}\n\nSchedc-Action: seed\n"
        )
        result.catalog = [m.name for m in new]
        return Change(files, message)

    scope = [layout.policy_dir(m.name) for m in metas]
    result.catalog_commit = store.apply(scope, plan, store.identity())
    if examples is None:
        result.skipped = "no examples folder (pass --examples DIR)"
        return result
    for path in sorted(examples.glob("*.sched")):
        if progress:
            progress(f"adding {path.name}")
        try:
            options = AddOptions(verify="never", unverified_reason=SEED_REASON)
            added = add_policy(store, path, settings, options, progress)
        except EnvironmentProblem as problem:
            result.skipped = f"{problem.message} (hint: {problem.remedy})"
            break
        result.examples.append(added)
    return result


def open_store(
    option: str | Path | None,
    settings: Settings,
    notice: Callable[[str], None] | None = None,
) -> GitStore:
    """The repository at --repo `option`, else the default location (SCHEDC_REPO, else the
    XDG data folder). The default one is created on first use — when that folder does not
    exist or is empty — seeded like `init --seed` (the catalogue, and the examples when this is
    a checkout with clang at hand), and `notice` says so. A --repo that is no repository stays
    an error: a mistyped path must not grow a repository."""
    root = resolve_location(option)
    try:
        return GitStore(root)
    except RepoError:
        if option or not _creatable(root):
            raise
    return create_default(root, settings, notice or (lambda _m: None))


def _creatable(root: Path) -> bool:
    if not os.path.lexists(root):
        return True
    return root.is_dir() and not any(root.iterdir())


def create_default(root: Path, settings: Settings, notice: Callable[[str], None]) -> GitStore:
    """Create and seed the repository at `root` in a scratch folder beside it, then rename it
    into place: a process killed while seeding leaves no half-made repository, and processes
    that start at once (two MCP servers) wait on one lock and find the finished one."""
    root.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(
        root.parent / f".{root.name}.schedc-create.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            return GitStore(root)  # made by another process while this one waited
        except RepoError:
            if not _creatable(root):
                raise
        for stale in root.parent.glob(f".{root.name}.new-*"):  # its maker was killed
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
        examples = project_examples()
        notice(
            f"no policy repository at {root} yet: creating it (first use), seeded with the "
            "scx scheduler catalogue"
            + (f" and the example policies of {examples}" if examples else "")
        )
        scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}.new-", dir=root.parent))
        try:
            result = seed(init_repo(scratch), settings, examples, notice)
            if root.exists():
                root.rmdir()  # empty (checked above, under the lock)
            os.rename(scratch, root)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        added = [r for r in result.examples if r.status == "added"]
        notice(
            f"created the policy repository {root}: {len(result.catalog)} catalogue entries, "
            f"{len(added)} example policies"
            + (f" (examples skipped: {result.skipped})" if result.skipped and examples else "")
        )
        return GitStore(root)
    finally:
        os.close(fd)
