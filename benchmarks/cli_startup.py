"""Whole-process wall time of the `schedc` command line, where users (and pre-commit hooks and
agents) wait for it: `schedc --help`, a warm `schedc compile` of an example and `schedc check`.

    python benchmarks/cli_startup.py [--repeat N] [--policy FILE] [--cache DIR] [--modules]
                                     [--front COMMAND]

Each command runs once to warm the caches (vmlinux.h, the precompiled header, the OS's page
cache; SCHEDC_CACHE is a fresh folder unless --cache names one), then N times; printed are the
median and the fastest wall time of the N and the median CPU time (user + system, clang's and
libclang's children included), which the load of other processes disturbs less. `--modules`
also prints which heavy packages each command imported (from a run of `main` with
`sys.modules` inspected at its end). `--front` times another command instead of this
checkout's `schedc` (an older checkout's, to compare).
Targets (issue 17): `--help` ≤ 0.1 s, compile ≤ 0.2 s, check ≤ 0.35 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("mcp", "anthropic", "git", "pydantic", "httpx", "schedc.agent", "schedc.repo")
# What `main` imported, printed by a child interpreter as JSON.
PROBE = """\
import json, sys
from schedc.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as stop:  # --help
    status = stop.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.__stderr__)
"""


def schedc_command() -> list[str]:
    """The installed `schedc` script beside this interpreter, else `python -m schedc`."""
    script = Path(sys.executable).parent / "schedc"
    if os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "schedc"]


def commands(policy: Path, out: Path) -> dict[str, list[str]]:
    return {
        "schedc --help": ["--help"],
        f"schedc compile {policy.name}": ["compile", str(policy), "-o", str(out)],
        f"schedc check {policy.name}": ["check", str(policy)],
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time, and CPU time (user + system, with clang's), of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def heavy_modules(args: list[str], env: dict[str, str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "{}"
    try:
        modules = json.loads(last)["modules"]
    except (ValueError, KeyError):
        return ["(could not tell: " + proc.stderr.strip()[-200:] + ")"]
    return [h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in modules)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=11, metavar="N")
    ap.add_argument("--policy", type=Path, default=ROOT / "examples" / "ljf.sched")
    ap.add_argument("--cache", type=Path, help="SCHEDC_CACHE to use (default: a fresh one)")
    ap.add_argument("--modules", action="store_true", help="also list the heavy imports")
    ap.add_argument("--front", help="the command to time (default: this checkout's schedc)")
    args = ap.parse_args()
    front = shlex.split(args.front) if args.front else schedc_command()
    with tempfile.TemporaryDirectory(prefix="schedc-cli-startup-") as tmp:
        # By default a cache of its own, warmed by the first run: the figures are those of a
        # warm cache, whatever state the user's cache is in.
        env = {**os.environ, "SCHEDC_CACHE": str(args.cache or Path(tmp) / "cache")}
        table = commands(args.policy.resolve(), Path(tmp) / "x.bpf.o")
        print(f"{'command':36}{'median':>9}{'fastest':>9}{'cpu':>9}   (s, {args.repeat} runs, "
              f"{' '.join(front)})")
        for label, cmd_args in table.items():
            timed([*front, *cmd_args], env)  # warm-up
            runs = [timed([*front, *cmd_args], env) for _ in range(args.repeat)]
            times = [wall for wall, _ in runs]
            cpu = statistics.median(c for _, c in runs)
            line = f"{label:36}{statistics.median(times):9.3f}{min(times):9.3f}{cpu:9.3f}"
            if args.modules:
                found = heavy_modules(cmd_args, env)
                none = "none of " + "/".join(HEAVY)
                line += "   imports: " + (", ".join(found) if found else none)
            print(line, flush=True)
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
