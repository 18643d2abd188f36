"""The report's figures: student accuracy over a two-setting grid (T × alpha), and accuracy against student size."""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed (clusters, CI)
import matplotlib.pyplot as plt

from kdlab import result_keys
from kdlab.io import atomic_write
from kdlab.sweeps.compare.analysis import BASELINE_METHOD, swept_keys
from kdlab.sweeps.compare.collect import SEED_KEY, Run

ACCURACY = result_keys.STUDENT_TEST_ACC
MAX_PANELS = 12


def _sorted_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def heatmap_axes(runs: Sequence[Run], wanted: tuple[str, str] = ("kd.temperature", "kd.alpha")) -> tuple[str, str]:
    """``wanted`` when one of them varies across the distilled runs, else the first two other swept settings."""
    distilled = [run for run in runs if run.ok and run.method != BASELINE_METHOD]
    if any(len({run.setting(k) for run in distilled}) > 1 for k in wanted):
        return wanted
    others = [k for k in swept_keys(distilled) if k not in (SEED_KEY, "kd")]
    return (others[0], others[1]) if len(others) > 1 else wanted


def save_figure(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def heatmap_cells(
    runs: Sequence[Run], x_key: str, y_key: str, metric: str = ACCURACY
) -> dict[str, dict[tuple[str, str], list[float]]]:
    """Panel title → (x, y) → the metric of each seed, over completed distilled runs (kd=none has no T or alpha).

    One panel per combination of the swept settings other than x, y and the seed, so nothing is averaged away.
    """
    distilled = [r for r in runs if r.counted and r.method != BASELINE_METHOD and r.metric(metric) is not None]
    others = [k for k in swept_keys(distilled) if k not in (SEED_KEY, x_key, y_key)]
    panels: dict[str, dict[tuple[str, str], list[float]]] = {}
    for run in distilled:
        title = " ".join(f"{k}={run.setting(k)}" for k in others) or f"kd={run.method}"
        cell = (str(run.setting(x_key)), str(run.setting(y_key)))
        panels.setdefault(title, {}).setdefault(cell, []).append(run.metric(metric))
    return panels


def heatmap(runs: Sequence[Run], path: Path, x_key: str, y_key: str, metric: str = ACCURACY) -> Path | None:
    """Mean ``metric`` over seeds per (x, y) cell, annotated with mean ± std; None when there are fewer than 2 cells."""
    panels = heatmap_cells(runs, x_key, y_key, metric)
    xs = _sorted_labels({x for cells in panels.values() for x, _ in cells})
    ys = _sorted_labels({y for cells in panels.values() for _, y in cells})
    if len(xs) * len(ys) < 2:
        return None
    titles = list(panels)[:MAX_PANELS]
    cols = min(3, len(titles))
    rows = math.ceil(len(titles) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * len(xs) * cols + 2, 0.9 * len(ys) * rows + 1.5), squeeze=False)
    values = [100 * statistics.fmean(v) for cells in panels.values() for v in cells.values()]
    low, high = min(values), max(values)
    for ax, title in zip(axes.flat, titles, strict=False):
        grid = [[panels[title].get((x, y)) for x in xs] for y in ys]
        means = [[100 * statistics.fmean(c) if c else math.nan for c in row] for row in grid]
        image = ax.imshow(means, cmap="viridis", vmin=low, vmax=high if high > low else low + 1, origin="lower")
        for i, row in enumerate(grid):
            for j, cell in enumerate(row):
                if cell:
                    spread = f"\n±{100 * statistics.stdev(cell):.1f}" if len(cell) > 1 else ""
                    shade = "white" if means[i][j] < (low + high) / 2 else "black"
                    ax.text(j, i, f"{means[i][j]:.1f}{spread}", ha="center", va="center", fontsize=8, color=shade)
        ax.set(xticks=range(len(xs)), xticklabels=xs, yticks=range(len(ys)), yticklabels=ys, title=title)
        ax.set(xlabel=x_key, ylabel=y_key)
    for ax in list(axes.flat)[len(titles) :]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, label=f"{metric} (%), mean over seeds", shrink=0.8)
    return save_figure(fig, path)


def accuracy_vs_size(runs: Sequence[Run], path: Path, metric: str = ACCURACY) -> Path | None:
    """Student accuracy against parameter count, one series per KD method; None unless several students are present."""
    done = [
        run for run in runs if run.counted and run.metric(metric) is not None and run.metric(result_keys.STUDENT_PARAMS)
    ]
    if len({run.metrics.get(result_keys.STUDENT_NAME) for run in done}) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method in sorted({run.method for run in done}):
        points: dict[str, list[Run]] = {}
        for run in (r for r in done if r.method == method):
            points.setdefault(str(run.metrics.get(result_keys.STUDENT_NAME)), []).append(run)
        xs = [points[name][0].metric(result_keys.STUDENT_PARAMS) for name in points]
        accs = [[100 * run.metric(metric) for run in group] for group in points.values()]
        ys = [statistics.fmean(a) for a in accs]
        errs = [statistics.stdev(a) if len(a) > 1 else 0.0 for a in accs]
        ax.errorbar(xs, ys, yerr=errs, fmt="o", capsize=3, label=f"kd={method}")
        for name, x, y in zip(points, xs, ys, strict=True):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for name in sorted({str(run.metrics.get(result_keys.TEACHER_NAME)) for run in done}):
        accs = [
            100 * a
            for r in done
            if r.metrics.get(result_keys.TEACHER_NAME) == name and (a := r.metric(result_keys.TEACHER_TEST_ACC))
        ]
        if accs:
            ax.axhline(statistics.fmean(accs), linestyle="--", color="gray", linewidth=1)
            ax.annotate(f"teacher {name}", (ax.get_xlim()[0], statistics.fmean(accs)), fontsize=7, color="gray")
    ax.set(xscale="log", xlabel="student parameters", ylabel=f"{metric} (%)", title="Accuracy against student size")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
