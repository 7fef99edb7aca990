"""schedc.profile.similarity: the shape a record keeps of a profile, and how alike two
profiles are (docs/profile.md, "Similarity")."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from schedc.profile.model import ProfileFileError, read_profile
from schedc.profile.similarity import (
    MAX_SHAPE_GROUPS,
    ProfileShape,
    matched_groups,
    profile_shape,
    similarity,
)
from tests import profile_shapes as ps


def shape(p) -> ProfileShape:
    return profile_shape(p)


def test_identity_is_one_and_similarity_is_symmetric():
    profiles = [ps.kernel_build(), ps.rust_build(), ps.desktop(), ps.database_next_to_build()]
    shapes = [shape(p) for p in profiles]
    for a in shapes:
        assert similarity(a, a) == pytest.approx(1.0)
        for b in shapes:
            assert similarity(a, b) == pytest.approx(similarity(b, a), abs=1e-12)
            assert 0.0 <= similarity(a, b) <= 1.0


def test_a_batch_profile_is_closer_to_another_batch_profile_than_to_an_interactive_one():
    build, rust, desk = shape(ps.kernel_build()), shape(ps.rust_build()), shape(ps.desktop())
    assert similarity(build, rust) > 0.8
    assert similarity(build, desk) < 0.2
    assert similarity(build, rust) > similarity(build, desk)
    assert similarity(rust, build) > similarity(rust, desk)
    # the database next to a build is in between: it shares the compile, not postgres
    mixed = shape(ps.database_next_to_build())
    assert similarity(build, desk) < similarity(build, mixed) < similarity(build, rust)


def test_names_do_not_change_the_shape_distance_and_equal_comms_add_a_small_bonus():
    base = shape(ps.kernel_build("cc1", "make"))
    renamed = shape(ps.kernel_build("clang", "ninja"))
    assert similarity(base, renamed) == pytest.approx(1.0)  # identical shapes, other names
    # a shape a little different: equal comms bring it closer, but only a little
    other = ps.profile(
        ps.group("cc1", 0.6, 8_000, 5, 2.4, 8, ("batch",)),
        ps.group("make", 0.01, 300, 20, 0.04, 1, ("io-bound",)),
    )
    other_named = ps.profile(
        ps.group("gcc-worker", 0.6, 8_000, 5, 2.4, 8, ("batch",)),
        ps.group("driver", 0.01, 300, 20, 0.04, 1, ("io-bound",)),
    )
    same_comms = similarity(base, shape(other))
    other_comms = similarity(base, shape(other_named))
    assert other_comms < same_comms < 1.0
    assert same_comms - other_comms < 0.1


def test_groups_pair_by_shape_not_by_order_or_name():
    a = shape(ps.database_next_to_build())
    b = shape(
        ps.profile(
            ps.group("mysqld", 0.05, 150, 400, 0.2, 8, ("latency-critical",)),
            ps.group("rustc", 0.70, 20_000, 2, 2.8, 4, ("batch",)),
        )
    )
    pairs = {(a.groups[i].name, b.groups[j].name) for i, j, _s in matched_groups(a, b)}
    assert pairs == {("cc1", "rustc"), ("postgres", "mysqld")}
    assert similarity(a, b) == pytest.approx(1.0)


def test_a_missing_group_costs_its_weight():
    full = shape(ps.database_next_to_build())
    only_build = shape(ps.profile(ps.group("cc1", 0.70, 20_000, 2, 2.8, 4, ("batch",))))
    score = similarity(full, only_build)
    # postgres's weight: half its CPU share (0.05 of 0.75), half an equal part (1/2)
    postgres_weight = 0.5 * 0.05 / 0.75 + 0.5 / 2
    assert score == pytest.approx(1 - postgres_weight / 2, abs=1e-9)
    assert similarity(full, ProfileShape(cpus=4, groups=[])) == 0.0


def test_the_shape_keeps_the_largest_groups_and_is_validated():
    many = ps.profile(*[ps.group(f"g{i}", 0.01 * (i + 1), 1000, 10, 0.1, 1, ()) for i in range(20)])
    s = shape(many)
    assert len(s.groups) == MAX_SHAPE_GROUPS
    assert s.groups[0].name == "g19" and s.groups[-1].name == f"g{20 - MAX_SHAPE_GROUPS}"
    assert s.groups[0].runtime_per_run_us == 1000 and s.groups[0].run_delay_p99_us == 120
    data = s.model_dump(mode="json")
    assert ProfileShape.model_validate(data) == s
    data["groups"][0]["cpu_share"] = 1.5
    with pytest.raises(ValidationError, match="cpu_share"):
        ProfileShape.model_validate(data)
    data["groups"][0]["cpu_share"] = 0.5
    data["groups"][0]["labels"] = ["batch", "batch"]
    with pytest.raises(ValidationError, match="once each"):
        ProfileShape.model_validate(data)


def test_read_profile_names_the_file_and_what_is_wrong(tmp_path):
    good = ps.write(tmp_path / "good.json", ps.desktop())
    assert read_profile(good).group("firefox") is not None
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "schema_version": 1,\n  "groups": [,]\n}\n')
    with pytest.raises(ProfileFileError, match=r"broken.json:3:14: not JSON"):
        read_profile(broken)
    data = json.loads(good.read_text())
    data["groups"][0]["cpu_share"] = -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ProfileFileError, match=r"bad.json: invalid profile: groups.0.cpu_share"):
        read_profile(bad)
    data["schema_version"] = 2
    bad.write_text(json.dumps(data))
    with pytest.raises(ProfileFileError, match="schema_version 2; this schedc reads version 1"):
        read_profile(bad)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"workload": "hackbench", "policy": {}, "baseline": {}}))
    with pytest.raises(ProfileFileError, match="not a workload profile"):
        read_profile(bench)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ProfileFileError, match="nested more than"):
        read_profile(deep)
    with pytest.raises(ProfileFileError, match="not a regular file"):
        read_profile(tmp_path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # planted: a reader that blocked on it would hang
    with pytest.raises(ProfileFileError, match="not a regular file"):
        read_profile(fifo)
    with pytest.raises(ProfileFileError, match="cannot open"):
        read_profile(tmp_path / "missing.json")
