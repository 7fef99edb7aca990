"""Every workload that runs in the sandbox guest, in one table (`WORKLOADS`): the loads of
`schedc verify --run` and the recipes of `schedc bench`. Adding a workload is one entry here.

The guest sees the host's root file system, so the host's hackbench, stress-ng, cyclictest and
compiler run there; `needs` names each program and its Debian package. A workload has one or
both of two forms:

- a run-test load (`run_test`): a shell command that keeps the guest busy for SECONDS while a
  policy is attached (`verify --run`); the run test kills it when the time is up.
- a benchmark (`script`, `parse`, `metric`, ...): a small POSIX shell script for one run, sized
  by WorkloadParams so that one run takes a few seconds under TCG, and a parser that turns the
  script's output into a Sample: the metric's value plus a few details. docs/bench.md
  documents every benchmark; the parsers are tested on outputs captured from the real tools
  (tests/data/bench/).

`RECIPES` (the benchmarks) and `RUN_LOADS` (the run-test loads) are views of the one table.
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOWER, HIGHER = "lower", "higher"  # which direction of a metric is better
DEFAULT_WORKLOAD = "mixed"  # of `verify --run`


class ParseError(ValueError):
    """The workload's output does not hold its metric (it failed, or its tool changed)."""


@dataclass(frozen=True)
class WorkloadParams:
    """How big each run is. `duration` sizes the timed recipes (stress-ng, cyclictest), in
    seconds; `scale` multiplies the fixed amount of work of the others (hackbench,
    batch-makespan, compile), whose default takes a few seconds under TCG; `cpus` is the
    guest's vCPU count, which sizes the load (e.g. two stress-ng workers per vCPU)."""

    duration: float = 3.0
    scale: float = 1.0
    cpus: int = 2

    def to_json(self) -> dict[str, object]:
        return {"duration": self.duration, "scale": self.scale, "cpus": self.cpus}


