"""The example policies' performance targets against EEVDF (benchmarks/targets.toml) and the
judgement of measured results against them: what `python benchmarks/report.py --check` says.

The file has a `[default]` table, a target per workload for every example, and an
`[examples.NAME]` table per example whose targets differ: a workload there replaces the
default's target for that example, or adds one. A target is one of

    { within = X }        no more than X times worse than EEVDF (X > 0)
    { better = true }     better than EEVDF: the 95% bootstrap interval excludes 1
    { exempt = "why" }    no bound: the trade-off the example makes on purpose (examples only)

and `within` and `better` may carry a `reason` (say why a bound differs from the default).

How a measured ratio is judged against noise (docs/bench.md, "Targets"): `within X` is
**missed** only when the whole interval lies beyond X, i.e. the example is certainly worse than
allowed; an interval that reaches past X but starts inside it is met, with a note. `better`
needs certainty the other way: the interval must lie wholly on the better side of 1, as the
verdict `better` does. A policy run that failed (ejected by the kernel, did not attach, did not
finish) is a miss whatever the target, exemptions included: the exemption is about the metric,
not about the policy working. With no interval (fewer than 3 runs a side, or EEVDF completed
no run) a target is **inconclusive**, which the check counts against itself: it does not vouch
for what it could not judge.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from schedc.workloads import HIGHER, LOWER

Kind = Literal["within", "better", "exempt"]
Status = Literal["met", "missed", "inconclusive", "not measured", "exempt"]

# The statuses that make `--check` exit 1.
FAILING: frozenset[str] = frozenset({"missed", "inconclusive"})


class TargetsError(Exception):
    """The targets file (or a results file) is not usable: one `file:line: message` a problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Target:
    example: str
    workload: str
    kind: Kind
    bound: float | None = None  # `within`'s factor
    reason: str | None = None  # `exempt`'s reason, or why a bound differs from the default
    line: int = 0  # of the target in the file
    from_default: bool = False

    def describe(self) -> str:
        if self.kind == "within":
            return f"within {_num(self.bound)}x of EEVDF"
        if self.kind == "better":
            return "better than EEVDF"
        return "exempt"


@dataclass(frozen=True)
class Targets:
    path: str
    targets: tuple[Target, ...]  # every example's, examples sorted, then in the file's order

    @property
    def workloads(self) -> list[str]:
        """Every workload a target names, in the file's order."""
        return list(dict.fromkeys(t.workload for t in self.targets))


# --- reading the file ----------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def _key_parts(dotted: str) -> list[str]:
    return [p.strip().strip("\"'") for p in dotted.split(".")]


def line_of(text: str, path: Sequence[str]) -> int:
    """The line of the table or key at `path` (e.g. ["examples", "ljf", "cyclictest", "within"]):
    tomllib keeps no positions, so the text is scanned for the deepest table header on the path
    and then, below it, for each further key in turn. 1 when nothing matches."""
    lines = text.split("\n")
    headers = [(n, _key_parts(m.group(1))) for n, line in enumerate(lines, 1)
               if (m := _HEADER.match(line))]
    start, end, depth = 1, len(lines), 0
    for n, parts in headers:
        if len(parts) > depth and list(path[: len(parts)]) == parts:
            start, depth = n, len(parts)
            end = next((m - 1 for m, _ in headers if m > n), len(lines))
    line = start
    for key in path[depth:]:
        pattern = re.compile(rf"(^|[\s{{,.])[\"']?{re.escape(key)}[\"']?\s*[=.]")
        found = next((n for n in range(line, end + 1) if pattern.search(lines[n - 1])), None)
        if found is None:
            break
        line = found
    return line


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _target(
    value: object, where: list[str], example: str, workload: str, default: bool,
    text: str, path: str, problems: list[str],
) -> Target | None:
    def problem(message: str, at: list[str] = where) -> None:
        problems.append(f"{path}:{line_of(text, at)}: {message}")

    name = ".".join(where)
    if not isinstance(value, dict):
        problem(f"{name}: a target is a table, e.g. {{ within = 1.5 }}, {{ better = true }} or "
                f"{{ exempt = \"the trade-off it makes on purpose\" }}")
        return None
    unknown = sorted(set(value) - {"within", "better", "exempt", "reason"})
    for key in unknown:
        problem(f"{name}: unknown key '{key}'; a target has one of within, better, exempt "
                f"(and, with within or better, a reason)", [*where, key])
    kinds = [k for k in ("within", "better", "exempt") if k in value]
    if len(kinds) != 1:
        if not unknown:
            problem(f"{name}: a target has exactly one of within, better, exempt"
                    + (f", not {' and '.join(kinds)}" if kinds else ""))
        return None
    kind = cast(Kind, kinds[0])
    raw = value[kind]
    line = line_of(text, [*where, kind])
    bound = None
    if kind == "within":
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) \
                or raw <= 0:
            problem(f"{name}.within: the bound is a number above 0 (the factor by which the "
                    f"example may be worse than EEVDF, e.g. 1.5), not {raw!r}", [*where, kind])
            return None
        bound = float(raw)
    elif kind == "better" and raw is not True:
        problem(f"{name}.better: must be true (for no bound, use exempt = \"why\"), not {raw!r}",
                [*where, kind])
        return None
    elif kind == "exempt":
        if default:
            problem(f"{name}: an exemption belongs to an example ([examples.NAME]), with the "
                    f"trade-off its documentation states", [*where, kind])
            return None
        if not isinstance(raw, str) or not raw.strip():
            problem(f"{name}.exempt: the reason is a non-empty string: the trade-off the "
                    f"example makes on purpose, as its documentation states it", [*where, kind])
            return None
    reason = value.get("reason")
    if "reason" in value:
        if kind == "exempt":
            problem(f"{name}: an exemption's text is its reason; drop 'reason'",
                    [*where, "reason"])
            return None
        if not isinstance(reason, str) or not reason.strip():
            problem(f"{name}.reason: a non-empty string", [*where, "reason"])
            return None
    if kind == "exempt":
        reason = raw
    return Target(example, workload, kind, bound, reason.strip() if reason else None, line,
                  default)


