"""Accuracy against cost: where each model sits on the size / latency trade-off that distillation is meant to move."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kdlab.errors import ConfigError

AXES = {"size": ("size_bytes", 1e-6, "size on disk (MB)"), "latency": ("latency_b1_ms", 1.0, "latency, batch 1 (ms)")}
MARKERS = {"teacher": ("*", 220), "baseline": ("s", 90), "student": ("o", 90), "student+int8": ("^", 90)}
DEFAULT_MARKER = ("D", 70)


def plot_accuracy_vs_cost(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, x: str | Sequence[str] = ("size", "latency")
) -> Path:
    """Write a PNG with one panel per ``x`` ("size", "latency"): top-1 accuracy against that cost, log scale.

    Each row is a dict with ``role`` (teacher / baseline / student / …, which picks the marker: the teacher is a
    star, the baseline a square), ``top1`` (0–1), ``size_bytes`` and ``latency_b1_ms`` (``ModelReport`` field names,
    so ``dataclasses.asdict(row)`` fits), and an optional ``label`` (default ``name``, else the role).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = [x] if isinstance(x, str) else list(x)
    unknown = [p for p in panels if p not in AXES]
    if unknown or not panels:
        raise ConfigError(f"plot x must be one or more of {', '.join(AXES)}, got {unknown or panels}")
    if not rows:
        raise ConfigError("nothing to plot: no report rows")
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    colours = {role: f"C{i}" for i, role in enumerate(dict.fromkeys(str(r.get("role", "")) for r in rows))}
    for axis, panel in zip(axes[0], panels, strict=True):
        _draw(axis, rows, panel, colours)
    axes[0][0].legend(*_legend(axes[0][0]), loc="best", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _draw(axis: Any, rows: Sequence[Mapping[str, Any]], panel: str, colours: Mapping[str, str]) -> None:
    from matplotlib.ticker import FuncFormatter, LogFormatter

    key, scale, label = AXES[panel]
    for row in rows:
        if row.get(key) is None or row.get("top1") is None:
            continue
        role = str(row.get("role", ""))
        marker, size = MARKERS.get(role, DEFAULT_MARKER)
        cost, accuracy = float(row[key]) * scale, 100 * float(row["top1"])
        axis.scatter(cost, accuracy, marker=marker, s=size, c=colours[role], label=role, zorder=3)
        axis.annotate(
            str(row.get("label") or row.get("name") or role),
            (cost, accuracy),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    axis.set_xscale("log")
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.1, 10 instead of 10⁻¹, 10¹
    axis.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))  # labels minor ticks only on short ranges
    axis.set_xlabel(label)
    axis.set_ylabel("top-1 accuracy (%)")
    axis.grid(True, which="both", alpha=0.3)


def _legend(axis: Any) -> tuple[list, list]:
    """One legend entry per role, however many points share it."""
    seen: dict[str, Any] = {}
    for handle, text in zip(*axis.get_legend_handles_labels(), strict=True):
        seen.setdefault(text, handle)
    return list(seen.values()), list(seen.keys())
