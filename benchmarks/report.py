"""Regenerates benchmarks/README.md: every example policy against EEVDF on every `schedc bench`
workload, in the sched_ext sandbox guest — one boot per workload, all policies in it.

    python benchmarks/report.py [--runs 5] [--duration 2] [--scale 0.5] [--cpus 2]
                                [--workload NAME]... [--json results.json] [--note TEXT]
    python benchmarks/report.py --from-json results.json   # rewrite the README only
    python benchmarks/report.py --check [--from-json results.json] [--targets FILE]

Needs the sandbox settings (SCHEDC_KERNEL, SCHEDC_BPFTOOL, SCHEDC_BTF), QEMU, virtme-ng,
rt-tests, stress-ng, gcc and make. With the defaults it takes about 20 minutes under TCG on a
2-core machine.

`--check` is the regression guard of the examples' targets (benchmarks/targets.toml, e.g.
every example's cyclictest p99 within 1.5x of EEVDF's): it judges fresh measurements (of the
workloads the targets name, unless --workload says which; keep them with --json) or kept ones
(--from-json), prints one line per example and workload target — met, MISSED (with the ratio,
its interval and the bound), inconclusive, not measured, exempt (with its reason) — and writes
no README. Exit status 0: every measured target met; 1: a target missed or inconclusive (too
few runs for an interval); 2: a bad targets or results file (file:line and what is wrong), or
a workload that could not run. A `within X` target is missed only when the whole 95% interval
lies beyond X (schedc/bench/targets.py, docs/bench.md "Targets"). Run it before regenerating
the README, which shows the same judgements in its "Targets" section.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.bench.targets import (  # noqa: E402
    Judgement,
    TargetsError,
    check,
    example_names,
    exit_status,
    load_targets,
    summary,
)
from schedc.cli.output import write_atomically  # noqa: E402
from schedc.settings import EnvironmentProblem, Settings, load_settings  # noqa: E402
from schedc.workloads import RECIPES, WorkloadParams  # noqa: E402

if TYPE_CHECKING:
    from schedc.bench.runner import BenchPolicy

README = ROOT / "benchmarks" / "README.md"
# The README's hand-kept tail: everything from this line on survives a regeneration.
KEEP = "<!-- report.py keeps what follows: figures of the other benchmarks -->"
REFERENCE = "scx_simple.bpf.c"  # the kernel's own example scheduler, a row of its own
TARGETS = ROOT / "benchmarks" / "targets.toml"
MARK = {"better": "**better**", "worse": "*worse*", "within noise": "≈", "failed": "FAILED",
        "inconclusive": "?"}


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def reference_policy(settings: Settings, build: Path) -> BenchPolicy | None:
    """The kernel's own scx_simple (tools/sched_ext, from the `kernel_examples` setting),
    measured beside the examples as a reference: a hand-written sched_ext scheduler."""
    from schedc.bench.runner import compile_for_bench

    folder = Path(settings.kernel_examples) if settings.kernel_examples else None
    if folder is None or not (folder / REFERENCE).is_file():
        print(f"no {REFERENCE} in the kernel_examples setting ({folder}): measured without "
              "the reference (scripts/setup.sh --kit DIR sets it)", file=sys.stderr)
        return None
    build.mkdir(parents=True, exist_ok=True)
    done = compile_for_bench([folder / REFERENCE], settings, build,
                             include_dirs=[folder / "include"])
    if not done.ok:
        raise SystemExit(f"{folder / REFERENCE} did not compile: "
                         + "; ".join(str(d) for d in done.diagnostics))
    return done.policies[0]


def measure(args: argparse.Namespace) -> dict[str, object]:
    # The runner brings the whole compiler; `--check --from-json` needs none of it.
    from schedc.bench.runner import bench_objects, compile_for_bench

    settings = load_settings()
    if args.cpus:
        settings = dataclasses.replace(settings, vm_cpus=args.cpus)
    params = WorkloadParams(duration=args.duration, scale=args.scale, cpus=settings.vm_cpus)
    examples = sorted((ROOT / "examples").glob("*.sched"))
    results: list[dict[str, object]] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        compiled = compile_for_bench(examples, settings, Path(tmp))
        if not compiled.ok:
            raise SystemExit(f"examples did not compile: {compiled.failed}")
        reference = reference_policy(settings, Path(tmp) / "reference")
        if reference is not None:
            compiled.policies.append(reference)
        for workload in args.workload:
            started = time.monotonic()
            try:
                found = bench_objects(
                    compiled.policies, [workload], settings, runs=args.runs, warmup=1,
                    params=params, progress=lambda m: print(m, file=sys.stderr, flush=True),
                )
            except EnvironmentProblem as problem:
                errors[workload] = problem.message
                print(f"{workload}: {problem}", file=sys.stderr)
                continue
            timings[workload] = round(time.monotonic() - started, 1)
            for r in found:
                data = r.to_json()
                data["policy"]["source"] = _display(Path(r.policy.source))
                results.append(data)
    return {"results": results, "errors": errors, "boot_seconds": timings,
            "params": params.to_json(), "runs": args.runs}


def render_targets(judgements: list[Judgement], targets_file: str) -> list[str]:
    """The README's "Targets" section: every example's target and how this measurement met it,
    as `--check` judges it."""
    lines = [
        "",
        f"## Targets (`{targets_file}`)",
        "",
        "What each example must achieve against EEVDF, judged as `python benchmarks/report.py",
        "--check` does ([docs/bench.md](../docs/bench.md), \"Targets\"): `within X` is missed only",
        "when the whole 95% interval lies beyond X; `better` needs the whole interval on the",
        "better side of 1; a run the kernel ejected is a miss.",
        "",
        "| example | workload | target | status | measured | why |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for j in judgements:
        t = j.target
        status = "**MISSED**" if j.status == "missed" else j.status
        detail, why = (x.replace("|", "\\|") for x in (j.detail, t.reason or ""))
        lines.append(
            f"| {t.example} | {t.workload} | {t.describe()} | {status} | {detail} | {why} |"
        )
    lines += ["", summary(judgements) + "."]
    return lines


def render(
    data: dict[str, object], judgements: list[Judgement] | None = None,
    targets_file: str = "benchmarks/targets.toml",
) -> str:
    from schedc.bench.runner import TCG_NOTE

    results: list[dict] = data["results"]  # type: ignore[assignment]
    workloads = list(dict.fromkeys(r["workload"] for r in results))
    policies = list(dict.fromkeys(r["policy"]["name"] for r in results))
    env = results[0]["environment"] if results else {}
    by = {(r["workload"], r["policy"]["name"]): r for r in results}
    lines = [
        "# Policy benchmarks",
        "",
        "Every example policy (`examples/*.sched`) against the kernel's default scheduler",
        "(EEVDF) on every `schedc bench` workload ([docs/bench.md](../docs/bench.md)). Generated",
        "by `python benchmarks/report.py`; do not edit by hand. `scx_simple` is the kernel's own",
        "example scheduler (tools/sched_ext, hand-written C), measured the same way as a reference.",
        "",
        f"> **Caveat.** {TCG_NOTE}. The figures say how the policies compare with each other",
        "> and with EEVDF *in this sandbox*; they do not predict performance on real hardware.",
        "> The runs are short and few: read the verdicts, which take the run-to-run noise into",
        "> account, rather than the raw ratios.",
        *([f"> {data['note']}"] if data.get("note") else []),
        "",
        f"- kernel {env.get('kernel')}, {env.get('vcpus')} vCPUs, {env.get('memory_kb')} kB, "
        f"accelerator {env.get('accelerator')}, {env.get('qemu')}",
        f"- host: {env.get('host_cpu')} ({env.get('host_cpus')} CPUs); "
        f"packages: {', '.join(f'{k} {v}' for k, v in (env.get('packages') or {}).items())}",
        f"- {data.get('runs')} measured runs per side after 1 warm-up; per run the baseline, then "
        "each policy in turn (one boot per workload, all policies in it); workload parameters "
        f"{json.dumps(data.get('params'))}",
        f"- generated {env.get('date')} with schedc {env.get('schedc')}",
        "",
        "## Summary: ratio policy/EEVDF",
        "",
        "Each cell is the ratio of medians (policy over EEVDF) and the verdict: **better** or",
        "*worse* when the 95% bootstrap interval excludes 1, ≈ when it contains 1 (within noise),",
        "FAILED when the kernel ejected the policy. For time and latency lower is better, for",
        "bogo ops/s higher is better.",
        "",
        "| policy | " + " | ".join(workloads) + " |",
        "| --- | " + " | ".join("---" for _ in workloads) + " |",
    ]
    for p in policies:
        cells = []
        for w in workloads:
            r = by.get((w, p))
            if r is None:
                cells.append("–")
                continue
            ratio = r["ratio"]
            cells.append(f"{_num(ratio['value'])} {MARK.get(ratio['verdict'], ratio['verdict'])}")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    if judgements:
        lines += render_targets(judgements, targets_file)
    for w in workloads:
        first = next(r for r in results if r["workload"] == w)
        base = first["baseline"]
        recipe = first["environment"]["recipe"]
        lines += [
            "",
            f"## {w}: {first['metric']} ({first['unit']}, {first['direction']} is better)",
            "",
            f"{recipe['summary']}. Command: `{recipe['command']}`.",
            "",
            f"EEVDF: median {_num(base['median'])} {first['unit']} "
            f"(min {_num((base['spread'] or {}).get('min'))}, "
            f"max {_num((base['spread'] or {}).get('max'))}; "
            f"values {', '.join(_num(v) for v in base['values'])}).",
            "",
            "| policy | median | min – max | ratio | 95% interval | verdict | failed runs |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for p in policies:
            r = by.get((w, p))
            if r is None:
                continue
            pol, ratio = r["policy"], r["ratio"]
            s = pol["spread"] or {}
            ci = ratio["ci95"]
            lines.append(
                f"| {p} | {_num(pol['median'])} | {_num(s.get('min'))} – {_num(s.get('max'))} | "
                f"{_num(ratio['value'])} | "
                f"{f'{_num(ci[0])} – {_num(ci[1])}' if ci else '–'} | {ratio['verdict']} | "
                f"{pol['failed_runs']} |"
            )
        beyond = sorted({
            r["policy"]["name"] for r in results if r["workload"] == w
            for run in r["policy"]["runs"] if run["extra"].get("overflow")
        } | ({"EEVDF"} if any(run["extra"].get("overflow") for run in base["runs"]) else set()))
        if beyond:
            lines += ["", "p99 beyond the 100 ms histogram in some runs of: " + ", ".join(beyond)
                      + " (such a run counts its largest latency, a lower bound of its p99)."]
        failures = {
            run["error"] for r in results if r["workload"] == w
            for run in r["policy"]["runs"] if not run["ok"]
        }
        if failures:
            lines += ["", "Failed runs: " + "; ".join(sorted(failures))]
    errors: dict[str, str] = data.get("errors") or {}  # type: ignore[assignment]
    if errors:
        lines += ["", "## Not measured", ""]
        lines += [f"- {w}: {e}" for w, e in errors.items()]
    times = data.get("boot_seconds") or {}
    if times:
        lines += ["", "Wall-clock time per workload (one boot each, policy compilation excluded): "
                  + ", ".join(f"{w} {s:.0f} s" for w, s in times.items()) + "."]  # type: ignore[union-attr]
    return "\n".join(lines) + "\n"


def kept_sections(path: Path) -> str:
    """What follows KEEP in the README being replaced: the other benchmarks' figures
    (fuzzing, behaviour, CLI start-up), which their own scripts print and this run does not
    measure. Nothing when the file or the marker is missing."""
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    at = old.find(KEEP)
    return "" if at < 0 else "\n" + old[at:]


def read_results(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetsError([f"{path}: cannot read the results: {exc.strerror}"]) from None
    except json.JSONDecodeError as exc:
        raise TargetsError([f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}"]) from None
    except UnicodeDecodeError:
        raise TargetsError([f"{path}: not JSON: not UTF-8 text"]) from None
    return as_report_results(data, path)


def as_report_results(data: object, path: Path) -> object:
    """What --json keeps, and `schedc bench --format json` output in the shape check() reads:
    the bench envelope (docs/json.md: `results` a list, also for one result) is read as it is;
    a bench that stopped (its `error`) is a problem of the file; one bare result object, as
    schedc before the envelope printed for one policy (benchmarks/measured/), is a list of one."""
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        raise TargetsError([f"{path}: the bench did not run: {data['error'].get('message')}"])
    if isinstance(data, dict) and isinstance(data.get("policy"), dict) and "results" not in data:
        return {"results": [data]}
    return data


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--cpus", type=int)
    ap.add_argument("--workload", action="append", choices=list(RECIPES))
    ap.add_argument("--json", type=Path, help="also keep the raw results here")
    ap.add_argument("--from-json", type=Path, help="render the README from kept results (--json, "
                    "or `schedc bench --format json` output, old or new shape)")
    ap.add_argument("--out", type=Path, default=README)
    ap.add_argument("--note", help="a line for the README's caveat, e.g. about the host's load")
    ap.add_argument("--check", action="store_true",
                    help="judge the results against the targets instead of writing the README: "
                         "exit 1 when an example misses one")
    ap.add_argument("--targets", type=Path, default=TARGETS,
                    help="the examples' targets (default benchmarks/targets.toml)")
    args = ap.parse_args()
    if args.check and (args.note or args.out != README):
        ap.error("--check writes no README: --note and --out do not go with it")
    try:
        targets = load_targets(args.targets, example_names(ROOT / "examples"), list(RECIPES))
        if args.from_json:
            data = read_results(args.from_json)
            judgements = check(targets, data, str(args.from_json))
        else:
            if not args.workload:
                args.workload = targets.workloads if args.check else list(RECIPES)
            data = measure(args)
            if args.json:
                write_atomically(args.json, json.dumps(data, indent=2) + "\n")
            judgements = check(targets, data)
    except TargetsError as problem:
        for line in problem.problems:
            print(f"{line}", file=sys.stderr)
        return 2
    if args.check:
        for j in judgements:
            print(j.line())
        print(summary(judgements))
        return exit_status(judgements)
    if args.note:
        data["note"] = args.note
        if args.json:
            write_atomically(args.json, json.dumps(data, indent=2) + "\n")
    text = render(data, judgements, _display(args.targets)) + kept_sections(args.out)
    write_atomically(args.out, text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
