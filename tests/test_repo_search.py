"""`repo search`: the FTS5 index built from HEAD, refreshed by diff when HEAD moves, ranking
that rewards measured improvements, facets, why a policy matched, and broken entries skipped."""

from __future__ import annotations

import json

import pytest

from schedc.repo import layout
from schedc.repo.gitstore import GitStore
from schedc.repo.index import Query, SearchIndex, fts5_problem, fts_query, index_path
from schedc.settings import load_settings
from tests import test_repo_support as support
from tests.test_repo_support import (
    cli,
    git,
    record_args,
    synthetic,
)

repo_env = support.repo_env
store = support.store  # fixtures


def search(*args: str) -> dict:
    ran = cli("search", *args, "--format", "json")
    assert ran.code == 0, ran.err
    return ran.json()


def names(payload: dict) -> list[str]:
    return [r["name"] for r in payload["results"]]


@pytest.fixture
def filled(store: GitStore) -> GitStore:
    synthetic(store, "ljf", "Longest job first for batch makespan", ("batch", "makespan"))
    synthetic(store, "sjf", "Shortest job first for interactive latency", ("interactive",))
    synthetic(store, "gamer", "Frame pacing for games: latency critical tasks first",
              ("gaming", "latency"), workloads=("gaming",), kernel="6.13")  # fmt: skip
    synthetic(store, "batcher", "Throughput for batch compile farms", ("batch", "throughput"))
    return store


def test_this_python_has_fts5():
    assert fts5_problem() is None


def test_ranking_prefers_the_policy_that_matches_more_and_stronger_fields(filled):
    payload = search("batch makespan")
    assert names(payload)[:2] == ["ljf", "batcher"]
    assert payload["total"] == 2
    top = payload["results"][0]
    assert top["why"]["fields"] == {
        "description": ["batch", "makespan"],
        "tags": ["batch", "makespan"],
    }
    assert top["score"] > payload["results"][1]["score"] > 0


def test_results_carry_their_rank_and_their_score_as_a_share_of_the_best(filled):
    results = search("batch makespan")["results"]
    assert [r["rank"] for r in results] == [1, 2]
    assert results[0]["match"] == 1.0 and 0 < results[1]["match"] < 1
    assert results[1]["match"] == pytest.approx(results[1]["score"] / results[0]["score"], abs=1e-3)
    text = cli("search", "batch makespan").out.splitlines()
    assert text[0].startswith("  1. 100%  ljf ")
    second = next(line for line in text if line.startswith("  2. "))
    assert f"{results[1]['match']:.0%}" in second and "batcher" in second


def test_a_measured_improvement_lifts_an_equally_relevant_policy(filled):
    before = names(search("batch"))
    # Both match "batch" in the description and the tags; batcher's shorter text gives it the
    # higher bm25 relevance.
    assert before == ["batcher", "ljf"]
    loser = before[1]
    assert cli(*record_args(loser, "compile", "50,52", "100,101")).code == 0
    after = search("batch")
    assert names(after)[0] == loser
    top = after["results"][0]
    assert top["best"]["improvement"] == pytest.approx(0.49, abs=0.01)
    assert top["why"]["boost"] == pytest.approx(1 + 0.5 * top["best"]["improvement"], abs=1e-3)
    assert top["relevance"] < top["score"]


def test_a_regression_ranks_lower_and_workload_filter_uses_that_workload(filled):
    assert cli(*record_args("sjf", "web", "150", "100")).code == 0  # 50% worse
    assert cli(*record_args("sjf", "build", "50", "100")).code == 0  # 50% better
    web = search("first", "--workload", "web")
    assert names(web) == ["sjf"] and web["results"][0]["why"]["boost"] == pytest.approx(0.75)
    assert web["results"][0]["why"]["filters"] == ["workload:web"]
    any_workload = search("first")
    sjf = next(r for r in any_workload["results"] if r["name"] == "sjf")
    assert sjf["best"]["workload"] == "build" and sjf["why"]["boost"] == pytest.approx(1.25)


