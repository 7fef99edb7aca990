"""`schedc bench --plot OUT.png`: baseline against policy, run by run, one panel per result.

matplotlib is optional (`pip install 'schedc[plot]'`, or `pip install matplotlib`): it is
imported only here, only when a plot is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from schedc.settings import EnvironmentProblem

if TYPE_CHECKING:
    from schedc.bench.runner import BenchResult

MATPLOTLIB_REMEDY = "pip install matplotlib (or pip install 'schedc[plot]'), or leave out --plot"


def plot_problem() -> str | None:
    """None when matplotlib can be imported; checked before a boot, not after it."""
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError:
        return "--plot needs matplotlib, which is not installed"
    return None


def plot_results(results: Sequence[BenchResult], out: Path) -> Path:
    """Writes a PNG: per result, every run's baseline and policy value (failed runs marked x
    on the axis), with each side's median as a dashed line and the verdict in the title."""
    problem = plot_problem()
    if problem:
        raise EnvironmentProblem(problem, MATPLOTLIB_REMEDY)
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from schedc.bench.runner import BASELINE  # noqa: PLC0415
    from schedc.bench.stats import median  # noqa: PLC0415

    count = max(1, len(results))
    cols = min(3, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, results, strict=False):
        w = r.workload
        for runs, label, colour, marker in (
            (r.baseline_runs, BASELINE, "tab:blue", "o"),
            (r.policy_runs, r.policy.name, "tab:orange", "s"),
        ):
            ok = [(o.run, o.value) for o in runs if o.ok and o.value is not None]
            if ok:
                xs, ys = zip(*ok, strict=True)
                ax.plot(xs, ys, marker=marker, color=colour, label=label, linewidth=1)
                ax.axhline(median(ys), color=colour, linestyle="--", linewidth=0.8)
            failed = [o.run for o in runs if not o.ok]
            if failed:
                ax.scatter(
                    failed,
                    [0] * len(failed),
                    marker="x",
                    color="red",
                    zorder=3,
                    label=f"{label} failed",
                )
        cmp = r.comparison
        ratio = f"ratio {cmp.value:.3g}" if cmp.value is not None else "no ratio"
        ax.set_title(f"{w.name}: {r.policy.name} vs {BASELINE}\n{ratio}, {cmp.verdict}", fontsize=9)
        ax.set_xlabel("run")
        ax.set_ylabel(f"{w.metric} ({w.unit}, {w.direction} is better)", fontsize=8)
        ax.set_xticks(sorted({o.run for o in r.baseline_runs + r.policy_runs}))
        top = max((o.value for o in r.baseline_runs + r.policy_runs if o.ok and o.value), default=1)
        ax.set_ylim(0, top * 1.15)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    env = results[0].environment if results else {}
    note = f"kernel {env.get('kernel')}, {env.get('vcpus')} vCPUs, {env.get('accelerator')}"
    if env.get("emulated"):
        note += " — TCG: emulated timings, comparable within one boot only"
    fig.suptitle(note, fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