def parse_targets(
    text: str, path: str, examples: Collection[str], workloads: Collection[str]
) -> Targets:
    """Every example's targets from the file's text, validated strictly against the example
    names and the workload names; raises TargetsError listing every problem at its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _AT_LINE.search(message)
        where = f"{m.group(1)}:{m.group(2)}" if m else "1"
        raise TargetsError([f"{path}:{where}: not valid TOML: {_AT_LINE.sub('', message)}"]) \
            from None
    problems: list[str] = []
    for key in sorted(set(data) - {"default", "examples"}):
        problems.append(f"{path}:{line_of(text, [key])}: unknown table or key '{key}'; the "
                        f"file has [default] and [examples.NAME] tables")
    choose_workload = f"choose one of: {', '.join(workloads)}"

    def workload_table(table: object, where: list[str], example: str, default: bool
                       ) -> dict[str, Target]:
        out: dict[str, Target] = {}
        if not isinstance(table, dict):
            problems.append(f"{path}:{line_of(text, where)}: {'.'.join(where)} is a table of "
                            f"workload = target")
            return out
        for workload, value in table.items():
            if workload not in workloads:
                problems.append(f"{path}:{line_of(text, [*where, workload])}: unknown workload "
                                f"'{workload}'; {choose_workload}")
                continue
            target = _target(value, [*where, workload], example, workload, default, text,
                             path, problems)
            if target is not None:
                out[workload] = target
        return out

    defaults = workload_table(data.get("default", {}), ["default"], "*", True)
    overrides: dict[str, dict[str, Target]] = {}
    per_example = data.get("examples", {})
    if not isinstance(per_example, dict):
        problems.append(f"{path}:{line_of(text, ['examples'])}: examples is a table of "
                        f"[examples.NAME] tables")
        per_example = {}
    for example, table in per_example.items():
        if example not in examples:
            problems.append(f"{path}:{line_of(text, ['examples', example])}: unknown example "
                            f"'{example}' (no examples/{example}.sched); choose one of: "
                            f"{', '.join(sorted(examples))}")
            continue
        overrides[example] = workload_table(table, ["examples", example], example, False)
    if problems:
        raise TargetsError(problems)
    resolved: list[Target] = []
    for example in sorted(examples):
        mine = overrides.get(example, {})
        for workload, target in defaults.items():
            if workload not in mine:
                resolved.append(Target(example, workload, target.kind, target.bound,
                                       target.reason, target.line, True))
        resolved.extend(mine.values())
    return Targets(path, tuple(resolved))


def example_names(examples_dir: Path) -> list[str]:
    """The example policies' names, as bench names them (the file name up to its first dot)."""
    return sorted(p.name.split(".")[0] for p in examples_dir.glob("*.sched"))


def load_targets(path: Path, examples: Collection[str], workloads: Collection[str]) -> Targets:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetsError([f"{path}: cannot read the targets file: {exc}"]) from None
    return parse_targets(text, str(path), examples, workloads)


# --- judging results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    target: Target
    status: Status
    detail: str
    ratio: float | None = None
    ci95: tuple[float, float] | None = None
    not_run: bool = False  # the workload could not run at all (an environment problem)

    def line(self) -> str:
        t = self.target
        status = "MISSED" if self.status == "missed" else self.status
        target = "" if t.kind == "exempt" else f" ({t.describe()})"
        why = f": {t.reason}" if self.status == "exempt" else ""
        return f"{status}: {t.example} on {t.workload}{target}: {self.detail}{why}"


def _interval(ratio: float | None, ci: tuple[float, float] | None) -> str:
    text = f"ratio {_num(ratio)}"
    return text + (f", 95% interval {_num(ci[0])}–{_num(ci[1])}" if ci else ", no interval")