def test_a_workloads_boost_uses_its_best_record_not_its_worst(filled):
    assert cli(*record_args("sjf", "web", "110", "100")).code == 0  # 10% worse
    assert cli(*record_args("sjf", "web", "50", "100")).code == 0  # 50% better
    assert cli(*record_args("sjf", "web", "105", "100")).code == 0  # 5% worse
    [sjf] = search("first", "--workload", "web")["results"]
    assert sjf["why"]["boost"] == pytest.approx(1.25)
    assert sjf["score"] == pytest.approx(sjf["relevance"] * 1.25, rel=1e-3)


@pytest.mark.parametrize(
    ("direction", "value", "improvement", "boost"),
    [
        ("higher", "400", 3.0, 1.5),  # gain capped at 1: 300% better boosts as 100% does
        ("higher", "200", 1.0, 1.5),  # on the cap
        ("lower", "300", -2.0, 0.75),  # gain floored at -0.5
        ("lower", "150", -0.5, 0.75),  # on the floor
        ("lower", "80", 0.2, 1.1),  # inside: 1 + 0.5 x gain
    ],
)
def test_the_gain_in_the_ranking_is_clamped(filled, direction, value, improvement, boost):
    assert cli(*record_args("sjf", "web", value, "100", direction)).code == 0
    for payload in (search("interactive"), search("interactive", "--workload", "web")):
        [sjf] = payload["results"]
        assert sjf["best"]["improvement"] == pytest.approx(improvement)
        assert sjf["why"]["boost"] == pytest.approx(boost)
        assert sjf["score"] == pytest.approx(sjf["relevance"] * boost, rel=1e-3)


def test_facets_filter_and_count(filled):
    assert names(search("", "--tag", "batch")) == ["batcher", "ljf"]
    assert names(search("", "--tag", "batch", "--tag", "makespan")) == ["ljf"]
    assert names(search("latency", "--kernel", "6.13")) == ["gamer"]
    assert names(search("", "--workload", "gaming")) == ["gamer"]
    assert names(search("", "--kernel", "6.1")) == []  # 6.1 is not a prefix of 6.12 or 6.13
    facets = search("")["facets"]
    assert facets["tags"]["batch"] == 2 and facets["workloads"] == {"gaming": 1}


def test_words_match_by_stem_and_by_prefix(filled):
    assert "gamer" in names(search("game"))  # "games" in the description, by stem and prefix
    assert names(search("interact")) == ["sjf"]  # the last word is also a prefix


def test_record_workloads_are_searchable(filled):
    assert cli(*record_args("batcher", "kernel_build", "9", "10"),
               "--workload-description", "make -j of the linux kernel").code == 0  # fmt: skip
    payload = search("linux kernel build")
    assert names(payload)[0] == "batcher"
    assert "workloads" in payload["results"][0]["why"]["fields"]


def test_index_is_refreshed_incrementally_when_head_moves(filled, repo_env):
    first = search("anything")
    assert first["index"]["refresh"] == "full" and first["index"]["changed"] == 4
    assert search("anything")["index"]["refresh"] == "none"
    synthetic(filled, "newcomer", "Fresh policy about latency")
    moved = search("fresh")
    assert moved["index"] == {"head": filled.head(), "refresh": "incremental", "changed": 1}
    assert names(moved) == ["newcomer"]
    git(filled.root, "rm", "-q", "-r", "policies/newcomer")
    git(filled.root, "commit", "-q", "-m", "drop newcomer")
    gone = search("fresh")
    assert gone["index"]["refresh"] == "incremental" and names(gone) == []


def test_index_rebuilds_when_the_indexed_commit_is_gone(filled):
    search("x")
    git(filled.root, "reset", "-q", "--hard", "HEAD~2")
    git(filled.root, "reflog", "expire", "--expire=now", "--all")
    git(filled.root, "gc", "-q", "--prune=now")
    payload = search("first")
    assert payload["index"]["refresh"] == "full" and set(names(payload)) == {"ljf", "sjf"}


def test_index_lives_in_the_cache_keyed_by_repository_path(filled, tmp_path):
    settings = load_settings()
    path = index_path(settings, filled.root)
    search("x")
    assert path.is_file() and str(path).startswith(settings.cache_dir or "")
    other = GitStore.create(tmp_path / "other", {layout.MARKER: '{"schema_version": 1}\n'}, "init")
    assert index_path(settings, other.root) != path
    index = SearchIndex(other, index_path(settings, other.root))
    try:
        assert index.search(Query("batch"))["results"] == []
    finally:
        index.close()


