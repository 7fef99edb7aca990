"""The scenario file: task groups for the guest, and the expectations to check on its trace.

A scenario is TOML validated by pydantic (every table forbids unknown keys). tomllib keeps no
line numbers, so each `[[group]]` and `[[expect]]` table's line is found by scanning the text,
and a validation error is reported at the line of the key it is about (docs/behaviour.md).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from schedc.diagnostics import Diagnostic, Severity

TASK_COMM_LEN = 16  # the kernel's, with the NUL: a comm has at most 15 bytes
MAX_CPUS = 8
MAX_TASKS = 64

_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s)\s*$")


def parse_duration(value: object) -> float:
    """Seconds from `"2ms"`, `"1.5s"`, `"500us"` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '2ms'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
        raise ValueError(f"'{value}' is not a duration (write e.g. '2ms', '1.5s', '500us')")
    raise ValueError("a duration is a number of seconds or a string such as '2ms'")


def parse_cpus(value: object) -> tuple[int, ...]:
    """CPU ids from `"0-1,3"`, `"2"`, `[0, 1]` or `3`, sorted and without repeats."""
    if isinstance(value, bool):
        raise ValueError("a CPU set is a list of CPU ids or a string such as '0-1,3'")
    if isinstance(value, int):
        items: list[object] = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, str):
        items = [p.strip() for p in value.split(",") if p.strip()]
    else:
        raise ValueError("a CPU set is a list of CPU ids or a string such as '0-1,3'")
    cpus: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            cpus.add(item)
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", str(item))
        if not m:
            raise ValueError(f"'{item}' is not a CPU id or range such as '0-3'")
        low, high = int(m.group(1)), int(m.group(2) or m.group(1))
        if high < low:
            raise ValueError(f"the CPU range '{item}' runs backwards")
        cpus.update(range(low, high + 1))
    if not cpus:
        raise ValueError("a CPU set names at least one CPU")
    return tuple(sorted(cpus))


