"""Safety: parallel writers lose nothing, a broken or hand-edited entry is reported by fsck and
never crashes a reader, uncommitted work is never overwritten, and the lock really excludes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from schedc.repo.gitstore import GitStore
from tests import test_repo_support as support
from tests.conftest import ROOT
from tests.test_repo_support import (
    cli,
    commit_count,
    git,
    is_clean,
    record_args,
    synthetic,
)

repo_env = support.repo_env
store = support.store  # fixtures

WORKERS = 4

# One writer process: its commands run one after the other, against the other writers.
WORKER = textwrap.dedent(
    """
    import sys
    from schedc.cli import main as schedc

    def main(args):
        return schedc(["repo", *args])

    worker, tmp, with_adds = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
    failures = 0
    def run(*args):
        global failures
        code = main(list(args))
        if code != 0:
            failures += 1
            print("FAILED", args, file=sys.stderr)
    if with_adds:
        examples = sys.argv[4]
        run("add", f"{examples}/ljf.sched", "--name", f"w{worker}_ljf", "--unverified")
        common = f"{tmp}/common{worker}.sched"
        text = open(f"{examples}/fifo.sched").read().replace("scheduler fifo", "scheduler common")
        open(common, "w").write(text + f"# written by worker {worker}\\n")
        run("add", common, "--unverified")
        run("add", f"{examples}/sjf.sched", "--name", f"w{worker}_sjf", "--unverified")
    for i in range(5):
        run("record", "shared", "--workload", f"w{worker}", "--metric", "time",
            "--direction", "lower", "--value", str(i + 1), "--baseline-value", "10")
    sys.exit(1 if failures else 0)
    """
)


def _spawn(store: GitStore, tmp_path, with_adds: bool) -> list[subprocess.Popen]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), SCHEDC_REPO=str(store.root))
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(i),
                str(tmp_path),
                "1" if with_adds else "0",
                str(ROOT / "examples"),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(WORKERS)
    ]


def _wait(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err


def _records_intact(store: GitStore) -> None:
    files = sorted((store.root / "policies/shared/perf").iterdir())
    assert len(files) == WORKERS * 5
    workloads = sorted(json.loads(f.read_text())["workload"] for f in files)
    assert workloads == sorted(f"w{w}" for w in range(WORKERS) for _ in range(5))


def test_parallel_recorders_lose_nothing(store: GitStore, tmp_path):
    synthetic(store, "shared", "a policy everyone measures")
    before = commit_count(store.root)
    _wait(_spawn(store, tmp_path, with_adds=False))
    assert commit_count(store.root) == before + WORKERS * 5
    _records_intact(store)
    assert is_clean(store.root) and cli("fsck").code == 0


def test_parallel_adders_and_recorders_lose_nothing(toolchain, store: GitStore, tmp_path):
    synthetic(store, "shared", "a policy everyone measures")
    before = commit_count(store.root)
    _wait(_spawn(store, tmp_path, with_adds=True))
    assert commit_count(store.root) == before + WORKERS * (3 + 5)
    _records_intact(store)
    for w in range(WORKERS):
        assert (store.root / f"policies/w{w}_ljf/policy.sched").is_file()
        assert (store.root / f"policies/w{w}_sjf/policy.sched").is_file()
    log = cli("log", "common", "--format", "json").json()["results"]
    assert sorted(e["version"] for e in log) == list(range(1, WORKERS + 1))
    assert json.loads((store.root / "policies/common/meta.json").read_text())["version"] == WORKERS
    assert is_clean(store.root)
    fsck = cli("fsck", "--deep")
    assert fsck.code == 0, fsck.out


def test_a_held_lock_makes_the_next_writer_wait(store: GitStore):
    synthetic(store, "shared", "x")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from schedc.repo.gitstore import GitStore
            with GitStore(Path({str(store.root)!r})).lock():
                print("locked", flush=True)
                time.sleep(1.5)
        """)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    start = time.monotonic()
    ran = cli(*record_args("shared", "w", "1", "2"))
    waited = time.monotonic() - start
    holder.wait(timeout=30)
    assert ran.code == 0 and waited >= 1.0