def test_broken_entries_are_skipped_and_listed(filled):
    search("x")  # index first, so the breakage arrives as an incremental update
    meta = filled.root / "policies/ljf/meta.json"
    data = json.loads(meta.read_text())
    data["version"] = "two"
    meta.write_text(json.dumps(data))
    (filled.root / "policies/sjf/meta.json").write_text("{ not json")
    perf = filled.root / "policies/batcher/perf"
    perf.mkdir()
    (perf / "20250101T000000Z-deadbeef.json").write_text('{"policy": "batcher"}')
    git(filled.root, "add", "-A")
    git(filled.root, "commit", "-q", "-m", "hand edits")
    payload = search("first batch")
    assert names(payload) == ["batcher", "gamer"]  # a broken record is ignored, not its entry
    skipped = {s["name"]: s["problem"] for s in payload["skipped"]}
    assert set(skipped) == {"ljf", "sjf"} and "version" in skipped["ljf"]
    human = cli("search", "batch")
    assert human.code == 0 and "skipped broken entries: ljf, sjf" in human.out


@pytest.mark.parametrize(
    "text",
    ['"', 'latency" OR "x', "AND OR NOT", "NEAR(a b)", "col:umn", "a*", "a -x", "^", "{}", "été"],
)
def test_query_syntax_in_user_text_never_breaks_the_search(filled, text):
    payload = search(text)
    assert payload["ok"] is True


def test_fts_query_quotes_every_word_and_prefixes_the_last():
    assert fts_query("Low latency") == '"low" OR "latency"*'
    assert fts_query("io") == '"io"'
    assert fts_query("  ++ ") is None


def test_limit_and_total(store: GitStore):
    for i in range(30):
        synthetic(store, f"p{i}", f"policy number {i} about scheduling")
    payload = search("scheduling", "--limit", "5")
    assert len(payload["results"]) == 5 and payload["total"] == 30


def test_a_damaged_index_file_is_rebuilt(filled):
    search("x")
    path = index_path(load_settings(), filled.root)
    for extra in ("-wal", "-shm"):
        path.with_name(path.name + extra).unlink(missing_ok=True)
    path.write_bytes(b"this is not an sqlite database" * 100)
    payload = search("batch")
    assert payload["index"]["refresh"] == "full" and "ljf" in names(payload)


def test_names_are_never_patterns(filled):
    assert cli("show", "*").code == 1
    assert cli("log", "*").code == 1
    assert cli("show", "ljf", "--format", "json").result()["name"] == "ljf"


def test_a_hit_carries_every_documented_field_and_the_filters_it_passed(store):
    """docs/json.md: a hit is {name, rank, match, score, relevance, kind, version, verification,
    description, tags, why, best, behaviour, ...}; `why.filters` names each filter it passed."""
    synthetic(store, "gamer", "Frame pacing for games", ("gaming", "latency"), version=3,
              workloads=("gaming",), kernel="6.13")
    synthetic(store, "plain", "A plain policy")
    [hit] = search("frame")["results"]
    assert {"name", "rank", "match", "score", "relevance", "kind", "version", "verification",
            "description", "tags", "why", "best", "behaviour"} <= set(hit)
    assert (hit["name"], hit["kind"], hit["version"]) == ("gamer", "dsl", 3)
    assert hit["description"] == "Frame pacing for games"
    assert hit["tags"] == ["gaming", "latency"]
    assert hit["behaviour"] == [] and hit["best"] is None
    assert hit["verification"] == "unverified"
    assert "filters" not in hit["why"]  # no filter given, none passed
    [plain] = search("plain")["results"]
    assert plain["tags"] == []  # none stored: an empty list, not null
    [filtered] = search("frame", "--tag", "gaming", "--kernel", "6.13")["results"]
    assert filtered["why"]["filters"] == ["tag:gaming", "kernel:6.13"]
    assert search("frame", "--behaviour-passing")["results"] == []  # never tested