def judge(target: Target, result: Mapping[str, Any] | None, error: str | None = None
          ) -> Judgement:
    """One target against one result object of `schedc bench --format json` (None: the example
    was not measured on the workload; `error`: why the whole workload was not)."""
    if result is None:
        why = f"the workload could not run: {error}" if error else "not in the results"
        return Judgement(target, "not measured", why, not_run=error is not None)
    policy: dict[str, Any] = result["policy"]
    ratio_data: dict[str, Any] = result["ratio"]
    direction: str = result["direction"]
    ratio: float | None = ratio_data["value"]
    ci: tuple[float, float] | None = (
        (ratio_data["ci95"][0], ratio_data["ci95"][1]) if ratio_data["ci95"] else None
    )
    where = _interval(ratio, ci)

    def verdict(status: Status, detail: str) -> Judgement:
        return Judgement(target, status, detail, ratio, ci)

    runs: list[dict[str, Any]] = policy["runs"]
    failed = [r for r in runs if not r["ok"]]
    if failed:
        exempt = " (exempt from the bound, not from working)" if target.kind == "exempt" else ""
        return verdict("missed", f"FAILED: {len(failed)} of {len(runs)} runs failed "
                                 f"({failed[0]['error']}){exempt}")
    if target.kind == "exempt":
        return verdict("exempt", f"{where}; not bounded")
    if ratio is None or ci is None:
        return verdict("inconclusive", f"{ratio_data['statement']}; a target needs an interval "
                                       f"to be judged")
    lo, hi = ci
    lower = direction == LOWER
    if target.kind == "better":
        ok = hi < 1.0 if lower else lo > 1.0
        if ok:
            return verdict("met", f"{where}, wholly {'below' if lower else 'above'} 1 "
                                  f"({direction} is better)")
        return verdict("missed", f"{where}: {ratio_data['verdict']}, not better "
                                 f"(the interval must lie {'below' if lower else 'above'} 1; "
                                 f"{direction} is better)")
    bound = target.bound or 0.0
    # In ratio terms: at most `bound` for lower-is-better, at least 1/bound for higher.
    limit = bound if lower else 1.0 / bound
    sign = "≤" if lower else "≥"
    certainly_beyond = lo > limit if lower else hi < limit
    surely_inside = hi <= limit if lower else lo >= limit
    if certainly_beyond:
        side = "above" if lower else "below"
        return verdict("missed", f"{where}: the whole interval is {side} the bound "
                                 f"{_num(limit)}, certainly more than {_num(bound)}x worse "
                                 f"({direction} is better)")
    note = "" if surely_inside else " (the interval reaches past it: within noise of the bound)"
    return verdict("met", f"{where}; bound {sign} {_num(limit)}{note}")


def _result_problem(path: str, message: str) -> TargetsError:
    return TargetsError([f"{path}: {message}"])


def index_results(
    data: object, path: str
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, str]]:
    """(workload, policy) → result object, and workload → why it was not measured, from what
    report.py keeps with --json; TargetsError when the data is not of that shape."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise _result_problem(path, "not a report.py results file: an object with a "
                                    "\"results\" list (python benchmarks/report.py --json FILE)")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for n, r in enumerate(data["results"], 1):
        try:
            key = (str(r["workload"]), str(r["policy"]["name"]))
            if r["direction"] not in (LOWER, HIGHER):
                raise ValueError(f"its direction is {r['direction']!r}, not lower or higher")
            ratio = r["ratio"]
            _ = (ratio["verdict"], ratio["statement"])
            for run in r["policy"]["runs"]:
                _ = (run["ok"], run["error"])
            ci, value = ratio["ci95"], ratio["value"]
            numbers = [*(ci if isinstance(ci, list) else [ci]), value]
            if ci is not None and (not isinstance(ci, list) or len(ci) != 2) or not all(
                x is None or isinstance(x, int | float) and not isinstance(x, bool)
                for x in numbers
            ):
                raise ValueError("its ratio's value or ci95 is not a number (or a pair of them)")
        except KeyError as exc:
            raise _result_problem(path, f"result {n} is not a bench result: it has no "
                                        f"{exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise _result_problem(path, f"result {n} is not a bench result: "
                                        f"{exc if isinstance(exc, ValueError) else 'a wrong type'}"
                                  ) from None
        out[key] = r
    errors = data.get("errors") or {}
    if not isinstance(errors, dict):
        raise _result_problem(path, "\"errors\" is not an object of workload: message")
    return out, {str(k): str(v) for k, v in errors.items()}


def check(targets: Targets, data: object, path: str = "<results>") -> list[Judgement]:
    """Every target judged against the results report.py measured or kept."""
    results, errors = index_results(data, path)
    return [judge(t, results.get((t.workload, t.example)), errors.get(t.workload))
            for t in targets.targets]


def exit_status(judgements: Sequence[Judgement]) -> int:
    """1 when a target was missed or could not be judged, else 2 when a workload a target names
    could not run (an environment problem: its message says what to install), else 0."""
    if any(j.status in FAILING for j in judgements):
        return 1
    return 2 if any(j.not_run for j in judgements) else 0


def summary(judgements: Sequence[Judgement]) -> str:
    counts = {s: sum(j.status == s for j in judgements)
              for s in ("met", "missed", "inconclusive", "exempt", "not measured")}
    return f"{len(judgements)} targets: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
