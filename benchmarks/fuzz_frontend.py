"""Fuzz the DSL front end (parse, sema, lower to C text; no clang) and print figures.

    python benchmarks/fuzz_frontend.py [--inputs 100000] [--seed N] [--minimize-budget 300]

Inputs come from tests/fuzzgen.py, round-robin over its three strategies (random text and
bytes, mutated example policies, generated policies). Every input must give C text or
diagnostics that point inside the file; anything else is a finding. Printed: inputs/s,
findings by exception type and place (with a minimized input for each), and which
diagnostic codes the run reached. Exits 1 when there was a finding.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schedc.dsl.language import READ_ERROR  # noqa: E402
from tests.fuzzgen import STRATEGIES, check_front_end  # noqa: E402


def front_end_codes() -> list[str]:
    """Every code the front end (parser, sema, expr) can emit, as test_golden.py finds them."""
    codes: set[str] = set()
    for name in ("parser.py", "sema.py", "expr.py"):
        text = (ROOT / "schedc" / "dsl" / name).read_text(encoding="utf-8")
        codes |= set(re.findall(r"""["']([EW]\d{3})["']""", text))
    return sorted(codes | {READ_ERROR})  # E000: the pipeline cannot read or decode the file


@dataclass
class Finding:
    kind: str
    detail: str
    example: bytes
    count: int = 1


def _as_bytes(data: str | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.encode("utf-8", errors="surrogatepass")


def _signature(exc: BaseException) -> tuple[str, str]:
    """Type and the innermost frame inside schedc: one finding per bug, not per input."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/schedc/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    if type(exc).__name__ == "BadDiagnostics":
        return "BadDiagnostics", str(exc).split(" at ")[0]
    return type(exc).__name__, where


def minimize(data: bytes, still_fails: Callable[[bytes], bool], budget: int) -> bytes:
    """Greedy delta debugging: drop lines, then ever smaller chunks, while the bug stays."""
    calls = 0
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and calls < budget:
        candidate = lines[:i] + lines[i + 1 :]
        calls += 1
        if still_fails(b"\n".join(candidate)):
            lines = candidate
        else:
            i += 1
    data = b"\n".join(lines)
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and calls < budget:
        pos = 0
        while pos < len(data) and calls < budget:
            candidate = data[:pos] + data[pos + chunk :]
            calls += 1
            if candidate and still_fails(candidate):
                data = candidate
            else:
                pos += chunk
        chunk //= 2
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minimize-budget", type=int, default=300, help="translate runs per finding")
    ap.add_argument("--progress", type=int, default=10_000, help="print a line every N inputs")
    args = ap.parse_args()

    rnd = random.Random(args.seed)
    names = list(STRATEGIES)
    findings: dict[tuple[str, str], Finding] = {}
    codes: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    per_strategy: Counter[str] = Counter()
    slowest = (0.0, b"")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.sched"

        def signature_of(data: bytes) -> tuple[str, str] | None:
            try:
                check_front_end(data, path)
            except Exception as exc:  # noqa: BLE001 - finding them is the point
                return _signature(exc)
            return None

        t0 = time.perf_counter()
        for n in range(args.inputs):
            strategy = names[n % len(names)]
            data = STRATEGIES[strategy](rnd)
            per_strategy[strategy] += 1
            t = time.perf_counter()
            try:
                diags = check_front_end(data, path)
            except Exception as exc:  # noqa: BLE001
                sig = _signature(exc)
                raw = _as_bytes(data)
                if sig in findings:
                    findings[sig].count += 1
                    if len(raw) < len(findings[sig].example):
                        findings[sig].example = raw
                else:
                    findings[sig] = Finding(sig[0], sig[1], raw)
                    print(f"finding: {sig[0]} at {sig[1]}: {str(exc)[:200]}", flush=True)
                outcomes["uncaught"] += 1
                continue
            finally:
                took = time.perf_counter() - t
                if took > slowest[0]:
                    slowest = (took, _as_bytes(data))
            codes.update({d.code for d in diags})
            outcomes["diagnostics" if diags else "clean"] += 1
            if args.progress and (n + 1) % args.progress == 0:
                rate = (n + 1) / (time.perf_counter() - t0)
                print(
                    f"  {n + 1} inputs, {rate:.0f}/s, {outcomes['uncaught']} uncaught", flush=True
                )
        elapsed = time.perf_counter() - t0

        for sig, finding in findings.items():
            finding.example = minimize(
                finding.example, lambda d, s=sig: signature_of(d) == s, args.minimize_budget
            )

    front_end = front_end_codes()
    hit = [c for c in front_end if c in codes]
    print(
        f"\ninputs: {args.inputs} (seed {args.seed}) in {elapsed:.1f}s: "
        f"{args.inputs / elapsed:.0f} inputs/s"
    )
    print("per strategy: " + ", ".join(f"{k} {v}" for k, v in per_strategy.items()))
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"slowest input: {slowest[0] * 1000:.0f} ms ({len(slowest[1])} bytes)")
    print(f"uncaught exceptions: {sum(f.count for f in findings.values())}")
    for finding in sorted(findings.values(), key=lambda f: -f.count):
        print(f"  {finding.count:6d}  {finding.kind} at {finding.detail}")
        print(f"          minimized ({len(finding.example)} bytes): {finding.example[:300]!r}")
    print(f"diagnostic codes hit: {len(hit)} of {len(front_end)} front-end codes")
    print("  hit: " + " ".join(f"{c}({codes[c]})" for c in hit))
    print("  not hit: " + " ".join(c for c in front_end if c not in codes))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
