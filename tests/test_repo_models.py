"""The metadata schema: names, tunables, performance records, versions, the catalogue file and
the machine fingerprint. No git, no tools."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import pytest
from pydantic import ValidationError

from schedc.repo.catalog import catalog_metas
from schedc.repo.machine import cpu_model, machine
from schedc.repo.models import (
    SCHEMA_VERSION,
    PerformanceRecord,
    PolicyMeta,
    Tunable,
    name_problem,
    now,
    to_json_text,
)
from schedc.settings import kernel_release

SCX = {
    "scx_simple", "scx_lavd", "scx_bpfland", "scx_rusty", "scx_layered", "scx_flash",
    "scx_p2dq", "scx_central", "scx_flatcg", "scx_nest",
}  # fmt: skip
MACHINE = {"cpu_model": "Test CPU", "cores": 4, "fingerprint": "abc"}


def record(**over) -> dict:
    data = {
        "id": "20250101T000000Z-0123abcd",
        "policy": "ljf",
        "workload": "kernel_build",
        "metric": "makespan",
        "unit": "s",
        "direction": "lower",
        "values": [10.0, 12.0, 11.0],
        "baseline_values": [20.0, 22.0],
        "baseline_scheduler": "eevdf",
        "kernel": "6.12.1",
        "machine": MACHINE,
        "date": "2025-01-01T00:00:00Z",
    }
    data.update(over)
    return data


@pytest.mark.parametrize("name", ["ljf", "scx_lavd", "a", "p2", "x" * 24])
def test_valid_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("a/b", "path separator"),
        ("..\\x", "path separator"),
        ("a..b", "'..'"),
        ("..", "'..'"),
        ("Upper", "lowercase"),
        ("1abc", "starting with a letter"),
        ("x" * 25, "1-24"),
        ("with-dash", "lowercase letters, digits and '_'"),
    ],
)
def test_invalid_names_say_why(name, why):
    assert why in name_problem(name)


def meta(**over) -> dict:
    data = {
        "name": "ljf",
        "kind": "dsl",
        "source": "policy.sched",
        "content_hash": "sha256:00",
        "created": "2025-01-01T00:00:00Z",
        "updated": "2025-01-01T00:00:00Z",
    }
    data.update(over)
    return data


def test_meta_round_trips_as_stable_json():
    m = PolicyMeta.model_validate(
        meta(
            tags=["batch"],
            tunables=[{"name": "slice", "type": "duration", "default": 5, "unit": "ns"}],
        )
    )
    text = to_json_text(m)
    assert text.endswith("}\n") and json.loads(text)["schema_version"] == SCHEMA_VERSION
    assert to_json_text(PolicyMeta.model_validate_json(text)) == text


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"name": "../etc"}, "path separator"),
        ({"content_hash": "md5:1"}, "sha256"),
        ({"source": "policy.bpf.c"}, "policy.sched"),
        ({"kind": "catalog"}, "upstream"),
        ({"tagz": ["typo"]}, "Extra inputs"),
        ({"schema_version": SCHEMA_VERSION + 1}, "newer schedc"),
        ({"tags": ["Not A Tag"]}, "tag"),
        ({"parent": "ok@"}, "NAME@REV"),
        ({"version": 0}, "greater than or equal to 1"),
    ],
)
def test_invalid_meta_is_rejected_with_the_reason(over, message):
    with pytest.raises(ValidationError) as err:
        PolicyMeta.model_validate(meta(**over))
    assert message in str(err.value)


def test_tunable_ranges_are_checked():
    Tunable(name="--slice-us", type="int", default=5, min=1, max=10)
    with pytest.raises(ValidationError, match="min 10 > max 1"):
        Tunable(name="slice", type="int", min=10, max=1)
    with pytest.raises(ValidationError, match="out of range"):
        Tunable(name="slice", type="int", default=50, min=1, max=10)
    with pytest.raises(ValidationError, match="tunable name"):
        Tunable(name="has space", type="flag")


def test_record_derives_n_median_and_improvement_lower_is_better():
    r = PerformanceRecord.model_validate(record())
    assert (r.n, r.median, r.baseline_median) == (3, 11.0, 21.0)
    assert r.improvement == pytest.approx((21 - 11) / 21)


def test_record_improvement_higher_is_better_and_regressions_are_negative():
    better = PerformanceRecord.model_validate(record(direction="higher", values=[30.0]))
    worse = PerformanceRecord.model_validate(record(direction="higher", values=[10.5]))
    assert better.improvement == pytest.approx(9 / 21)
    assert worse.improvement == pytest.approx(-0.5)


def test_record_without_baseline_has_no_improvement():
    r = PerformanceRecord.model_validate(record(baseline_values=[], baseline_scheduler=None))
    assert r.improvement is None and r.baseline_median is None
    zero = PerformanceRecord.model_validate(record(baseline_values=[0.0]))
    assert zero.improvement is None


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"n": 5}, "n is 5"),
        ({"median": 99.0}, "not the median"),
        ({"improvement": 0.9}, "improvement does not follow"),
        ({"baseline_median": 1.0}, "baseline_median"),
        ({"values": []}, "at least 1"),
        ({"values": [float("nan")]}, "finite"),
        ({"direction": "up"}, "higher"),
        ({"workload": "Kernel Build"}, "workload id"),
        ({"id": "x"}, "pattern"),
    ],
)
def test_inconsistent_records_are_rejected(over, message):
    with pytest.raises(ValidationError) as err:
        PerformanceRecord.model_validate(record(**over))
    assert message in str(err.value)


def test_catalogue_is_package_data_and_covers_the_well_known_schedulers():
    raw = resources.files("schedc.repo").joinpath("catalog.json").read_text(encoding="utf-8")
    assert json.loads(raw)["schema_version"] == SCHEMA_VERSION
    metas = {m.name: m for m in catalog_metas()}
    assert SCX <= set(metas)
    for m in metas.values():
        assert m.kind == "catalog" and m.upstream is not None
        assert len(m.description) > 40 and m.tags and m.workloads and m.tunables
        assert m.upstream.usage.startswith(m.name) and len(m.upstream.notes) > 80


def test_machine_fingerprint_comes_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example  CPU   9000\n")
    assert cpu_model(info) == "Example CPU 9000"
    one, two = machine(info), machine(info)
    assert one == two and one.cores == (os.cpu_count() or 1) and len(one.fingerprint) == 12


def test_kernel_release_of_a_bzimage(tmp_path):
    assert kernel_release(tmp_path / "missing") is None
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 4096)
    assert kernel_release(junk) is None
    kernel = Path(os.environ.get("SCHEDC_KERNEL") or "/nonexistent")
    if kernel.is_file():  # the sandbox kit's kernel, when configured
        release = kernel_release(kernel)
        assert release and release[0].isdigit() and "." in release


def test_now_is_utc_seconds():
    stamp = now()
    assert stamp.microsecond == 0 and stamp.utcoffset().total_seconds() == 0