Duration = Annotated[float, BeforeValidator(parse_duration)]
CpuSet = Annotated[tuple[int, ...], BeforeValidator(parse_cpus)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Spin(_Strict):
    """Burn CPU: `work` of CPU time, or `for` a wall-clock time, or (neither) until the end."""

    work: Duration | None = Field(default=None, gt=0)
    for_: Duration | None = Field(default=None, alias="for", gt=0)

    @model_validator(mode="after")
    def _one_bound(self) -> Spin:
        if self.work is not None and self.for_ is not None:
            raise ValueError("give spin either 'work' (CPU time) or 'for' (wall time), not both")
        return self


class Cycle(_Strict):
    """Run `run` of CPU time, sleep `sleep`; `times` cycles, or `for` a wall time, or until
    the end."""

    run: Duration = Field(gt=0)
    sleep: Duration = Field(gt=0)
    times: int | None = Field(default=None, ge=1)
    for_: Duration | None = Field(default=None, alias="for", gt=0)


class PingPong(_Strict):
    """Wake the partner group's task of the same index through a pipe and wait for its answer;
    `work` of CPU time per turn. The group listed first sends first."""

    partner: str
    times: int | None = Field(default=None, ge=1)
    for_: Duration | None = Field(default=None, alias="for", gt=0)
    work: Duration = Field(default=0.0, ge=0)


class Requests(_Strict):
    """schbench's shape: every `every`, send a request to each of this task's workers (the
    tasks of the `serve` group `workers`, split evenly among this group's tasks) without
    waiting for an answer; `for` a wall time, or until the end."""

    workers: str
    every: Duration = Field(gt=0)
    for_: Duration | None = Field(default=None, alias="for", gt=0)


class Serve(_Strict):
    """A worker: wait for a request from its `requests` task, run `work` of CPU time for it,
    wait for the next; stop when the requests task stops."""

    work: Duration = Field(default=0.0, ge=0)


BEHAVIOURS = ("spin", "cycle", "pingpong", "requests", "serve")


class Group(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    comm: str = Field(min_length=1)
    # Each task a thread named `comm` of its own process named `process` (task.process.comm)
    process: str | None = Field(default=None, min_length=1)
    count: int = Field(default=1, ge=1, le=MAX_TASKS)
    cgroup: str | None = Field(default=None, pattern=r"^(/[A-Za-z0-9_.-]+)+$")
    nice: int = Field(default=0, ge=-20, le=19)
    affinity: CpuSet | None = None
    spin: Spin | None = None
    cycle: Cycle | None = None
    pingpong: PingPong | None = None
    requests: Requests | None = None
    serve: Serve | None = None
    line: int = Field(default=0, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> Group:
        for what, name in (("comm", self.comm), ("process", self.process)):
            if name is not None and len(name.encode()) >= TASK_COMM_LEN:
                raise ValueError(
                    f"{what} '{name}' is longer than the kernel's {TASK_COMM_LEN - 1} bytes"
                )
        kinds = [k for k in BEHAVIOURS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a group has exactly one behaviour: spin, cycle, pingpong, requests or serve"
                + (f" (it has {', '.join(kinds)})" if kinds else "")
            )
        if self.cgroup and any(part.startswith(".") for part in self.cgroup.split("/")[1:]):
            raise ValueError(f"cgroup '{self.cgroup}' may not have a part starting with '.'")
        return self

    @property
    def behaviour(self) -> str:
        return next(k for k in BEHAVIOURS if getattr(self, k) is not None)


class Start(_Strict):
    """`together`: every task waits at a barrier and all are released at once. `ordered`:
    the groups are released in `order`, `delay` apart. `cpu`: the CPU the runner moves to
    after forking the tasks, so it releases them from there and never holds another CPU."""

    mode: Literal["together", "ordered"] = "together"
    order: list[str] = Field(default_factory=list)
    delay: Duration = 0.0
    cpu: int | None = Field(default=None, ge=0)


class _Expect(_Strict):
    line: int = Field(default=0, exclude=True)

    def groups(self) -> list[str]:
        raise NotImplementedError


class Placement(_Expect):
    kind: Literal["placement"]
    group: str
    cpus: CpuSet
    min_fraction: float = Field(default=0.99, gt=0, le=1)

    def groups(self) -> list[str]:
        return [self.group]


class Order(_Expect):
    kind: Literal["order"]
    group: str
    before: str | None = None
    max_rank: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> Order:
        if (self.before is None) == (self.max_rank is None):
            raise ValueError("an order expectation has exactly one of 'before' and 'max_rank'")
        return self

    def groups(self) -> list[str]:
        return [self.group] + ([self.before] if self.before else [])


class Share(_Expect):
    kind: Literal["share"]
    groups_: list[str] = Field(alias="groups", min_length=2, max_length=2)
    ratio: float = Field(gt=0)
    tolerance: float = Field(default=0.2, ge=0, lt=1)

    def groups(self) -> list[str]:
        return list(self.groups_)


class Wait(_Expect):
    kind: Literal["wait"]
    group: str
    percentile: float = Field(default=99, gt=0, le=100)
    max: Duration | None = None
    below: str | None = None
    vs_baseline: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> Wait:
        given = [k for k in ("max", "below", "vs_baseline") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a wait expectation has exactly one of 'max', 'below', 'vs_baseline'")
        return self

    def groups(self) -> list[str]:
        return [self.group] + ([self.below] if self.below else [])


class Completion(_Expect):
    kind: Literal["completion"]
    group: str | None = None
    vs_baseline: float | None = Field(default=None, gt=0)
    max: Duration | None = None

    @model_validator(mode="after")
    def _one(self) -> Completion:
        if (self.vs_baseline is None) == (self.max is None):
            raise ValueError("a completion expectation has exactly one of 'vs_baseline', 'max'")
        return self

    def groups(self) -> list[str]:
        return [self.group] if self.group else []


class Starvation(_Expect):
    kind: Literal["starvation"]
    group: str
    max_wait: Duration = Field(gt=0)

    def groups(self) -> list[str]:
        return [self.group]


class Slice(_Expect):
    kind: Literal["slice"]
    group: str
    median: Duration = Field(gt=0)
    tolerance: float = Field(default=0.25, ge=0, lt=1)

    def groups(self) -> list[str]:
        return [self.group]


Expectation = Annotated[
    Placement | Order | Share | Wait | Completion | Starvation | Slice,
    Field(discriminator="kind"),
]


class Scenario(_Strict):
    description: str = ""
    cpus: int = Field(default=2, ge=1, le=MAX_CPUS)
    duration: Duration = Field(gt=0, le=60)
    # The fewest runs it is measured with (each figure is the median of its runs): for a
    # scenario whose figure swings from run to run under TCG. `--runs N` asks for more.
    runs: int = Field(default=1, ge=1, le=10)
    start: Start = Field(default_factory=Start)
    group: list[Group] = Field(min_length=1)
    expect: list[Expectation] = Field(default_factory=list)
    # Filled in by load_scenario, not read from the file.
    name: str = Field(default="", exclude=True)
    path: str = Field(default="", exclude=True)

    def group_named(self, name: str) -> Group:
        return next(g for g in self.group if g.name == name)


class ScenarioError(Exception):
    """A scenario file that cannot be used, with a diagnostic per problem."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics


# --- line numbers ------------------------------------------------------------------------------

_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")


def _tables(text: str) -> list[tuple[str, int, bool]]:
    """(name, 1-based line, is an array table) of every table header, in order."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _TABLE.match(line)
        if m:
            out.append((m.group(1), n, line.lstrip().startswith("[[")))
    return out


def table_lines(text: str, name: str) -> list[int]:
    """The lines of the `[[name]]` headers, in order: the n-th is the n-th array element."""
    return [n for t, n, array in _tables(text) if t == name and array]


def _range_of(text: str, loc: Sequence[object]) -> tuple[int, int] | None:
    """The lines (first, last) of the table a pydantic location points into; the top level
    (before the first table) when it names no table."""
    headers = _tables(text)
    total = len(text.splitlines())
    start: int | None = None
    if len(loc) > 1 and isinstance(loc[0], str) and isinstance(loc[1], int):
        lines = table_lines(text, loc[0])
        if loc[1] >= len(lines):
            return None
        start = lines[loc[1]]
    elif loc and isinstance(loc[0], str):
        start = next((n for t, n, array in headers if t == loc[0] and not array), None)
    if start is None:
        return 1, (headers[0][1] - 1 if headers else total)
    later = [n for _t, n, _a in headers if n > start]
    return start, (later[0] - 1 if later else total)


def line_of(text: str, loc: Sequence[object]) -> int | None:
    """The line of the key a validation error is about, else of its table, else None."""
    found = _range_of(text, loc) if loc else None
    if found is None:
        return None
    start, end = found
    lines = text.splitlines()
    for key in reversed([k for k in loc if isinstance(k, str)]):
        name = {"for_": "for", "groups_": "groups"}.get(key, key)
        pattern = re.compile(rf"(^|[{{,\s]){re.escape(name)}\s*=")
        for n in range(start, min(end, len(lines)) + 1):
            if pattern.search(lines[n - 1]):
                return n
    is_table = start > 1 or bool(_TABLE.match(lines[0] if lines else ""))
    return start if is_table else None


def _message(err: Any) -> str:
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    kind_tags = {"placement", "order", "share", "wait", "completion", "starvation", "slice"}
    loc = [p for p in loc if p not in kind_tags]
    where = ".".join(p.removesuffix("_") for p in loc)
    if err.get("type") == "extra_forbidden":
        return f"unknown key '{where}'"
    if err.get("type") == "union_tag_invalid":
        return f"unknown expectation kind; choose one of: {', '.join(sorted(kind_tags))}"
    return f"{where}: {msg}" if where else msg


def _diag(
    code: str, message: str, path: str, line: int | None, hint: str | None = None
) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, path, line, 1 if line else None, hint=hint)


# --- checks that span tables -------------------------------------------------------------------


def _check_requests(s: Scenario, names: dict[str, Group], path: str) -> list[Diagnostic]:
    """Each `requests` group names a `serve` group whose count is a multiple of its own, and
    each `serve` group has exactly one `requests` group."""
    out: list[Diagnostic] = []
    served: dict[str, str] = {}
    for g in s.group:
        if g.requests is None:
            continue
        workers = names.get(g.requests.workers)
        problem = None
        if workers is None:
            problem = f"no workers group '{g.requests.workers}'"
        elif workers.serve is None:
            problem = f"its workers '{workers.name}' must be a group with serve = {{...}}"
        elif workers.count % g.count:
            problem = (
                f"its {g.count} tasks split the workers '{workers.name}' evenly: their count "
                f"({workers.count}) must be a multiple of {g.count}"
            )
        elif workers.name in served:
            problem = f"the workers '{workers.name}' already serve '{served[workers.name]}'"
        else:
            served[workers.name] = g.name
        if problem:
            out.append(_diag("T003", f"group '{g.name}': {problem}", path, g.line))
    for g in s.group:
        if g.serve is not None and g.name not in served and not out:
            out.append(
                _diag(
                    "T003",
                    f"group '{g.name}' serves requests, but no group sends it any: give "
                    f"another group requests = {{ workers = \"{g.name}\", every = \"2ms\" }}",
                    path,
                    g.line,
                )
            )
    return out


def _cross_check(s: Scenario, path: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    names: dict[str, Group] = {}
    for g in s.group:
        if g.name in names:
            out.append(_diag("T003", f"two groups are named '{g.name}'", path, g.line))
        names[g.name] = g
        if g.affinity and max(g.affinity) >= s.cpus:
            out.append(
                _diag(
                    "T003",
                    f"group '{g.name}': affinity names CPU {max(g.affinity)}, but the guest "
                    f"has {s.cpus} CPUs (0-{s.cpus - 1})",
                    path,
                    g.line,
                )
            )
    for g in s.group:
        if g.pingpong is None:
            continue
        partner = names.get(g.pingpong.partner)
        if partner is None:
            out.append(
                _diag(
                    "T003",
                    f"group '{g.name}': no partner group '{g.pingpong.partner}'",
                    path,
                    g.line,
                )
            )
        elif partner.pingpong is None or partner.pingpong.partner != g.name:
            out.append(
                _diag(
                    "T003",
                    f"group '{g.name}': its partner '{partner.name}' must be a pingpong group "
                    f"whose partner is '{g.name}'",
                    path,
                    g.line,
                )
            )
        elif partner.count != g.count:
            out.append(
                _diag(
                    "T003",
                    f"pingpong groups '{g.name}' and '{partner.name}' need the same count",
                    path,
                    g.line,
                )
            )
        elif partner is g:
            out.append(_diag("T003", f"group '{g.name}' cannot be its own partner", path, g.line))
    out += _check_requests(s, names, path)
    if s.start.cpu is not None and s.start.cpu >= s.cpus:
        out.append(
            _diag(
                "T003",
                f"start.cpu is CPU {s.start.cpu}, but the guest has {s.cpus} CPUs "
                f"(0-{s.cpus - 1})",
                path,
                None,
            )
        )
    if s.start.mode == "ordered":
        unknown = [n for n in s.start.order if n not in names]
        missing = [n for n in names if n not in s.start.order]
        if unknown or missing or len(set(s.start.order)) != len(s.start.order):
            out.append(
                _diag(
                    "T003",
                    "start.order must name every group once"
                    + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                    + (f"; missing: {', '.join(missing)}" if missing else ""),
                    path,
                    None,
                )
            )
    elif s.start.order:
        out.append(_diag("T003", 'start.order needs start.mode = "ordered"', path, None))
    for e in s.expect:
        for name in e.groups():
            if name not in names:
                out.append(
                    _diag(
                        "T003",
                        f"{e.kind} expectation names group '{name}', which the scenario does "
                        f"not have (groups: {', '.join(names)})",
                        path,
                        e.line,
                    )
                )
        if isinstance(e, Placement) and max(e.cpus) >= s.cpus:
            out.append(
                _diag(
                    "T003",
                    f"placement names CPU {max(e.cpus)}, but the guest has {s.cpus} CPUs",
                    path,
                    e.line,
                )
            )
        if isinstance(e, Share) and e.groups_[0] == e.groups_[1]:
            out.append(_diag("T003", "share compares a group with itself", path, e.line))
    return out


_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)")
_AT_END = re.compile(r"\s*\(at end of document\)")


def toml_error_position(error: str, text: str) -> tuple[str, int, int]:
    """tomllib's message without its position, and the line and column it names: "(at line N,
    column M)", or "(at end of document)", which is the end of the last line (a file that
    ends inside a string or a table). A message with neither is at line 1, column 1."""
    m = _AT_LINE.search(error)
    if m:
        return _AT_LINE.sub("", error), int(m.group(1)), int(m.group(2))
    lines = text.split("\n")  # tomllib counts "\n" only
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    end = _AT_END.search(error)
    if end:
        return _AT_END.sub("", error) + " (at the end of the file)", len(lines), len(lines[-1]) + 1
    return error, 1, 1


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """A validated Scenario from TOML text; raises ScenarioError with diagnostics at lines."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, line, column = toml_error_position(str(exc), text)
        diag = Diagnostic(Severity.ERROR, "T001", f"not valid TOML: {message}", path, line, column)
        raise ScenarioError([diag]) from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        diags = [
            _diag("T002", _message(err), path, line_of(text, err.get("loc", ())))
            for err in exc.errors()
        ]
        raise ScenarioError(diags) from None
    for g, line in zip(scenario.group, table_lines(text, "group"), strict=False):
        g.line = line
    for e, line in zip(scenario.expect, table_lines(text, "expect"), strict=False):
        e.line = line
    scenario.path = path
    scenario.name = Path(path).name.split(".")[0]
    problems = _cross_check(scenario, path)
    if problems:
        raise ScenarioError(problems)
    return scenario


def load_scenario(path: Path) -> Scenario:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(
            [_diag("T001", f"cannot read the scenario: {exc.strerror}", str(path), None)]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        diag = Diagnostic(
            Severity.ERROR,
            "T001",
            f"the scenario is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
            str(path),
            line,
            column,
        )
        raise ScenarioError([diag]) from None
    return parse_scenario(text, str(path))
