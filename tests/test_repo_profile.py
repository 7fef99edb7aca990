"""Performance records measured under a workload profile: `repo record --profile`, the
record's `profile` field through the real git repository, `repo show`, `repo fsck` on a
planted bad field, and `repo search --profile` (docs/repo.md, docs/profile.md)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from schedc.cli import main
from schedc.profile.similarity import profile_shape, similarity
from schedc.repo.gitstore import GitStore
from schedc.repo.models import PerformanceRecord
from schedc.repo.perf import profile_option, record_bench_result
from tests import profile_shapes as ps
from tests import test_repo_support as support
from tests.test_repo_record import bench_result
from tests.test_repo_support import cli, commit_count, git, is_clean, record_args, synthetic

repo_env = support.repo_env
store = support.store  # fixtures


def record(name: str, profile: Path | None, improvement_base: str = "110") -> support.Ran:
    extra = ("--profile", str(profile)) if profile else ()
    return cli(
        *record_args(name, "kernel_build", "100", improvement_base), *extra, "--format", "json"
    )


def test_a_record_keeps_its_profile_through_git_and_show_prints_it(store: GitStore, tmp_path):
    synthetic(store, "ljf", "longest job first", ("batch",))
    path = ps.write(tmp_path / "build.json", ps.kernel_build())
    ran = record("ljf", path)
    assert ran.code == 0, ran.err
    [rec] = ran.result()["records"]
    assert rec["schema_version"] == 2
    assert rec["profile"]["created"] == "2026-11-01T10:00:00Z"
    assert rec["profile"]["target"] == {
        "mode": "command",
        "command": ["sh", "-c", "make -j4"],
        "pids": [],
        "cgroup": None,
    }
    stored = (store.root / "policies/ljf/perf" / f"{rec['id']}.json").read_text()
    back = PerformanceRecord.model_validate_json(stored)
    assert back.profile is not None
    assert back.profile.shape == profile_shape(ps.kernel_build())
    assert is_clean(store.root)
    shown = cli("show", "ljf")
    assert shown.code == 0, shown.err
    assert "measured under the profile of 2026-11-01 10:00 (command sh -c make -j4; 4 CPUs)" in (
        shown.out
    )
    assert "cc1 batch 90%, make io-bound 1%" in shown.out
    as_json = cli("show", "ljf", "--format", "json").result()
    assert as_json["records"][0]["profile"]["shape"]["groups"][0]["name"] == "cc1"
    assert cli("fsck").code == 0


def test_a_record_without_profile_is_written_as_version_1_as_before(store: GitStore):
    synthetic(store, "fifo", "first in first out")
    ran = record("fifo", None)
    assert ran.code == 0, ran.err
    [rec] = ran.result()["records"]
    text = (store.root / "policies/fifo/perf" / f"{rec['id']}.json").read_text()
    data = json.loads(text)
    assert data["schema_version"] == 1
    assert not {"profile", "emulated", "accelerator"} & set(data)


def test_bench_records_say_they_are_emulated_and_keep_the_profile(store: GitStore, tmp_path):
    source = tmp_path / "ljf.sched"
    source.write_text("# ljf: longest job first\n")
    synthetic(store, "ljf", "longest job first", source=source.read_text())
    profile = ps.write(tmp_path / "build.json", ps.kernel_build())
    where = record_bench_result(
        str(source),
        bench_result("ljf", str(source), [1.0, 1.1], [1.2, 1.3]),
        profile_option(profile),
    )
    assert "policies/ljf/perf/" in where
    [rec] = cli("show", "ljf", "--format", "json").result()["records"]
    assert "emulated" not in rec and rec["accelerator"] == "tcg"  # the fixture says only tcg
    assert rec["profile"]["shape"]["cpus"] == 4
    shown = cli("show", "ljf").out
    assert "(emulated timings, TCG)" in shown and "measured under the profile" in shown


def test_fsck_reports_a_planted_bad_profile_and_search_does_not_use_it(store: GitStore, tmp_path):
    synthetic(store, "ljf", "longest job first", ("batch",))
    assert record("ljf", ps.write(tmp_path / "p.json", ps.kernel_build())).code == 0
    [path] = (store.root / "policies/ljf/perf").iterdir()
    data = json.loads(path.read_text())
    cases = {
        "share": lambda d: d["profile"]["shape"]["groups"][0].update(cpu_share=7),
        "unknown": lambda d: d["profile"]["shape"].update(secret="x"),
        "version": lambda d: d.update(schema_version=1),
        "tcg": lambda d: d.update(emulated=False, accelerator="tcg"),
    }
    expected = {
        "share": "cpu_share",
        "unknown": "secret",
        "version": "needs schema_version 2",
        "tcg": "accelerator tcg emulates the CPU",
    }
    for case, plant in cases.items():
        planted = json.loads(json.dumps(data))
        plant(planted)
        path.write_text(json.dumps(planted, indent=2))
        git(store.root, "commit", "-qam", f"hand edit: {case}")
        ran = cli("fsck", "--format", "json")
        assert ran.code == 1, (case, ran.out)
        [diag] = [d for d in ran.json()["diagnostics"] if d["code"] == "R104"]
        assert expected[case] in diag["message"], (case, diag)
    searched = cli("search", "--profile", str(tmp_path / "p.json"), "--format", "json").json()
    assert searched["results"] == []  # the broken record is not used, the policy is not broken


def test_record_refuses_a_bad_profile_file_and_stores_nothing(store: GitStore, tmp_path):
    synthetic(store, "ljf", "longest job first")
    before = commit_count(store.root)
    broken = tmp_path / "broken.json"
    broken.write_text('{"groups": [}')
    missing = tmp_path / "missing.json"
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(bench_result("ljf", "x", [1.0], [1.0])))
    for path, words in (
        (broken, "broken.json:1:13: not JSON"),
        (missing, "cannot open the profile"),
        (bench, "not a workload profile"),
    ):
        ran = cli(*record_args("ljf", "w", "1", "1"), "--profile", str(path))
        assert ran.code == 2, (path, ran.err)
        assert words in ran.err and "hint: give the file `schedc profile -o" in ran.err
        as_json = cli(
            *record_args("ljf", "w", "1", "1"), "--profile", str(path), "--format", "json"
        )
        error = as_json.json()["error"]
        assert as_json.code == 2 and words in error["message"]
        assert error["hint"].startswith("give the file `schedc profile -o")
        search = cli("search", "--profile", str(path))
        assert search.code == 2 and words in search.err
    assert commit_count(store.root) == before and is_clean(store.root)


def test_search_by_profile_ranks_policies_by_their_most_similar_record(store: GitStore, tmp_path):
    """Four policies, measured under different profiles (the same improvement each, so only
    the profile decides); a fifth never measured under a profile."""
    build = ps.write(tmp_path / "build.json", ps.kernel_build())
    measured = {
        "batchy": ps.rust_build(),  # another batch profile
        "mixed": ps.database_next_to_build(),  # a compile next to postgres
        "desky": ps.desktop(),  # interactive
        "twice": ps.desktop(),  # interactive, and once the very build profile
    }
    for name, profile in measured.items():
        synthetic(store, name, f"{name} policy", ("batch",))
        assert record(name, ps.write(tmp_path / f"{name}.json", profile)).code == 0
    assert record("twice", build).code == 0
    synthetic(store, "plain", "plain batch policy", ("batch",))
    assert cli(*record_args("plain", "kernel_build", "100", "110")).code == 0

    ran = cli("search", "--profile", str(build), "--format", "json")
    assert ran.code == 0, ran.err
    payload = ran.json()
    names = [r["name"] for r in payload["results"]]
    assert names == ["twice", "batchy", "mixed", "desky"]  # plain: no profiled record
    mine = profile_shape(ps.kernel_build())
    got = {r["name"]: r["profile"]["similarity"] for r in payload["results"]}
    assert got["twice"] == 1.0
    assert got["batchy"] == round(similarity(mine, profile_shape(ps.rust_build())), 4)
    assert got["desky"] == round(similarity(mine, profile_shape(ps.desktop())), 4)
    assert payload["results"][0]["why"]["profile"] == 5.0  # 1 + 4 x 1
    assert payload["filters"]["profile"] is True
    assert payload["results"][0]["profile"]["emulated"] is False

    # with text: the text selects and its relevance is multiplied by (1 + 4 s); a policy
    # without a profiled record stays, at factor 1
    text = cli("search", "policy", "--profile", str(build), "--format", "json").json()
    assert [r["name"] for r in text["results"]] == ["twice", "batchy", "mixed", "desky", "plain"]
    assert text["results"][-1]["profile"] is None and "profile" not in text["results"][-1]["why"]
    by_name = cli("search", "batchy", "--profile", str(build), "--format", "json").json()
    assert [r["name"] for r in by_name["results"]] == ["batchy"]  # the text still selects

    # by the interactive profile the order turns round
    desk = ps.write(tmp_path / "desk.json", ps.desktop())
    turned = [
        r["name"]
        for r in cli("search", "--profile", str(desk), "--format", "json").json()["results"]
    ]
    assert turned == ["desky", "twice", "mixed", "batchy"]  # desky and twice tie at 1: by name

    human = cli("search", "--profile", str(build))
    assert "profile: similarity 1.00 (record " in human.out and "on kernel_build)" in human.out


def test_search_labels_emulated_results(store: GitStore, tmp_path):
    source = tmp_path / "ljf.sched"
    source.write_text("# ljf\n")
    synthetic(store, "ljf", "longest job first", source=source.read_text())
    profile = ps.write(tmp_path / "build.json", ps.kernel_build())
    result = bench_result("ljf", str(source), [1.0], [1.2])
    result["environment"]["emulated"] = True  # as schedc bench says it under TCG
    record_bench_result(str(source), result, profile_option(profile))
    payload = cli("search", "--profile", str(profile), "--format", "json").json()
    assert payload["results"][0]["profile"]["emulated"] is True
    assert payload["results"][0]["best"]["emulated"] is True
    human = cli("search", "--profile", str(profile)).out
    assert "emulated timings (TCG))" in human  # the profile line
    assert "+16.7% vs eevdf (emulated timings, TCG)" in human  # the best line
    plain = cli("search", "--format", "json").json()  # without --profile too
    assert plain["results"][0]["best"]["emulated"] is True and "profile" not in plain["results"][0]


def test_bench_profile_option_is_checked_before_anything_is_compiled(store: GitStore, tmp_path):
    source = tmp_path / "fifo.sched"
    source.write_text("# not compiled: the option is refused first\n")
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    good = ps.write(tmp_path / "good.json", ps.kernel_build())
    for args, words in (
        (["--profile", str(good)], "--profile goes with --record"),
        (["--record", "--profile", str(broken)], "--profile: "),
    ):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["bench", str(source), "--workload", "hackbench", *args])
        assert code == 2, err.getvalue()
        assert words in err.getvalue()
    assert "broken.json:1:6: not JSON" in err.getvalue()


def test_profile_search_uses_the_record_of_the_workload_asked_and_the_later_of_ties(
    store: GitStore, tmp_path
):
    """One policy, three profiled records: the build profile itself on workload `ci`, a desktop
    profile on `desk`, and the build profile again, later, on `ci`. By the build profile the
    best record is the later of the two ties; with --workload desk only the desk record
    counts, however much less alike it is."""
    build = ps.write(tmp_path / "build.json", ps.kernel_build())
    desk = ps.write(tmp_path / "desk.json", ps.desktop())
    synthetic(store, "ljf", "longest job first", ("batch",))

    def measured(workload: str, profile: Path) -> str:
        ran = cli(*record_args("ljf", workload, "100", "110"), "--profile", str(profile),
                  "--format", "json")
        assert ran.code == 0, ran.err
        return ran.result()["records"][-1]["id"]

    first = measured("ci", build)
    on_desk = measured("desk", desk)
    later = measured("ci", build)
    assert len({first, on_desk, later}) == 3

    def best(*extra: str) -> dict:
        ran = cli("search", "--profile", str(build), *extra, "--format", "json")
        assert ran.code == 0, ran.err
        [hit] = ran.json()["results"]
        return hit["profile"]

    alike = best()
    # ties: the later record, by id (ids start with their time to the second, then a random
    # part: within one second the larger id)
    assert alike["record"] == max(first, later) and alike["workload"] == "ci"
    assert alike["similarity"] == 1.0 and alike["emulated"] is False
    # when the profile was taken (its `created`), as an ISO 8601 time, written as the
    # record's own JSON (and so `show`) writes it
    assert alike["profile_created"] == "2026-11-01T10:00:00Z"
    only_desk = best("--workload", "desk")
    assert only_desk["record"] == on_desk and only_desk["workload"] == "desk"
    mine, theirs = profile_shape(ps.kernel_build()), profile_shape(ps.desktop())
    assert only_desk["similarity"] == round(similarity(mine, theirs), 4) < 1.0
    none = cli("search", "--profile", str(build), "--workload", "other", "--format", "json")
    assert none.json()["results"] == []  # no record on that workload: nothing to rank by
