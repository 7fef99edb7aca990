"""The repository's metadata as pydantic models: what `meta.json`, `verification.json` and the
performance records under `perf/` hold. Every file carries `schema_version`; a file written by
a newer schedc is refused with a message rather than half-read.

Models forbid unknown keys, so a typo in a hand-edited file is a validation error that `fsck`
reports (and `search` skips), not a silently ignored field.
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from schedc.dsl.language import NAME_RE
from schedc.profile.model import Profile, Target
from schedc.profile.similarity import ProfileShape, profile_shape

SCHEMA_VERSION = 1
# A performance record with a field of version 2 (profile, emulated, accelerator) says so;
# a record without them is written exactly as version 1 was, so older schedc still read it.
PERF_SCHEMA_VERSION = 2
PERF_V2_FIELDS = ("profile", "emulated", "accelerator")
NAME_RULES = "1-24 lowercase letters, digits and '_', starting with a letter"

_TAG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_WORKLOAD_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_METRIC_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:/%()-]{0,63}(?<! )")  # "cpu bogo ops/s"
_TUNABLE_RE = re.compile(r"(--?)?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a policy (it becomes a directory), or None. The rules are the
    DSL's scheduler-name rules, so a DSL policy's own name always fits."""
    if not name:
        return "the policy name is empty"
    if "/" in name or "\\" in name:
        return f"'{name}' contains a path separator"
    if ".." in name:
        return f"'{name}' contains '..'"
    if not NAME_RE.fullmatch(name):
        return f"'{name}' is not a valid policy name: use {NAME_RULES}"
    return None


def _name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _pattern(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"'{value}' is not a valid {what} (pattern {regex.pattern})")
        return value

    return AfterValidator(check)


def _parent(value: str) -> str:
    name, _, rev = value.partition("@")
    _name(name)
    if "@" in value and not rev:
        raise ValueError("a parent is NAME or NAME@REV")
    return value


PolicyName = Annotated[str, AfterValidator(_name)]
Tag = Annotated[str, _pattern(_TAG_RE, "tag")]
WorkloadId = Annotated[str, _pattern(_WORKLOAD_RE, "workload id")]
MetricName = Annotated[str, _pattern(_METRIC_RE, "metric name")]
Parent = Annotated[str, AfterValidator(_parent)]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Versioned(_Model):
    schema_version: int = SCHEMA_VERSION
    _newest: ClassVar[int] = SCHEMA_VERSION  # the newest version this schedc reads

    @model_validator(mode="after")
    def _known_schema(self) -> _Versioned:
        if self.schema_version > self._newest:
            raise ValueError(
                f"schema_version {self.schema_version} was written by a newer schedc "
                f"(this one reads {self._newest}); upgrade schedc"
            )
        if self.schema_version < 1:
            raise ValueError("schema_version must be >= 1")
        return self


Scalar = int | float | bool | str


class Tunable(_Model):
    """A knob: a DSL `param` (set before load) or an scx scheduler's command-line option."""

    name: Annotated[str, _pattern(_TUNABLE_RE, "tunable name")]
    type: Literal["duration", "int", "float", "bool", "flag", "string", "list"]
    default: Scalar | list[Scalar] | None = None
    min: int | float | None = None
    max: int | float | None = None
    unit: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _range(self) -> Tunable:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"tunable {self.name}: min {self.min} > max {self.max}")
        numeric = isinstance(self.default, int | float) and not isinstance(self.default, bool)
        if numeric:
            low = self.min if self.min is not None else -math.inf
            high = self.max if self.max is not None else math.inf
            if not low <= self.default <= high:  # type: ignore[operator]
                raise ValueError(f"tunable {self.name}: default {self.default} is out of range")
        return self


class ProgramResult(_Model):
    name: str
    insns_processed: int | None = None
    states: int | None = None
    verification_time_us: int | None = None


MAX_RUN_FAILED = 16  # failed workload processes kept per run record


class FailedProcess(_Model):
    """A workload process that died during a run test (a crash signal, or the kernel's kill)."""

    pid: int = Field(ge=0)
    comm: str = Field(max_length=64)
    signal: str = Field(min_length=1, max_length=20)  # "SIGSEGV"
    how: Literal["crashed", "killed by the kernel"]