@dataclass(frozen=True)
class Sample:
    value: float
    extra: dict[str, float | int | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """One entry of WORKLOADS: a run-test load, a benchmark, or both (see the module's text)."""

    name: str
    summary: str
    needs: tuple[tuple[str, str], ...] = ()  # (program, Debian package)
    # `verify --run`: the shell command that keeps the guest busy for the given seconds
    run_test: Callable[[float], str] | None = None
    # `schedc bench`: all of metric, unit, direction, script, parse and expected_seconds, or none
    metric: str = ""
    unit: str = ""
    direction: str = ""  # LOWER or HIGHER is better
    script: Callable[[WorkloadParams], str] | None = None  # body of the guest's sh script
    parse: Callable[[str], Sample] | None = None
    expected_seconds: Callable[[WorkloadParams], float] | None = None  # one run under TCG
    files: Callable[[WorkloadParams], dict[str, str]] | None = None  # beside the script

    def __post_init__(self) -> None:
        bench = (self.metric, self.unit, self.direction, self.script, self.parse)
        given = [bool(x) for x in (*bench, self.expected_seconds)]
        if any(given) and not all(given):
            raise ValueError(f"workload {self.name!r}: a benchmark needs all its fields or none")
        if self.direction and self.direction not in (LOWER, HIGHER):
            raise ValueError(f"workload {self.name!r}: direction must be {LOWER!r} or {HIGHER!r}")
        if self.run_test is None and not self.is_benchmark:
            raise ValueError(f"workload {self.name!r} is neither a run-test load nor a benchmark")

    @property
    def is_benchmark(self) -> bool:
        return self.script is not None

    def command_line(self, params: WorkloadParams) -> str:
        """The benchmark's script as one line, for the record and the docs."""
        if self.script is None:
            raise ValueError(f"workload {self.name!r} is not a benchmark")
        text = ""
        for line in self.script(params).splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                text += ("" if not text else " " if text.endswith("&") else "; ") + line
        return text


# --- parsers ---------------------------------------------------------------------------------

_HACKBENCH_TIME = re.compile(r"^Time:\s*([0-9]+(?:\.[0-9]+)?)\s*$", re.M)


def parse_hackbench(text: str) -> Sample:
    """hackbench's own timing: the last `Time: SECONDS` line."""
    found = _HACKBENCH_TIME.findall(text)
    if not found:
        raise ParseError("hackbench printed no 'Time:' line")
    tasks = re.search(r"\(== (\d+) tasks\)", text)
    extra: dict[str, float | int | bool] = {"tasks": int(tasks.group(1))} if tasks else {}
    return Sample(float(found[-1]), extra)


# `stress-ng: metrc: [PID] NAME OPS REAL USR SYS OPS/S(real) OPS/S(usr+sys) [more columns]`;
# stress-ng before 0.14 said `info:` where newer ones say `metrc:`.
_STRESS_ROW = re.compile(
    r"^stress-ng: (?:metrc|info):\s+\[\d+\]\s+(?P<name>[a-z][\w-]*)\s+(?P<ops>\d+)\s+"
    r"(?P<real>[\d.]+)\s+(?P<usr>[\d.]+)\s+(?P<sys>[\d.]+)\s+(?P<rate>[\d.]+)\s+"
    r"(?P<cpu_rate>[\d.]+)",
    re.M,
)


def parse_stress_ng_rows(text: str) -> dict[str, dict[str, float]]:
    """Every stressor's row of `--metrics-brief`, by stressor name."""
    rows: dict[str, dict[str, float]] = {}
    for m in _STRESS_ROW.finditer(text):
        rows[m.group("name")] = {
            "bogo_ops": float(m.group("ops")),
            "real_s": float(m.group("real")),
            "usr_s": float(m.group("usr")),
            "sys_s": float(m.group("sys")),
            "ops_per_s": float(m.group("rate")),
            "ops_per_cpu_s": float(m.group("cpu_rate")),
        }
    return rows


def parse_stress_ng(text: str, stressor: str = "cpu") -> Sample:
    """The stressor's bogo ops per second of wall-clock time (the `real time` rate)."""
    rows = parse_stress_ng_rows(text)
    if stressor not in rows:
        why = "no --metrics-brief rows" if not rows else f"no '{stressor}' row"
        raise ParseError(f"stress-ng printed {why}")
    row = rows[stressor]
    return Sample(row["ops_per_s"], {"bogo_ops": int(row["bogo_ops"]), "real_s": row["real_s"]})


_HIST_ROW = re.compile(r"^(\d+)((?:[ \t]+\d+)+)\s*$")


def _hash_numbers(text: str, label: str) -> list[int]:
    m = re.search(rf"^# {label}:((?:\s+\d+)+)\s*$", text, re.M)
    return [int(x) for x in m.group(1).split()] if m else []


def parse_cyclictest(text: str, percentile: float = 0.99) -> Sample:
    """The p99 wakeup latency in µs over all measuring threads, from `cyclictest -q -h N`'s
    histogram (one row per µs: `LATENCY COUNT_THREAD0 COUNT_THREAD1 ...`; rows of zeros may
    have been dropped). Samples past the histogram's end count as overflows; when the
    percentile falls among them, the value is the largest latency seen (a lower bound on the
    true p99, flagged with `overflow`)."""
    counts: dict[int, int] = {}
    for line in text.splitlines():
        m = _HIST_ROW.match(line)
        if m:
            counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + sum(
                int(x) for x in m.group(2).split()
            )
    maxima = _hash_numbers(text, "Max Latencies")
    if not maxima:
        raise ParseError("cyclictest printed no '# Max Latencies' line (did it run with -q -h?)")
    overflows = sum(_hash_numbers(text, "Histogram Overflows"))
    averages = _hash_numbers(text, "Avg Latencies")
    total = sum(counts.values()) + overflows
    if total == 0:
        raise ParseError("cyclictest recorded no wakeups")
    rank = math.ceil(percentile * total)
    seen, value, overflow = 0, float(max(maxima)), True
    for latency in sorted(counts):
        seen += counts[latency]
        if seen >= rank:
            value, overflow = float(latency), False
            break
    extra: dict[str, float | int | bool] = {
        "samples": total,
        "max_us": max(maxima),
        "overflows": overflows,
        "overflow": overflow,
    }
    if averages:
        extra["avg_us"] = sum(averages) / len(averages)
    return Sample(value, extra)


_WAKEBENCH_LINE = re.compile(r"^([a-z][a-z0-9_]*) ([0-9]+(?:\.[0-9]+)?)\s*$", re.M)


def parse_wakebench(text: str) -> Sample:
    """wakebench's `name value` lines (schedc/bench/wakebench.c): the p99 wake-up latency in
    µs, with p50, p90, the maximum, the request throughput and the thread count as extras."""
    values = dict(_WAKEBENCH_LINE.findall(text))
    if "samples" not in values or "requests_per_s" not in values:
        raise ParseError("wakebench printed no results (did it build and run?)")
    if int(values["samples"]) == 0 or "p99_us" not in values:
        raise ParseError("wakebench recorded no wake-ups (no worker was woken in the run)")
    extra: dict[str, float | int | bool] = {
        key: int(values[key])
        for key in ("p50_us", "p90_us", "max_us", "samples", "requests", "threads")
        if key in values
    }
    extra["requests_per_s"] = float(values["requests_per_s"])
    return Sample(float(values["p99_us"]), extra)


_START = re.compile(r"^start\s+(\d+(?:\.\d+)?)\s*$", re.M)
_END = re.compile(r"^end\s+(\d+(?:\.\d+)?)\s*$", re.M)


def parse_elapsed(text: str) -> Sample:
    """`start EPOCH` and `end EPOCH` lines (date +%s.%N in the guest): the seconds between."""
    start, end = _START.search(text), _END.search(text)
    if not start or not end:
        raise ParseError("the workload printed no 'start'/'end' time stamps (did it fail?)")
    elapsed = float(end.group(1)) - float(start.group(1))
    if elapsed <= 0:
        raise ParseError(f"the workload's end is not after its start ({elapsed:.3f} s)")
    return Sample(elapsed)


# --- recipes ---------------------------------------------------------------------------------

# cyclictest's histogram: one row per µs up to here. Rows of zeros are dropped in the guest, so
# a wide histogram costs nothing; under TCG a wakeup behind a CPU hog can take tens of ms.
CYCLICTEST_HISTOGRAM_US = 100_000
# Fixed-work sizes at scale 1: a few seconds each under TCG on a 2-core machine.
HACKBENCH_LOOPS = 150
BATCH_SHORT_ITERATIONS = 10_000  # a shell loop: ~50k iterations/s under TCG
COMPILE_FILES_PER_CPU = 3


# wakebench (schedc/bench/wakebench.c, package data): built with the host's cc in the guest.
WAKEBENCH_SOURCE = Path(__file__).resolve().parent / "bench" / "wakebench.c"
WAKEBENCH_CFLAGS = "-O2 -pthread -Wall -Werror"
WAKEBENCH_WORKERS_PER_CPU = 2  # each vCPU's message thread wakes two workers
WAKEBENCH_INTERVAL_US = 2000  # a message thread's pause between rounds of requests
WAKEBENCH_WORK = 20_000  # loop iterations per request: ~40 µs natively, far longer under TCG
# A boot's first compile reads cc1, as and make from the host over 9p: 13 s more than a warm
# one under TCG, measured (`schedc bench --workload compile --warmup 0`: 21.8 s, then 9.5 s).
COMPILE_COLD_S = 14.0
WAKEBENCH_BUILD_S = 4.0  # cc -O2 of wakebench.c under TCG, paid by a boot's first run


def _wakebench_binary() -> str:
    """Where the built program lives: the guest's own /tmp (its root file system is the host's,
    read-only), named by the source's hash, so that a changed source is built anew on a host
    whose /tmp keeps an older build."""
    digest = hashlib.sha256(WAKEBENCH_SOURCE.read_bytes()).hexdigest()[:12]
    return f"/tmp/schedc-wakebench-{digest}"


def _wakebench_build(source: str) -> str:
    """Shell lines that set $b to the program and build it once (a boot's first run), or exit
    on a failed build; built under a temporary name and renamed, so that a concurrent run never
    starts half a file."""
    return (
        f"b={_wakebench_binary()}\n"
        f'[ -x $b ] || {{ cc {WAKEBENCH_CFLAGS} -o $b.$$ {source} && mv -f $b.$$ $b; }} || exit 1\n'
    )


def _seconds(params: WorkloadParams) -> int:
    """Whole seconds: stress-ng and cyclictest take integer durations."""
    return max(1, round(params.duration))


def _hackbench_size(params: WorkloadParams) -> tuple[int, int]:
    return max(1, params.cpus), max(10, round(HACKBENCH_LOOPS * params.scale))


def _hackbench_script(params: WorkloadParams) -> str:
    groups, loops = _hackbench_size(params)
    return f"hackbench -g {groups} -l {loops}\n"


def _stress_script(params: WorkloadParams) -> str:
    return (
        f"stress-ng --cpu {2 * params.cpus} --cpu-method int64 --timeout {_seconds(params)}s "
        "--metrics-brief\n"
    )


def _cyclictest_script(params: WorkloadParams) -> str:
    cpus = params.cpus
    keep = "'/^#/ {print; next} {for (i = 2; i <= NF; i++) if ($i + 0) {print; next}}'"
    return (
        "# one CPU hog per vCPU, then SCHED_OTHER measuring threads (the ones sched_ext runs)\n"
        f'p=; i=0; while [ $i -lt {cpus} ]; do (while :; do :; done) & p="$p $!"; '
        "i=$((i+1)); done\n"
        "# cyclictest writes its histogram (with -q, nothing before) once it has measured: the\n"
        "# hogs are killed as soon as the file has its first block. Printing 100,000 rows behind\n"
        "# the hogs, or piping them to a reader, waited as long as the policy lets a short task\n"
        "# wait at every slice or wake-up (ljf: its aging bound), and the run took 30 s or more\n"
        'o="${TMPDIR:-/tmp}/schedc-cyclictest.$$"\n'
        ': >"$o"\n'
        '(while [ ! -s "$o" ]; do sleep 0.2; done; kill $p) & w=$!\n'
        f"cyclictest -q -t {cpus} -i 1000 -D {_seconds(params)} -h {CYCLICTEST_HISTOGRAM_US} "
        '--policy=other >"$o"\n'
        "kill $w $p 2>/dev/null\n"
        f'awk {keep} "$o"\n'
        'rm -f "$o"\n'
    )


def _wakebench_script(params: WorkloadParams) -> str:
    cpus = params.cpus
    build = _wakebench_build('"$(dirname "$0")/wakebench.c"')
    return (
        "# build it in the guest's /tmp once per boot (not timed: the program times itself)\n"
        f"{build}"
        "# one CPU hog per vCPU against a message thread per vCPU with two workers each\n"
        f'p=; i=0; while [ $i -lt {cpus} ]; do (while :; do :; done) & p="$p $!"; '
        "i=$((i+1)); done\n"
        f"$b -m {cpus} -w {WAKEBENCH_WORKERS_PER_CPU} -d {_seconds(params)} "
        f"-i {WAKEBENCH_INTERVAL_US} -r {WAKEBENCH_WORK}\n"
        "kill $p\n"
    )


def _wakebench_files(_params: WorkloadParams) -> dict[str, str]:
    return {"wakebench.c": WAKEBENCH_SOURCE.read_text(encoding="utf-8")}


def _wakebench_run(seconds: float) -> str:
    """Two CPU hogs and 2 message threads x 4 workers; the run test's kill (SIGTERM to the
    outer sh) takes the hogs and the program with it."""
    build = _wakebench_build(shlex.quote(str(WAKEBENCH_SOURCE))).replace("\n", "; ")
    inner = (
        f"trap 'kill $p $w 2>/dev/null; exit 0' TERM; {build}"
        'p=; for i in 1 2; do (while :; do :; done) & p="$p $!"; done; '
        f"$b -m 2 -w 4 -d {max(0.1, seconds):g} -i 1000 "
        f"-r {WAKEBENCH_WORK} & w=$!; wait $w; kill $p"
    )
    return f"sh -c {shlex.quote(inner)} >/dev/null 2>&1"


def _batch_sizes(params: WorkloadParams) -> tuple[int, int, int]:
    """(number of short tasks, iterations of each, iterations of the long one)."""
    short = max(100, round(BATCH_SHORT_ITERATIONS * params.scale))
    cpus = max(1, params.cpus)
    return 6 * cpus, short, 3 * cpus * short


def _batch_script(params: WorkloadParams) -> str:
    count, short, long = _batch_sizes(params)
    return (
        "# the short tasks first, the long one last: all runnable at once\n"
        'spin() { i=0; while [ "$i" -lt "$1" ]; do i=$((i+1)); done; }\n'
        "echo start $(date +%s.%N)\n"
        f"k=0; while [ $k -lt {count} ]; do spin {short} & k=$((k+1)); done\n"
        f"spin {long} &\n"
        "wait\n"
        "echo end $(date +%s.%N)\n"
    )


def _compile_count(params: WorkloadParams) -> int:
    return max(params.cpus, round(COMPILE_FILES_PER_CPU * params.cpus * params.scale))


def _compile_files(params: WorkloadParams) -> dict[str, str]:
    files: dict[str, str] = {}
    objects = []
    for n in range(_compile_count(params)):
        body = "\n".join(
            f"long f{n}_{k}(long x) {{ long s = {k}; for (long i = 0; i < x; i++) "
            f"s = s * 31 + (i ^ {k}) % {k + 3}; return s; }}"
            for k in range(12)
        )
        files[f"src/u{n}.c"] = body + "\n"
        objects.append(f"u{n}.o")
    files["src/Makefile"] = f"all: {' '.join(objects)}\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n"
    return files


def _compile_script(params: WorkloadParams) -> str:
    work = "/tmp/schedc-bench-compile"
    return (
        "# a fresh copy of the sources in the guest's /tmp, then a parallel build\n"
        f'rm -rf {work} && cp -r "$(dirname "$0")/src" {work} && cd {work} || exit 1\n'
        "# one untimed compile first: a boot's first cc also reads cc1 and as from the host\n"
        "cc -O2 -c u0.c -o warm.o && rm -f warm.o || exit 1\n"
        "echo start $(date +%s.%N)\n"
        f"make -s -j{params.cpus} CC=cc || exit 1\n"
        "echo end $(date +%s.%N)\n"
    )


def _spin_run(seconds: float) -> str:
    return (
        'sh -c \'p=; for i in 1 2 3 4; do (while :; do :; done) & p="$p $!"; done; '
        f'(while :; do sleep 0.01; done) & p="$p $!"; sleep {seconds}; kill $p\' >/dev/null 2>&1'
    )


# The one table. Its order is the order commands list the workloads in.
WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            name="spin",
            summary="four CPU hogs and a task that sleeps 10 ms and wakes, over and over; "
            "needs nothing but a POSIX shell",
            run_test=_spin_run,
        ),
        Workload(
            name="stress",
            summary="stress-ng: four CPU workers",
            run_test=lambda seconds: f"stress-ng --cpu 4 --timeout {seconds}s --quiet",
            needs=(("stress-ng", "stress-ng"),),
        ),
        Workload(
            name="mixed",
            summary="stress-ng: two CPU workers, two context-switching pairs and a timer",
            run_test=lambda seconds: (
                f"stress-ng --cpu 2 --switch 2 --timer 1 --timeout {seconds}s --quiet"
            ),
            needs=(("stress-ng", "stress-ng"),),
        ),
        Workload(
            name="hackbench",
            run_test=lambda seconds: f"timeout {seconds} hackbench -l 100000 >/dev/null 2>&1",
            metric="time",
            unit="s",
            direction=LOWER,
            summary="rt-tests hackbench: one group of 20 senders and 20 receivers per vCPU "
            "passing messages over sockets; hackbench's own elapsed time",
            script=_hackbench_script,
            parse=parse_hackbench,
            expected_seconds=lambda p: 0.006 * math.prod(_hackbench_size(p)) + 0.5,
            needs=(("hackbench", "rt-tests"),),
        ),
        Workload(
            name="stress-ng",
            metric="cpu bogo ops/s",
            unit="bogo ops/s",
            direction=HIGHER,
            summary="stress-ng: two CPU workers (int64 method) per vCPU for DURATION seconds; "
            "the cpu stressor's bogo ops per second of wall-clock time (--metrics-brief)",
            script=_stress_script,
            parse=parse_stress_ng,
            expected_seconds=lambda p: _seconds(p) + 1.0,
            needs=(("stress-ng", "stress-ng"),),
        ),
        Workload(
            name="cyclictest",
            metric="wakeup latency p99",
            unit="us",
            direction=LOWER,
            summary="rt-tests cyclictest: one SCHED_OTHER timer thread per vCPU (1 ms interval) "
            "against one CPU hog per vCPU for DURATION seconds; the 99th percentile of all "
            "wakeup latencies, from the histogram",
            script=_cyclictest_script,
            parse=parse_cyclictest,
            expected_seconds=lambda p: _seconds(p) + 1.5,
            needs=(("cyclictest", "rt-tests"),),
        ),
        Workload(
            name="wakebench",
            run_test=_wakebench_run,
            metric="wake-up latency p99",
            unit="us",
            direction=LOWER,
            summary="schedc's schbench-like wakebench: per vCPU a message thread that wakes "
            "two worker threads (futex) for a small CPU-bound request every 2 ms, against one "
            "CPU hog per vCPU, for DURATION seconds; the 99th percentile of the workers' "
            "wake-up latencies",
            script=_wakebench_script,
            parse=parse_wakebench,
            expected_seconds=lambda p: _seconds(p) + WAKEBENCH_BUILD_S + 0.5,
            needs=(("cc", "gcc"),),
            files=_wakebench_files,
        ),
        Workload(
            name="batch-makespan",
            metric="makespan",
            unit="s",
            direction=LOWER,
            summary="six short CPU-bound shell tasks per vCPU, then one long one (3 x vCPUs "
            "times as long), all runnable at once; seconds until the last one ends",
            script=_batch_script,
            parse=parse_elapsed,
            expected_seconds=lambda p: (lambda c, s, lg: (c * s + lg) / 40_000 + 0.5)(
                *_batch_sizes(p)
            ),
        ),
        Workload(
            name="compile",
            metric="build time",
            unit="s",
            direction=LOWER,
            summary="a kernel-build-like parallel compile: `make -jVCPUS` of three small C "
            "files per vCPU with cc -O2; seconds for the build",
            script=_compile_script,
            parse=parse_elapsed,
            expected_seconds=lambda p: 2.5 * (_compile_count(p) + 1) + COMPILE_COLD_S,
            needs=(("make", "make"), ("cc", "gcc")),
            files=_compile_files,
        ),
    )
}
# The views the commands choose from, in the table's order.
RECIPES: dict[str, Workload] = {n: w for n, w in WORKLOADS.items() if w.is_benchmark}
RUN_LOADS: dict[str, Workload] = {n: w for n, w in WORKLOADS.items() if w.run_test is not None}


