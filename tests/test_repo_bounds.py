"""One bad entry never takes the repository down: JSON nested 200,000 deep, a 5,000-digit
integer or a file of several MiB in one entry is reported as that entry's problem by every
reader, and every other entry is served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schedc.repo.gitstore import GitStore
from tests import test_repo_support as support
from tests.conftest import ROOT
from tests.test_repo_support import cli, git, is_clean, record_args, synthetic

repo_env = support.repo_env
store = support.store  # fixtures

DEEP = "[" * 200_000 + "]" * 200_000
BAD = ("deep", "bigint", "huge", "deep_record")


@pytest.fixture
def hostile(store: GitStore) -> GitStore:
    """'good' next to entries whose files are beyond every bound, committed."""
    for name in ("good", *BAD):
        synthetic(store, name, f"a batch policy {name}", ("batch",))
    root = store.root
    (root / "policies/deep/meta.json").write_text(DEEP)
    meta = json.loads((root / "policies/bigint/meta.json").read_text())
    text = json.dumps(meta).replace('"version": 1', '"version": 1' + "0" * 5000)
    (root / "policies/bigint/meta.json").write_text(text)
    meta = json.loads((root / "policies/huge/meta.json").read_text())
    meta["description"] = "x" * (2 << 20)
    (root / "policies/huge/meta.json").write_text(json.dumps(meta))
    (root / "policies/deep_record/perf").mkdir()
    (root / "policies/deep_record/perf/20250101T000000Z-00000001.json").write_text(DEEP)
    (root / "policies/good/verification.json").write_text(DEEP)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "hostile entries")
    return store


def test_list_reports_each_bad_entry_and_serves_the_rest(hostile: GitStore):
    ran = cli("list", "--format", "json")
    assert ran.code == 0, ran.err
    by_name = {p["name"]: p for p in ran.json()["results"]}
    assert by_name["good"]["ok"] is True
    assert {n for n, p in by_name.items() if not p["ok"]} == {"deep", "bigint", "huge"}
    assert "nested more than 64 levels deep" in by_name["deep"]["problems"][0]["problem"]
    assert "a number of 5001 characters" in by_name["bigint"]["problems"][0]["problem"]
    assert "larger than the limit" in by_name["huge"]["problems"][0]["problem"]
    assert by_name["deep_record"]["records"] == 0  # the entry is fine, its record is not
    assert "warning: skipped deep: policies/deep/meta.json" in ran.err
    assert cli("list").code == 0


def test_search_skips_them(hostile: GitStore):
    ran = cli("search", "batch", "--format", "json")
    assert ran.code == 0, ran.err
    assert {r["name"] for r in ran.json()["results"]} == {"good", "deep_record"}
    assert {s["name"] for s in ran.json()["skipped"]} == {"deep", "bigint", "huge"}
    assert "warning: skipped bigint" in ran.err


def test_show_reports_the_file(hostile: GitStore):
    for name in ("deep", "bigint", "huge"):
        ran = cli("show", name, "--format", "json")
        assert ran.code == 0 and ran.result()["ok"] is False
        assert ran.result()["problems"][0]["path"] == f"policies/{name}/meta.json"
    good = cli("show", "good", "--format", "json").result()
    assert good["ok"] is True and good["verification"] is None
    assert any(p["path"].endswith("verification.json") for p in good["problems"])
    assert cli("show", "deep_record", "--format", "json").result()["records"] == []
    assert cli("show", "good").code == 0


def test_fsck_names_every_file(hostile: GitStore):
    ran = cli("fsck", "--format", "json")
    assert ran.code == 1
    found = {(d["code"], d["file"]) for d in ran.json()["diagnostics"]}
    assert found >= {
        ("R103", "policies/deep/meta.json"),
        ("R103", "policies/bigint/meta.json"),
        ("R103", "policies/huge/meta.json"),
        ("R104", "policies/deep_record/perf/20250101T000000Z-00000001.json"),
        ("R110", "policies/good/verification.json"),
    }
    assert cli("fsck", "--deep").code == 1


def test_record_refuses_a_bad_entry_and_works_on_the_others(hostile: GitStore):
    ran = cli(*record_args("deep", "w", "1", "2"))
    assert ran.code == 1 and "broken" in ran.err and "Traceback" not in ran.err
    assert cli(*record_args("good", "w", "1", "2")).code == 0
    assert cli(*record_args("deep_record", "w", "1", "2")).code == 0
    assert is_clean(hostile.root)


def test_add_of_another_policy_works_next_to_them(toolchain, hostile: GitStore):
    ran = cli("add", str(ROOT / "examples/fifo.sched"), "--unverified")
    assert ran.code == 0, ran.err
    assert "added fifo v1" in ran.out
    over = cli("add", str(ROOT / "examples/fifo.sched"), "--name", "deep", "--unverified")
    assert over.code == 1 and "the existing entry 'deep' is broken" in over.err


def test_record_from_a_hostile_file_is_refused(hostile: GitStore, tmp_path: Path):
    bench = tmp_path / "bench.json"
    bench.write_text(DEEP)
    ran = cli("record", "good", "--from", str(bench))
    assert ran.code == 2 and "nested more than 64 levels deep" in ran.err


def test_the_bounds():
    from schedc.repo import bounded  # here: the readers' tests run against any schedc
    from schedc.repo.bounded import MAX_DEPTH, JSONBoundsError

    assert bounded.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(JSONBoundsError, match="nested"):
        bounded.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    brackets = json.dumps({"text": "[{" * 1000})  # brackets inside strings do not nest
    assert bounded.loads(brackets) == {"text": "[{" * 1000}
    assert bounded.loads('{"a": ' + "9" * 40 + "}") == {"a": int("9" * 40)}
    with pytest.raises(JSONBoundsError, match="number"):
        bounded.loads("1" + "0" * 40)
    with pytest.raises(JSONBoundsError, match="NaN is not JSON"):
        bounded.loads('{"median": NaN}')
    with pytest.raises(JSONBoundsError, match="larger than"):
        bounded.loads(b" " * (bounded.MAX_JSON_BYTES + 1))