class RunRecord(_Model):
    """`repo add --run WORKLOAD` (what `schedc verify --run` does): the policy attached in the
    sandbox guest while the workload ran. `ok` is derived — it attached, sched_ext stayed
    enabled throughout, and no workload process died — and a stated value must agree."""

    workload: WorkloadId
    seconds: float = Field(gt=0, le=3600)
    attached: bool
    enabled_throughout: bool
    ok: bool | None = None
    attach_error: str | None = Field(None, max_length=1000)
    exit_reason: str | None = Field(None, max_length=200)  # "runnable task stall", ...
    exit_message: str | None = Field(None, max_length=1000)
    processes_traced: bool = True  # False: the guest could not trace the workload's exits
    failed: list[FailedProcess] = Field(default=[], max_length=MAX_RUN_FAILED)
    failed_count: int = Field(default=0, ge=0)  # all of them, when more than are kept

    @model_validator(mode="after")
    def _consistent(self) -> RunRecord:
        if self.failed_count < len(self.failed):
            raise ValueError("failed_count is less than the failed processes listed")
        if not self.processes_traced and self.failed:
            raise ValueError("failed processes are listed but processes_traced is false")
        held = self.attached and self.enabled_throughout and self.failed_count == 0
        if self.ok is None:
            self.ok = held
        elif self.ok != held:
            raise ValueError(
                f"ok is {str(self.ok).lower()} but the run "
                + ("held" if held else "did not hold (attached, enabled, no process died)")
            )
        return self


class KernelVerification(_Model):
    """One kernel of the matrix that accepted the policy's object, and its run test."""

    kernel: str
    insns_processed: int | None = None
    programs: int | None = None
    run: RunRecord | None = None


class VerificationSummary(_Model):
    """How far the policy got before it was accepted. `unverified` policies passed compile and
    check only; `reason` says why the kernel verifier was not run. `kernel` is the first kernel
    (the only one without a matrix); `kernels` has every kernel that verified it."""

    status: Literal["verified", "unverified"]
    stage: Literal["check", "verifier", "run"]
    kernel: str | None = None
    kernels: list[KernelVerification] = []
    mode: Literal["host", "sandbox"] | None = None
    insns_processed: int | None = None
    programs: int | None = None
    warnings: int = 0
    reason: str | None = None
    date: datetime

    @model_validator(mode="after")
    def _runs(self) -> VerificationSummary:
        runs = [k.run for k in self.kernels if k.run is not None]
        if runs and self.status != "verified":
            raise ValueError("an unverified policy has no run test")
        if self.stage == "run" and not all(r.ok for r in runs):
            raise ValueError("stage is 'run' but a run test failed")
        if (
            self.stage != "run"
            and runs
            and all(r.ok for r in runs)
            and len(runs) == len(self.kernels)
        ):
            raise ValueError(f"stage is '{self.stage}' but the run test held on every kernel")
        return self

    @property
    def run_ok(self) -> bool | None:
        """None without a run test; else whether it held on every kernel."""
        runs = [k.run for k in self.kernels if k.run is not None]
        return all(r.ok for r in runs) if runs else None


MAX_SCENARIO_CHARS = 16 * 1024  # a stored scenario's text; the examples' are under 1 KiB
MAX_BEHAVIOUR_REPORTS = 24  # per policy version: scenarios x kernels
MAX_COUNTERS = 64  # per behaviour report (a DSL policy declares a handful)
# A DSL counter's name, or `#N` for a key of an object whose names are not known.
CounterName = Annotated[str, Field(pattern=r"^(?:[A-Za-z_][A-Za-z0-9_]{0,63}|#[0-9]{1,9})$")]
ExpectationKind = Literal[
    "placement",
    "order",
    "share",
    "wait",
    "completion",
    "starvation",
    "slice",
    "enabled",
    "exited",
    "trace",
]