def run_load_problem(name: str) -> str | None:
    """None when the workload can run in `verify --run` (the guest runs the host's programs)."""
    workload = WORKLOADS.get(name)
    if workload is None or workload.run_test is None:
        return f"unknown workload '{name}'; choose one of: {', '.join(RUN_LOADS)}"
    for program, package in workload.needs:
        if shutil.which(program) is None:
            return (
                f"workload '{name}' needs {program}: apt-get install {package}, "
                "or use --workload spin"
            )
    return None


def run_load_command(name: str, seconds: float) -> str:
    """The shell command of a run test's load (a name run_load_problem accepted)."""
    run_test = WORKLOADS[name].run_test
    if run_test is None:
        raise ValueError(f"workload '{name}' is not a run-test load")
    return run_test(seconds)


def workload_problems(names: Sequence[str]) -> list[str]:
    """Unknown benchmarks and missing programs (the guest runs the host's), with the package."""
    problems = []
    for name in names:
        recipe = WORKLOADS.get(name)
        if recipe is None or not recipe.is_benchmark:
            problems.append(f"unknown workload '{name}' (choose from {', '.join(RECIPES)})")
            continue
        for program, package in recipe.needs:
            if shutil.which(program) is None:
                problems.append(f"workload '{name}' needs {program}: apt-get install {package}")
    return problems
