"""`schedc check --format sarif` against the official SARIF 2.1.0 schema (tests/data/sarif/, see
its README), run as code scanning runs it: several files, DSL policies with E and W findings
and C policies with K findings. Every code schedc can report has its texts, help URIs are
absolute or absent, file URIs are relative to the root given, and fingerprints survive a rerun
and lines inserted above the finding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft4Validator, FormatChecker

from schedc.cli.check import sarif_rules
from schedc.cli.exit import Exit
from schedc.code_docs import code_docs
from schedc.diagnostics import Diagnostic, Severity
from schedc.sarif import FINGERPRINT, SARIF_SCHEMA, sarif_log
from schedc.verifier.rules.catalog import RULES
from tests.conftest import ROOT
from tests.test_check_cli import BAD_DSL, DATA, INCLUDE, cache_env, run  # noqa: F401
from tests.test_errors_doc import all_codes

SCHEMA_FILE = ROOT / "tests" / "data" / "sarif" / "sarif-schema-2.1.0.json"
BASE = "https://example.org/schedc/blob/0123abc/docs/"
# A policy that compiles with a warning only (W007: a param nothing uses).
WARN_DSL = (
    'scheduler warned "FIFO with a param nothing reads" {\n'
    "  param unused = 5ms\n"
    "  class all otherwise\n"
    "  queue runq for all fifo\n"
    "}\n"
)


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return Draft4Validator(schema, format_checker=FormatChecker())


def schema_errors(validator: Draft4Validator, log: object) -> list[str]:
    return sorted(
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(log)
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository with two DSL and two C policies under policies/."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "bad.sched").write_text(BAD_DSL)
    (folder / "warned.sched").write_text(WARN_DSL)
    for name in ("K020_wrong_callback.bpf.c", "K071_printk_hot.bpf.c"):
        shutil.copy(DATA / name, folder / name)
    return tmp_path


def check_sarif(root: Path, *args: str, env: dict[str, str], only: str | None = None) -> dict:
    """The SARIF of checking every policy of `root` (or the one named `only`)."""
    files = sorted(str(p) for p in (root / "policies").iterdir() if only in (None, p.name))
    proc = run(*files, *INCLUDE, "--format", "sarif", "--sarif-root", str(root), *args, env=env)
    assert proc.returncode in (Exit.OK, Exit.ERRORS), proc.stderr
    return json.loads(proc.stdout)


def test_the_stored_schema_is_the_official_one(validator):
    assert validator.schema["id"] == SARIF_SCHEMA
    assert validator.schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")


def test_the_format_checker_refuses_a_relative_help_uri(validator):
    """The negative control: the schema with its format checker does see a helpUri that is no
    URI (what every rule had before), so a pass below means something."""
    bad = sarif_log([], [], root=ROOT)
    bad["runs"][0]["tool"]["driver"]["rules"] = [{"id": "K020", "helpUri": "docs/checks.md#k020"}]
    assert any("helpUri" in e and "uri" in e for e in schema_errors(validator, bad))


def test_check_output_validates_with_rules_texts_and_relative_uris(
    project, validator, toolchain, cache_env  # noqa: F811
):
    log = check_sarif(project, "--sarif-base-uri", BASE.rstrip("/"), env=cache_env)
    assert schema_errors(validator, log) == []
    (run_,) = log["runs"]
    codes = {r["ruleId"] for r in run_["results"]}
    assert {c[0] for c in codes} >= {"E", "W", "K"}, codes
    assert {"W007", "K020", "K071"} <= codes
    rules = run_["tool"]["driver"]["rules"]
    assert set(RULES) | codes == {r["id"] for r in rules}
    docs = code_docs()
    for rule in rules:
        doc = docs[rule["id"]]
        assert rule["fullDescription"]["text"] == doc.description
        assert doc.title in rule["help"]["text"] and rule["help"]["markdown"].count("```") >= 2
        assert rule["helpUri"] == f"{BASE}{doc.document}#{doc.anchor}"
    by_id = {r["id"]: r for r in rules}
    assert by_id["K020"]["helpUri"] == (
        BASE + "checks.md#k020-kfunc-called-from-a-callback-where-the-kernel-forbids-it"
    )
    assert by_id["W007"]["helpUri"] == BASE + "errors.md#w007-param-is-never-used"
    assert by_id["K020"]["shortDescription"]["text"] == RULES["K020"].summary
    assert run_["originalUriBaseIds"]["SRCROOT"]["uri"] == project.resolve().as_uri() + "/"
    locations = [loc["physicalLocation"] for r in run_["results"] for loc in r["locations"]]
    assert {loc["artifactLocation"]["uri"] for loc in locations} == {
        "policies/bad.sched", "policies/warned.sched",
        "policies/K020_wrong_callback.bpf.c", "policies/K071_printk_hot.bpf.c",
    }
    assert {loc["artifactLocation"]["uriBaseId"] for loc in locations} == {"SRCROOT"}
    assert all(FINGERPRINT in r["partialFingerprints"] for r in run_["results"])


def test_without_a_base_uri_rules_have_no_help_uri(project, validator, cache_env):  # noqa: F811
    log = check_sarif(project, env=cache_env, only="bad.sched")
    assert schema_errors(validator, log) == []
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules and all("helpUri" not in r and r["help"]["text"] for r in rules)
    # The setting gives what the option gives.
    log = check_sarif(
        project, env={**cache_env, "SCHEDC_SARIF_BASE_URI": BASE}, only="bad.sched"
    )
    assert schema_errors(validator, log) == []
    assert all(r["helpUri"].startswith(BASE) for r in log["runs"][0]["tool"]["driver"]["rules"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--sarif-base-uri", "docs/"], {}, "--sarif-base-uri: 'docs/' is not an absolute URI"),
        ([], {"SCHEDC_SARIF_BASE_URI": "//host/docs"},
         "sarif_base_uri (from SCHEDC_SARIF_BASE_URI): '//host/docs' is not an absolute URI"),
        (["--sarif-root", "/nonexistent/root"], {}, "--sarif-root /nonexistent/root: no such folder"),
    ],
)
def test_bad_sarif_options_exit_2_before_any_check(args, env, message, tmp_path):
    policy = tmp_path / "bad.sched"
    policy.write_text(BAD_DSL)
    proc = run(str(policy), "--format", "sarif", *args, env=env)
    assert proc.returncode == Exit.USAGE and message in proc.stderr, proc.stderr
    assert "hint: " in proc.stderr and proc.stdout == ""


def fingerprints(log: dict) -> list[tuple[str, int, str]]:
    return [
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["partialFingerprints"][FINGERPRINT],
        )
        for r in log["runs"][0]["results"]
    ]


def test_fingerprints_are_stable_across_runs_and_line_shifts(
    project, toolchain, cache_env  # noqa: F811
):
    name = "K071_printk_hot.bpf.c"
    first = check_sarif(project, env=cache_env, only=name)
    shifted_file = project / "policies" / name
    shifted_file.write_text("/* three\n * more\n * lines */\n" + shifted_file.read_text())
    shifted = check_sarif(project, env=cache_env, only=name)

    def of(log: dict, code: str) -> list[tuple[int, str]]:
        return [(line, fp) for rule, line, fp in fingerprints(log) if rule == code]

    before, after = of(first, "K071"), of(shifted, "K071")
    assert [line + 3 for line, _ in before] == [line for line, _ in after] == [14, 21]
    assert [fp for _, fp in before] == [fp for _, fp in after]
    assert len({fp for _, fp in before}) == 2  # two findings, two fingerprints
    # A finding whose line changes gets a new fingerprint; the other keeps its own.
    text = shifted_file.read_text().replace('bpf_printk("enqueue");', 'bpf_printk("enq");')
    shifted_file.write_text(text)
    changed = of(check_sarif(project, env=cache_env, only=name), "K071")
    assert changed[0] == after[0] and changed[1][1] != after[1][1]


def test_the_same_line_twice_gets_two_fingerprints(tmp_path):
    policy = tmp_path / "p.bpf.c"
    policy.write_text("x;\nx;\n")
    diags = [Diagnostic(Severity.WARNING, "K071", "m", str(policy), n, 1) for n in (1, 2)]
    results = sarif_log(diags, root=tmp_path)["runs"][0]["results"]
    first, second = (r["partialFingerprints"][FINGERPRINT] for r in results)
    assert first.split(":")[0] == second.split(":")[0] and first != second


def test_every_code_schedc_reports_has_its_texts(validator, tmp_path):
    """Each code any part of schedc emits (the E, W, C, V, S codes of docs/errors.md and the K
    rules) gets a rule with a title, a full description and help from its documentation, and a
    log with all of them validates."""
    codes = sorted(all_codes() | set(RULES))
    assert {"E001", "W007", "V001", "K020", "C001", "S900"} <= set(codes)
    diags = [Diagnostic(Severity.ERROR, c, f"a {c} finding", str(tmp_path / "p.sched"), 1, 1)
             for c in codes]
    log = sarif_log(diags, sarif_rules(), root=tmp_path, base_uri=BASE)
    assert schema_errors(validator, log) == []
    docs = code_docs()
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == codes
    for rule in rules:
        doc = docs.get(rule["id"])
        assert doc is not None, f"{rule['id']} has no section in docs/errors.md or docs/checks.md"
        assert doc.title and len(doc.description) > 30, rule["id"]
        assert rule["shortDescription"]["text"] == (
            RULES[rule["id"]].summary if rule["id"] in RULES else doc.title
        )
        assert rule["fullDescription"]["text"] == doc.description
        assert rule["help"]["markdown"].endswith(doc.markdown)
        assert rule["helpUri"] == f"{BASE}{doc.document}#{doc.anchor}"