def scenario_hash(text: str) -> str:
    """The content hash of a scenario's text, as a behaviour report names it."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class ExpectationRecord(_Model):
    """One expectation of a stored behaviour report, as `schedc test` measured it: the
    policy's value beside the baseline's (the kernel's default scheduler, same boot)."""

    kind: ExpectationKind
    groups: list[str] = []
    expected: str
    measured: float | None = None
    baseline: float | None = None
    unit: str = ""
    ok: bool
    line: int | None = None  # in the stored scenario text
    detail: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _finite(self) -> ExpectationRecord:
        for value in (self.measured, self.baseline):
            if value is not None and not math.isfinite(value):
                raise ValueError("measured and baseline must be finite numbers")
        return self


class BehaviourReport(_Model):
    """The result of one scenario run on one kernel (`repo add --scenario`): every expectation,
    the explicit ones and the implicit ones (enabled, exited, trace), with the scenario's text
    so that anyone can run it again. `ok` is derived: a report is passing only when every
    expectation held, and a file that says otherwise is refused (a hand edit cannot turn
    failing evidence into passing evidence)."""

    scenario: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    scenario_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    scenario_text: str = Field(min_length=1, max_length=MAX_SCENARIO_CHARS)
    content_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")  # the policy source tested
    kernel: str = Field(min_length=1, max_length=128)
    accelerator: str = Field(min_length=1, max_length=16)
    emulated: bool
    baseline: str = Field(min_length=1, max_length=64)
    runs: int = Field(ge=1)
    ok: bool | None = None
    expectations: list[ExpectationRecord] = Field(min_length=1)
    processes: dict[str, object] = {}
    # The policy's counters (`counter NAME counts EVENT`) at the end of its runs, summed over
    # CPUs and runs; {} for a policy without counters (and in reports stored before them).
    counters: dict[CounterName, Annotated[int, Field(ge=0)]] = Field(
        default={}, max_length=MAX_COUNTERS
    )
    date: datetime

    @model_validator(mode="after")
    def _consistent(self) -> BehaviourReport:
        if scenario_hash(self.scenario_text) != self.scenario_hash:
            raise ValueError("scenario_hash is not the hash of scenario_text")
        held = all(e.ok for e in self.expectations)
        if self.ok is None:
            self.ok = held
        elif self.ok != held:
            raise ValueError(
                f"ok is {str(self.ok).lower()} but "
                + ("every expectation held" if held else "an expectation failed")
            )
        return self

    @property
    def failed(self) -> list[ExpectationRecord]:
        return [e for e in self.expectations if not e.ok]


class VerificationReport(_Versioned):
    """`verification.json`: the summary, plus every check finding and per-program figures,
    and the behaviour reports of this source (one per scenario and kernel)."""

    summary: VerificationSummary
    target_kernel: str
    diagnostics: list[dict[str, object]] = []
    programs: list[ProgramResult] = []
    behaviour: list[BehaviourReport] = Field(default=[], max_length=MAX_BEHAVIOUR_REPORTS)

    @model_validator(mode="after")
    def _one_report_per_scenario_and_kernel(self) -> VerificationReport:
        seen: set[tuple[str, str]] = set()
        for report in self.behaviour:
            key = (report.scenario, report.kernel)
            if key in seen:
                raise ValueError(
                    f"two behaviour reports for scenario '{report.scenario}' on kernel "
                    f"{report.kernel}"
                )
            seen.add(key)
        return self


def merge_behaviour(
    previous: list[BehaviourReport], new: list[BehaviourReport]
) -> list[BehaviourReport]:
    """The reports to keep: the new ones, and the earlier ones (of the same source) for the
    other scenarios and kernels. Raises ValueError when they are more than the file holds."""
    replaced = {(r.scenario, r.kernel) for r in new}
    kept = [r for r in previous if (r.scenario, r.kernel) not in replaced]
    merged = [*kept, *new]
    if len(merged) > MAX_BEHAVIOUR_REPORTS:
        raise ValueError(
            f"a policy keeps at most {MAX_BEHAVIOUR_REPORTS} behaviour reports "
            f"(scenarios x kernels); this add would make {len(merged)}"
        )
    return merged


class Machine(_Model):
    cpu_model: str
    cores: int = Field(ge=1)
    fingerprint: str


class Upstream(_Model):
    """Where a catalogue scheduler lives and how it is started."""

    project: str
    path: str | None = None
    binary: str
    language: str
    maturity: Literal["production", "example", "experimental"]
    usage: str
    notes: str = ""


class PolicyMeta(_Versioned):
    """`meta.json` of one policy directory."""

    name: PolicyName
    kind: Literal["dsl", "c", "catalog"]
    description: str = ""
    tags: list[Tag] = []
    workloads: list[WorkloadId] = []
    author: str | None = None
    agent: str | None = None
    parent: Parent | None = None
    version: int = Field(default=1, ge=1)
    source: Literal["policy.sched", "policy.bpf.c"] | None = None
    content_hash: str | None = None
    compiler_version: str | None = None
    target_kernels: list[str] = []
    tunables: list[Tunable] = []
    verification: VerificationSummary | None = None
    upstream: Upstream | None = None
    created: datetime
    updated: datetime

    @model_validator(mode="after")
    def _kind_fields(self) -> PolicyMeta:
        if self.kind == "catalog":
            if self.upstream is None:
                raise ValueError("a catalog entry needs 'upstream'")
            if self.source is not None:
                raise ValueError("a catalog entry has no source file")
            return self
        want = "policy.sched" if self.kind == "dsl" else "policy.bpf.c"
        if self.source != want:
            raise ValueError(f"a {self.kind} policy's source is '{want}'")
        if not (self.content_hash or "").startswith("sha256:"):
            raise ValueError("content_hash must be 'sha256:<hex>'")
        return self


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def improvement_of(
    median: float, baseline: float | None, direction: Literal["higher", "lower"]
) -> float | None:
    """Relative gain over the baseline in the good direction: +0.25 is 25% better."""
    if baseline is None or baseline == 0:
        return None
    gain = (median - baseline) if direction == "higher" else (baseline - median)
    return round(gain / abs(baseline), 6)


MAX_TARGET_ARGS = 64
MAX_TARGET_ARG_CHARS = 512
MAX_TARGET_PIDS = 256


class RecordProfile(_Model):
    """The workload profile a record was measured under (`--profile PROFILE.json`): its
    compact shape (what search compares), when it was made, and what was profiled."""

    created: datetime
    target: Target
    shape: ProfileShape

    @model_validator(mode="after")
    def _bounded_target(self) -> RecordProfile:
        t = self.target
        if len(t.command) > MAX_TARGET_ARGS or any(
            len(a) > MAX_TARGET_ARG_CHARS for a in t.command
        ):
            raise ValueError(
                f"target.command: at most {MAX_TARGET_ARGS} arguments of "
                f"{MAX_TARGET_ARG_CHARS} characters"
            )
        if len(t.pids) > MAX_TARGET_PIDS:
            raise ValueError(f"target.pids: at most {MAX_TARGET_PIDS}")
        if t.cgroup is not None and len(t.cgroup) > 4096:
            raise ValueError("target.cgroup: at most 4096 characters")
        return self

    @classmethod
    def of(cls, profile: Profile) -> RecordProfile:
        """What a record keeps of `profile` (a long command line is cut to the bounds)."""
        t = profile.target
        target = t.model_copy(
            update={
                "command": [a[:MAX_TARGET_ARG_CHARS] for a in t.command[:MAX_TARGET_ARGS]],
                "pids": t.pids[:MAX_TARGET_PIDS],
                "cgroup": t.cgroup[:4096] if t.cgroup is not None else None,
            }
        )
        return cls(created=profile.created, target=target, shape=profile_shape(profile))


class PerformanceRecord(_Versioned):
    """One measurement of a policy under a workload, against a baseline scheduler. `n`,
    `median`, `baseline_median` and `improvement` are derived from the values; when a file
    states them they must agree (a hand-edit that breaks this is caught).

    Version 2 adds three optional fields: `profile` (the workload profile it was measured
    under), `emulated` (true for timings of an emulated CPU: the sandbox under TCG) and
    `accelerator` (tcg, kvm, none). A record that has one of them is version 2; one without
    them is stored as version 1, as before."""

    _newest: ClassVar[int] = PERF_SCHEMA_VERSION

    id: str = Field(pattern=r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
    policy: PolicyName
    policy_version: int | None = None
    content_hash: str | None = None
    workload: WorkloadId
    workload_description: str = ""
    metric: MetricName
    unit: str = ""
    direction: Literal["higher", "lower"]
    values: list[float] = Field(min_length=1)
    n: int
    median: float
    baseline_values: list[float] = []
    baseline_median: float | None = None
    baseline_scheduler: str | None = None
    improvement: float | None = None
    tunables: dict[str, str] = {}
    kernel: str
    machine: Machine
    date: datetime
    author: str | None = None
    agent: str | None = None
    notes: str = ""
    profile: RecordProfile | None = None  # version 2
    emulated: bool | None = None  # version 2
    accelerator: str | None = Field(None, pattern=r"^[a-z0-9_-]{1,16}$")  # version 2

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if any(data.get(k) is not None for k in PERF_V2_FIELDS):
            data.setdefault("schema_version", PERF_SCHEMA_VERSION)
        values = data.get("values")
        if isinstance(values, list) and values and all(_is_number(v) for v in values):
            data.setdefault("n", len(values))
            data.setdefault("median", _median(values))
        base = data.get("baseline_values")
        if isinstance(base, list) and base and all(_is_number(v) for v in base):
            data.setdefault("baseline_median", _median(base))
        median, baseline = data.get("median"), data.get("baseline_median")
        if (
            _is_number(median)
            and _is_number(baseline)
            and data.get("direction")
            in (
                "higher",
                "lower",
            )
        ):
            data.setdefault("improvement", improvement_of(median, baseline, data["direction"]))
        return data

    @model_validator(mode="after")
    def _consistent(self) -> PerformanceRecord:
        if not all(math.isfinite(v) for v in [*self.values, *self.baseline_values]):
            raise ValueError("values must be finite numbers")
        if self.n != len(self.values):
            raise ValueError(f"n is {self.n} but there are {len(self.values)} values")
        if not math.isclose(self.median, _median(self.values), rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(f"median {self.median} is not the median of the values")
        if self.baseline_values:
            expected = _median(self.baseline_values)
            if self.baseline_median is None or not math.isclose(
                self.baseline_median, expected, rel_tol=1e-9, abs_tol=1e-12
            ):
                raise ValueError("baseline_median is not the median of baseline_values")
        want = improvement_of(self.median, self.baseline_median, self.direction)
        if (want is None) != (self.improvement is None) or (
            want is not None
            and self.improvement is not None
            and not math.isclose(want, self.improvement, rel_tol=1e-6, abs_tol=1e-9)
        ):
            raise ValueError("improvement does not follow from median and baseline_median")
        given = [k for k in PERF_V2_FIELDS if getattr(self, k) is not None]
        if given and self.schema_version < PERF_SCHEMA_VERSION:
            raise ValueError(
                f"{', '.join(given)} needs schema_version {PERF_SCHEMA_VERSION} "
                f"(this record says {self.schema_version})"
            )
        if self.accelerator == "tcg" and self.emulated is False:
            raise ValueError("accelerator tcg emulates the CPU, but emulated is false")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_v2(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Version-2 fields that are not set are left out: such a record is a version-1 file."""
        data = handler(self)
        if isinstance(data, dict):
            for key in PERF_V2_FIELDS:
                if data.get(key, 0) is None:
                    del data[key]
        return data

    @property
    def is_emulated(self) -> bool:
        """Timings of an emulated CPU (TCG). Records from `schedc bench` before version 2
        say so only in their notes, which name the accelerator (`sandbox: …; tcg; TCG: …`)."""
        if self.emulated is not None:
            return self.emulated
        if self.accelerator is not None:
            return self.accelerator == "tcg"
        return "; tcg;" in self.notes


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_json_text(model: BaseModel) -> str:
    """The stored form: indented, keys in field order, one trailing newline (diffs stay small)."""
    return model.model_dump_json(indent=2) + "\n"
