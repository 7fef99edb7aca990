"""The statistics of `schedc bench`: medians, spread, and policy/baseline ratios with a
bootstrap interval — plain Python, deterministic (a fixed seed), no numpy.

The comparison is the ratio of medians, policy over baseline. Its 95% interval comes from a
percentile bootstrap: both samples are resampled with replacement (independently, each of its
own size) many times, and the 2.5th and 97.5th percentiles of the resampled ratios are the
interval's ends. An interval that contains 1 means the difference is within the run-to-run
noise of this boot; with fewer than MIN_RUNS_FOR_INTERVAL values on either side no interval is
given at all, and the verdict says so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from schedc.workloads import HIGHER, LOWER  # which direction of a metric is better

MIN_RUNS_FOR_INTERVAL = 3
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240607


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, 'linear')."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Spread:
    minimum: float
    maximum: float
    q1: float
    q3: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def to_json(self) -> dict[str, float]:
        return {
            "min": self.minimum,
            "max": self.maximum,
            "q1": self.q1,
            "q3": self.q3,
            "iqr": self.iqr,
        }


def spread(values: Sequence[float]) -> Spread:
    return Spread(min(values), max(values), quantile(values, 0.25), quantile(values, 0.75))


def bootstrap_ratio_interval(
    baseline: Sequence[float],
    policy: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(policy) / median(baseline)."""
    if not baseline or not policy:
        raise ValueError("the bootstrap needs values on both sides")
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        base = median(rng.choices(baseline, k=len(baseline)))
        pol = median(rng.choices(policy, k=len(policy)))
        if base != 0:
            ratios.append(pol / base)
    if not ratios:
        raise ValueError("the baseline's median is 0 in every resample")
    tail = (1.0 - level) / 2
    return quantile(ratios, tail), quantile(ratios, 1.0 - tail)


@dataclass(frozen=True)
class Comparison:
    """policy/baseline: the ratio of medians, its interval (None: too few runs) and a verdict:
    better | worse | within noise | inconclusive | failed."""

    value: float | None
    ci95: tuple[float, float] | None
    verdict: str
    statement: str

    def to_json(self) -> dict[str, object]:
        return {
            "value": self.value,
            "ci95": list(self.ci95) if self.ci95 else None,
            "verdict": self.verdict,
            "statement": self.statement,
        }


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def compare(
    baseline: Sequence[float],
    policy: Sequence[float],
    direction: str,
    *,
    policy_name: str = "the policy",
    baseline_name: str = "the baseline",
) -> Comparison:
    """The ratio policy/baseline with a bootstrap interval, and what it means for `direction`."""
    if direction not in (LOWER, HIGHER):
        raise ValueError(f"direction must be '{LOWER}' or '{HIGHER}', not {direction!r}")
    if not policy:
        return Comparison(None, None, "failed", f"{policy_name} completed no run")
    if not baseline:
        return Comparison(None, None, "failed", f"{baseline_name} completed no run")
    base_median = median(baseline)
    if base_median == 0:
        return Comparison(None, None, "inconclusive", "the baseline's median is 0: no ratio")
    ratio = median(policy) / base_median
    if min(len(baseline), len(policy)) < MIN_RUNS_FOR_INTERVAL:
        return Comparison(
            ratio,
            None,
            "inconclusive",
            f"ratio {_fmt(ratio)} from {min(len(baseline), len(policy))} run(s) per side: "
            f"no confidence interval below {MIN_RUNS_FOR_INTERVAL} runs (use --runs 5 or more)",
        )
    lo, hi = bootstrap_ratio_interval(baseline, policy)
    interval = f"95% bootstrap interval {_fmt(lo)}–{_fmt(hi)}"
    if lo <= 1.0 <= hi:
        return Comparison(
            ratio,
            (lo, hi),
            "within noise",
            f"ratio {_fmt(ratio)}, within noise: the {interval} contains 1",
        )
    improved = ratio < 1.0 if direction == LOWER else ratio > 1.0
    change = abs(ratio - 1.0) * 100
    how = f"{change:.0f}% {'lower' if ratio < 1.0 else 'higher'}"
    verdict = "better" if improved else "worse"
    return Comparison(
        ratio,
        (lo, hi),
        verdict,
        f"ratio {_fmt(ratio)} ({interval}): {policy_name} is {verdict} than {baseline_name} "
        f"({how}; {direction} is better)",
    )