@pytest.fixture
def damaged(store: GitStore) -> GitStore:
    """A repository with one of every kind of damage a hand edit can do, committed."""
    for name in ("broken_json", "extra_key", "edited", "with_blob", "bad_record", "fine"):
        synthetic(store, name, f"entry {name}", source=f"# {name}\n")
    root = store.root
    (root / "policies/broken_json/meta.json").write_text('{"schema_version": 1, "name": ')
    data = json.loads((root / "policies/extra_key/meta.json").read_text())
    data["colour"] = "blue"
    (root / "policies/extra_key/meta.json").write_text(json.dumps(data))
    (root / "policies/edited/policy.sched").write_text("# edited by hand\n")
    (root / "policies/with_blob/policy.bpf.o").write_bytes(b"\x7fELF\0\0\0")
    (root / "policies/with_blob/notes.txt").write_text("hi\n")
    perf = root / "policies/bad_record/perf"
    perf.mkdir()
    record = {
        "id": "20250101T000000Z-00000001", "policy": "bad_record", "workload": "w",
        "metric": "m", "direction": "lower", "values": [1, 2, 3], "n": 4, "median": 2,
        "kernel": "6.12", "date": "2025-01-01T00:00:00Z",
        "machine": {"cpu_model": "x", "cores": 1, "fingerprint": "f"},
    }  # fmt: skip
    (perf / "20250101T000000Z-00000001.json").write_text(json.dumps(record))
    (root / "policies/Bad-Name").mkdir()
    (root / "policies/Bad-Name/meta.json").write_text("{}")
    (root / "policies/stray.txt").write_text("not a policy\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "hand edits")
    return store


def test_fsck_reports_every_kind_of_damage(damaged: GitStore):
    ran = cli("fsck", "--format", "json")
    assert ran.code == 1
    assert ran.json()["ok"] is False and ran.result()["repaired"] == []
    found = {(d["code"], d["file"]) for d in ran.json()["diagnostics"]}
    assert found >= {
        ("R103", "policies/broken_json/meta.json"),
        ("R103", "policies/extra_key/meta.json"),
        ("R108", "policies/edited/policy.sched"),
        ("R106", "policies/with_blob/policy.bpf.o"),
        ("R105", "policies/with_blob/notes.txt"),
        ("R104", "policies/bad_record/perf/20250101T000000Z-00000001.json"),
        ("R102", "policies/Bad-Name"),
        ("R114", "policies/stray.txt"),
    }
    assert not any(d[1].startswith("policies/fine") and d[0] != "R109" for d in found)
    messages = [d["message"] for d in ran.json()["diagnostics"]]
    assert "colour: Extra inputs are not permitted" in messages
    assert any("n is 4 but there are 3 values" in m for m in messages)
    human = cli("fsck")
    assert "policies/edited/policy.sched: error[R108]" in human.out
    assert "7 errors and" in human.out


def test_readers_survive_damage(damaged: GitStore):
    listed = cli("list", "--format", "json")
    assert listed.code == 0
    broken = {p["name"] for p in listed.json()["results"] if not p["ok"]}
    assert broken == {"broken_json", "extra_key", "Bad-Name"}
    assert cli("list").code == 0 and "BROKEN" in cli("list").out
    payload = cli("search", "entry", "--format", "json").json()
    assert {s["name"] for s in payload["skipped"]} == broken
    assert "fine" in {r["name"] for r in payload["results"]}
    ran = cli("show", "broken_json", "--format", "json")
    assert ran.code == 0 and ran.json()["ok"] is True  # shown; the entry itself is broken:
    shown = ran.result()
    assert shown["ok"] is False and shown["problems"][0]["path"].endswith("meta.json")
    assert cli("show", "bad_record", "--format", "json").result()["records"] == []
    assert cli("log", "extra_key").code == 0


def test_recording_on_a_broken_entry_is_refused(damaged: GitStore):
    ran = cli(*record_args("broken_json", "w", "1", "2"))
    assert ran.code == 1 and "broken" in ran.err and is_clean(damaged.root)


def test_uncommitted_work_is_never_overwritten(store: GitStore):
    synthetic(store, "mine", "x")
    mine = store.root / "policies/mine/policy.sched"
    mine.write_text("# my unsaved edit\n")
    ran = cli(*record_args("mine", "w", "1", "2"))
    assert ran.code == 1 and "uncommitted changes" in ran.err
    assert mine.read_text() == "# my unsaved edit\n"
    fsck = cli("fsck", "--format", "json").json()
    assert [d["code"] for d in fsck["diagnostics"]][:1] == ["R101"]
    other = cli("search", "x", "--format", "json")  # reads HEAD, not the worktree
    assert other.code == 0 and mine.read_text() == "# my unsaved edit\n"
