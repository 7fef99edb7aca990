"""`repo add` with real clang and libclang: a policy is compiled and checked before it is
committed, versions stack up on one path, history is walked through gitpython, and a failure
leaves the repository exactly as it was."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from schedc.repo import ingest, layout
from schedc.repo.gitstore import GitStore
from schedc.settings import kernel_release
from schedc.verifier.sandbox import sandbox_problem
from tests import test_repo_support as support
from tests.conftest import ROOT, skip_or_fail
from tests.test_repo_support import (
    DATA,
    cli,
    commit_count,
    git,
    is_clean,
)

repo_env = support.repo_env
store = support.store  # fixtures

EXAMPLES = ROOT / "examples"


@pytest.fixture
def tools(toolchain, settings):
    """Add needs clang and the BTF (the `toolchain` fixture skips or fails without them)."""
    return toolchain


def add(*args: str):
    return cli("add", *args, "--unverified")


def test_add_commits_source_meta_generated_c_and_report(tools, store: GitStore):
    before = commit_count(store.root)
    ran = cli(
        "add",
        str(EXAMPLES / "tunables_counters.sched"),
        "--unverified",
        "--format",
        "json",
        "--agent",
        "test-agent",
        "--tag",
        "demo",
        "--workload",
        "mixed",
    )
    assert ran.code == 0, ran.err
    assert ran.json()["ok"] is True and ran.json()["command"] == "repo add"
    out = ran.result()
    assert out["status"] == "added" and out["name"] == "tunables" and out["version"] == 1
    assert out["verification"]["status"] == "unverified"
    assert commit_count(store.root) == before + 1 and is_clean(store.root)
    folder = store.root / "policies" / "tunables"
    assert sorted(p.name for p in folder.iterdir()) == [
        "generated.bpf.c",
        "meta.json",
        "policy.sched",
        "verification.json",
    ]
    assert (
        folder.joinpath("policy.sched").read_bytes()
        == (EXAMPLES / "tunables_counters.sched").read_bytes()
    )
    generated = folder.joinpath("generated.bpf.c").read_text()
    assert re.search(r'^#line \d+ "policy\.sched"$', generated, re.M)  # not the scratch path
    assert "schedc-repo-" not in generated
    meta = json.loads(folder.joinpath("meta.json").read_text())
    assert meta["kind"] == "dsl" and meta["agent"] == "test-agent"
    assert meta["tags"] == ["tunable", "observability", "general", "demo"]
    assert meta["workloads"] == ["mixed"] and meta["target_kernels"] == ["6.12"]
    assert meta["content_hash"].startswith("sha256:") and meta["compiler_version"]
    light = next(t for t in meta["tunables"] if t["name"] == "light_slice")
    assert light == {
        "name": "light_slice", "type": "duration", "default": 3_000_000, "min": 500_000,
        "max": 20_000_000, "unit": "ns", "description": "",
    }  # fmt: skip
    assert "--unverified" in meta["verification"]["reason"]
    message = git(store.root, "log", "-1", "--format=%B")
    assert message.startswith("add tunables v1: Tunable two-queue policy")
    assert "Schedc-Policy: tunables" in message and "Schedc-Version: 1" in message
    assert "Schedc-Agent: test-agent" in message and "Schedc-Verification: unverified" in message


def test_second_version_is_a_new_commit_on_the_same_path(tools, store: GitStore, tmp_path):
    assert add(str(EXAMPLES / "ljf.sched")).code == 0
    changed = tmp_path / "ljf.sched"
    changed.write_text((EXAMPLES / "ljf.sched").read_text().replace("= 20ms", "= 15ms"))
    ran = add(str(changed))
    assert ran.code == 0 and "added ljf v2" in ran.out, ran.err
    log = cli("log", "ljf", "--format", "json").json()["results"]
    assert [(e["action"], e["version"]) for e in log] == [("add", 2), ("add", 1)]
    first = cli("show", "ljf@v1", "--format", "json").result()
    assert "param slice = 20ms" in first["source"] and first["meta"]["version"] == 1
    assert first["commit"] == log[1]["commit"]
    by_sha = cli("show", f"ljf@{log[1]['commit'][:10]}", "--source")
    assert by_sha.out == first["source"]
    diff = cli("diff", "ljf", "v1", "v2").out
    assert "-  param slice = 20ms" in diff and "+  param slice = 15ms" in diff
    assert '"version": 2' in diff
    assert json.loads((store.root / "policies/ljf/meta.json").read_text())["version"] == 2


def test_adding_the_same_source_again_changes_nothing(tools, store: GitStore):
    assert add(str(EXAMPLES / "fifo.sched")).code == 0
    count = commit_count(store.root)
    ran = add(str(EXAMPLES / "fifo.sched"))
    assert ran.code == 0 and ran.out.startswith("unchanged: fifo v1")
    assert commit_count(store.root) == count


def test_a_policy_with_errors_is_rejected_and_nothing_is_committed(tools, store: GitStore):
    count = commit_count(store.root)
    bad = DATA / "bad_units.sched"
    ran = cli("add", str(bad), "--unverified", "--format", "json")
    assert ran.code == 1
    data = ran.json()
    assert data["ok"] is False and data["error"] is None  # the diagnostics say why
    out = ran.result()
    assert out["status"] == "rejected" and out["commit"] is None
    [diag] = data["diagnostics"]
    assert (diag["code"], diag["file"], diag["line"]) == ("E105", str(bad), 2)
    assert commit_count(store.root) == count and is_clean(store.root)
    assert not (store.root / "policies" / "bad_units").exists()
    human = cli("add", str(bad), "--unverified")
    assert f"{bad}:2:19: error[E105]" in human.err and "rejected" in human.out


def test_c_policy_takes_its_name_from_the_file_and_tunables_from_globals(tools, store):
    ran = add(str(DATA / "tunable_pair.bpf.c"))
    assert ran.code == 0, ran.err
    shown = cli("show", "tunable_pair", "--format", "json").result()
    meta = shown["meta"]
    assert meta["kind"] == "c" and meta["source"] == "policy.bpf.c"
    assert meta["description"].startswith("A two-knob FIFO scheduler written in C")
    assert [(t["name"], t["type"], t["default"]) for t in meta["tunables"]] == [
        ("slice_ns", "int", 5000000),
        ("direct_idle", "bool", True),
    ]
    assert not (store.root / "policies/tunable_pair/generated.bpf.c").exists()


def test_invalid_name_is_rejected_with_a_hint(tools, store: GitStore, tmp_path):
    odd = tmp_path / "My-Policy.bpf.c"
    odd.write_bytes((DATA / "tunable_pair.bpf.c").read_bytes())
    ran = add(str(odd), "--format", "json")
    assert ran.code == 1
    [diag] = [d for d in ran.json()["diagnostics"] if d["code"] == "R002"]
    assert "My-Policy" in diag["message"] and diag["hint"] == "pass --name NAME"
    escape = add(str(odd), "--name", "../../etc")
    assert escape.code == 2 and "--name" in escape.err and "path separator" in escape.err
    tag = add(str(odd), "--name", "ok", "--tag", "Two Words")
    assert tag.code == 2 and "--tag" in tag.err
    assert add(str(odd), "--name", "my_policy").code == 0


def test_a_catalogue_entry_is_not_overwritten(tools, store: GitStore, repo_env):
    from schedc.repo.catalog import seed
    from schedc.settings import load_settings

    seed(store, load_settings(), None)
    ran = add(str(EXAMPLES / "vtime_fair.sched"), "--name", "scx_simple")
    assert ran.code == 1 and "catalogue entry" in ran.err and "--parent scx_simple" in ran.err
    ok = add(str(EXAMPLES / "vtime_fair.sched"), "--parent", "scx_simple", "--format", "json")
    assert ok.code == 0 and ok.json()["diagnostics"] == []
    assert cli("show", "vtime_fair", "--format", "json").result()["meta"]["parent"] == "scx_simple"


def test_unknown_parent_is_a_warning(tools, store: GitStore):
    ran = add(str(EXAMPLES / "sjf.sched"), "--parent", "nowhere@v3", "--format", "json")
    assert ran.code == 0
    assert [d["code"] for d in ran.json()["diagnostics"]] == ["R010"]


def test_without_a_kernel_auto_records_why_and_verify_refuses(tools, store, monkeypatch):
    monkeypatch.setattr(ingest, "host_problem", lambda: "this host has no sched_ext")
    monkeypatch.setenv("SCHEDC_KERNEL", "/nonexistent/bzImage")
    strict = cli("add", str(EXAMPLES / "fifo.sched"), "--verify")
    assert strict.code == 2 and "--verify needs a kernel" in strict.err and "hint:" in strict.err
    assert is_clean(store.root) and not (store.root / "policies" / "fifo").exists()
    ran = cli("add", str(EXAMPLES / "fifo.sched"), "--format", "json")
    assert ran.code == 0, ran.err
    reason = ran.result()["verification"]["reason"]
    assert "this host has no sched_ext" in reason and "/nonexistent/bzImage" in reason


def test_a_crash_before_committing_restores_index_and_worktree(tools, store, monkeypatch):
    assert add(str(EXAMPLES / "sjf.sched")).code == 0
    head = store.head()

    def fail_commit(*args, **kwargs):
        raise RuntimeError("git commit died")

    monkeypatch.setattr(store.repo.git.__class__, "commit", fail_commit, raising=False)
    from schedc.repo.add import AddOptions, add_policy
    from schedc.settings import load_settings

    changed = store.root.parent / "sjf.sched"
    changed.write_text((EXAMPLES / "sjf.sched").read_text() + "# version two\n")
    new = store.root.parent / "brand_new.sched"
    new.write_text(
        (EXAMPLES / "fifo.sched").read_text().replace("scheduler fifo", "scheduler brand_new")
    )
    for path in (changed, new):
        with pytest.raises(RuntimeError):
            add_policy(store, path, load_settings(), AddOptions(verify="never"))
        assert store.head() == head and is_clean(store.root)
    assert not (store.root / "policies" / "brand_new").exists()
    assert git(store.root, "diff", "--cached", "--name-only") == ""


def test_init_seed_adds_the_catalogue_and_the_examples(tools, repo_env):
    ran = cli("init", "--seed", "--format", "json")
    assert ran.code == 0, ran.err
    seeded = ran.result()["seed"]
    assert len(seeded["catalog"]) >= 10 and seeded["examples_skipped"] is None
    names = {e["name"] for e in seeded["examples"]}
    assert len(names) == len(list(EXAMPLES.glob("*.sched"))) and {"ljf", "fifo"} <= names
    assert all(e["verification"]["reason"].startswith("seeded") for e in seeded["examples"])
    assert is_clean(repo_env)
    listed = cli("list", "--kind", "catalog", "--format", "json").json()["results"]
    assert {p["name"] for p in listed} >= {"scx_lavd", "scx_rusty", "scx_nest"}
    assert cli("fsck").code == 0
    top = cli("search", "longest job batch", "--format", "json").json()["results"][0]
    assert top["name"] == "ljf"
    assert layout.META  # the layout module is the single source of file names


@pytest.mark.vm
def test_verify_loads_the_policy_into_the_kernel_verifier(tools, settings, store: GitStore):
    """`add --verify --run spin`: the verifier and a 2 s run test in one boot of the sandbox
    (a run is never done on the host), the run stored per kernel and shown."""
    problem = sandbox_problem(settings)
    if problem:
        skip_or_fail(problem)
    ran = cli(
        "add", str(EXAMPLES / "fifo.sched"), "--verify", "--run", "spin", "--run-seconds", "2",
        "--format", "json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    out = ran.result()
    summary = out["verification"]
    assert summary["status"] == "verified" and summary["stage"] == "run" and out["run_ok"]
    assert summary["programs"] >= 2 and summary["reason"] is None
    assert summary["mode"] == "sandbox"
    assert summary["kernel"] == kernel_release(Path(settings.kernel))
    # one kernel here (the suite runs on the matrix's first): its own entry in `kernels`
    [only] = summary["kernels"]
    assert only["kernel"] == summary["kernel"] and only["programs"] == summary["programs"]
    run = only["run"]
    assert run["workload"] == "spin" and run["seconds"] == 2.0 and run["ok"] is True, run
    assert run["attached"] and run["enabled_throughout"] and run["failed"] == []
    report = json.loads((store.root / "policies/fifo/verification.json").read_text())
    assert {p["name"] for p in report["programs"]} >= {"fifo_enqueue", "fifo_dispatch"}
    message = git(store.root, "log", "-1", "--format=%B")
    assert "Schedc-Kernel: " in message
    assert f"Schedc-Run: spin passing on {only['kernel']}" in message
    shown = cli("show", "fifo").out
    assert f"run on {only['kernel']}: 2s under 'spin', stayed enabled" in shown, shown
    assert cli("fsck").code == 0
