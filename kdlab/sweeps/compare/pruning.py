"""Accuracy against cost for a prune-ratio sweep: each (ratio, healer) point of the pruned students, mean over seeds,
beside the unpruned student, as a table and as ``accuracy_vs_cost.png`` (MACs and batch-1 latency)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from kdlab.sweeps.compare.collect import Run
from kdlab.sweeps.compare.plots import save_figure

PRUNED, UNPRUNED = "report/student+pruned", "report/student"
PRUNED_TOP1 = f"{PRUNED}/top1"
PRUNE_SWEEP_EXTRAS = ("seed", "teacher_seed")  # what else a prune sweep may vary
COSTS = (("macs", "MACs (millions)", 1e6), ("latency_b1_ms", "latency, batch 1 (ms)", 1.0))
FIELDS = ("top1", "params", "macs", "latency_b1_ms", "latency_b32_ms")
COLUMNS = (("params", 1e3, "K"), ("macs", 1e6, "M"), ("latency_b1_ms", 1.0, ""), ("latency_b32_ms", 1.0, ""))


@dataclass(frozen=True)
class Point:
    """One pruned configuration (or the unpruned student: ratio 0, healer "—"), its fields' means over seeds."""

    ratio: float
    healer: str
    top1: list[float]  # per seed, as a fraction
    means: dict[str, float]

    @property
    def top1_text(self) -> str:
        spread = f" ± {100 * statistics.stdev(self.top1):.2f}" if len(self.top1) > 1 else ""
        return f"{100 * statistics.fmean(self.top1):.2f}{spread}"


def is_prune_sweep(swept: Sequence[str]) -> bool:
    """Only post.prune* settings and seeds vary: one student's pruned variants, which one table can compare (a sweep
    over students or kd methods that also prunes would pool different networks into one row)."""
    return bool(swept) and all(key.startswith("post.prune") or key in PRUNE_SWEEP_EXTRAS for key in swept)


def pruned_points(runs: Sequence[Run]) -> tuple[Point | None, list[Point]]:
    """(the unpruned student over every run, the pruned points by ratio then healer); no pruned runs: (None, [])."""
    done = [run for run in runs if run.counted and run.metric(PRUNED_TOP1) is not None]
    groups: dict[tuple[float, str], list[Run]] = {}
    for run in done:
        key = (float(run.metrics["post/prune_amount"]), str(run.metrics.get("post/prune_healer", "KD")))
        groups.setdefault(key, []).append(run)
    if not groups:
        return None, []
    points = [_point(ratio, healer, members, PRUNED) for (ratio, healer), members in sorted(groups.items())]
    return _point(0.0, "—", done, UNPRUNED), points


def _point(ratio: float, healer: str, runs: Sequence[Run], role: str) -> Point:
    means = {
        f: statistics.fmean(v) for f in FIELDS if (v := [x for r in runs if (x := r.metric(f"{role}/{f}")) is not None])
    }
    return Point(ratio, healer, [run.metric(f"{role}/top1") for run in runs], means)


def markdown_rows(unpruned: Point, points: Sequence[Point]) -> list[str]:
    """The report's table: top-1 (mean ± std), share of the unpruned student's top-1, params, MACs, latency."""
    base = statistics.fmean(unpruned.top1)
    lines = [
        "| channels pruned | healed by | runs | top-1 % | of unpruned | params | MACs | latency b1 / b32 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for point in (unpruned, *points):
        cost = [_number(point.means, key, scale, unit) for key, scale, unit in COLUMNS]
        lines.append(
            f"| {100 * point.ratio:g} % | {point.healer} | {len(point.top1)} | {point.top1_text} "
            f"| {100 * statistics.fmean(point.top1) / base:.1f} % | {cost[0]} | {cost[1]} | {cost[2]} / {cost[3]} |"
        )
    return lines


def _number(means: dict[str, float], key: str, scale: float, unit: str) -> str:
    return f"{means[key] / scale:.{1 if unit == 'K' else 2}f}{unit}" if key in means else "—"


def accuracy_vs_cost(unpruned: Point, points: Sequence[Point], path: Path) -> Path:
    """Top-1 against MACs and against batch-1 latency, one line per healer, the unpruned student as a star."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, (key, label, scale) in zip(axes, COSTS, strict=True):
        for healer, style in zip(sorted({p.healer for p in points}), ("o-", "s--", "^:", "d-."), strict=False):
            chosen = sorted((p.means[key] / scale, p) for p in points if p.healer == healer and key in p.means)
            xs = [x for x, _ in chosen]
            ys = [100 * statistics.fmean(p.top1) for _, p in chosen]
            errs = [100 * statistics.stdev(p.top1) if len(p.top1) > 1 else 0.0 for _, p in chosen]
            axis.errorbar(xs, ys, yerr=errs, fmt=style, capsize=3, label=f"pruned, healed by {healer}")
            for x, (_, p) in zip(xs, chosen, strict=True):
                axis.annotate(f"{100 * p.ratio:g}%", (x, 100 * statistics.fmean(p.top1)), fontsize=7, xytext=(4, -9),
                              textcoords="offset points")  # fmt: skip
        if key in unpruned.means:
            axis.plot(unpruned.means[key] / scale, 100 * statistics.fmean(unpruned.top1), "k*", markersize=12,
                      label="unpruned student")  # fmt: skip
        axis.set(xlabel=label, ylabel="test top-1 %")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle("Pruned students: accuracy against cost, mean ± std over runs")
    figure.tight_layout()
    return save_figure(figure, path)
