"""The search's files: a markdown and a CSV table of every candidate, latency-vs-MACs and accuracy-vs-latency plots."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

from kdlab.io import atomic_write
from kdlab.students.distil import DistilledStudent
from kdlab.students.search import Candidate, SearchResult

TABLE_MD, TABLE_CSV = "students.md", "students.csv"
LATENCY_PNG, PARETO_PNG = "latency_vs_macs.png", "accuracy_vs_latency.png"


def write_tables(result: SearchResult, out_dir: Path, teacher: Candidate | None) -> tuple[Path, Path]:
    """``students.md`` (ranked, then dropped with the reason) and ``students.csv`` (one row per candidate)."""
    rows = [(c, "") for c in result.kept] + list(result.dropped)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([f.name for f in fields(Candidate)] + ["speedup_b1", "speedup_batch", "within_budget", "dropped"])
    for candidate, reason in rows:
        b1, large = _speedups(candidate, teacher)
        writer.writerow([*asdict(candidate).values(), b1, large, not reason, reason])
    csv_path = _write_text(out_dir / TABLE_CSV, buffer.getvalue())
    md_path = _write_text(out_dir / TABLE_MD, markdown_table(rows, teacher))
    return md_path, csv_path


def markdown_table(rows: Sequence[tuple[Candidate, str]], teacher: Candidate | None) -> str:
    first = rows[0][0] if rows else teacher
    batch = first.batch_size if first else "N"
    header = (
        f"| rank | model | params | MACs | size MB | latency ms b1 / b{batch} | speed-up vs teacher b1 / b{batch} | "
        "budget |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = [_md_row("teacher", teacher, teacher, "—")] if teacher else []
    rank = 0
    for candidate, reason in rows:
        rank += not reason
        lines.append(_md_row(str(rank) if not reason else "—", candidate, teacher, reason or "within"))
    note = f"\nlatency: median ms per batch on {first.device}, {first.threads} thread(s)\n" if first else ""
    return header + "\n".join(lines) + "\n" + note


def _md_row(rank: str, c: Candidate, teacher: Candidate | None, budget: str) -> str:
    b1, large = _speedups(c, teacher)
    speed = f"{b1:.2f} / {large:.2f}" if b1 is not None else "—"
    return (
        f"| {rank} | {c.name} | {c.params / 1e6:.2f}M | {c.macs / 1e6:.2f}M | {c.size_bytes / 1e6:.2f} | "
        f"{c.latency_b1_ms:.2f} / {c.latency_batch_ms:.2f} | {speed} | {budget} |"
    )


def _speedups(candidate: Candidate, teacher: Candidate | None) -> tuple[float | None, float | None]:
    if teacher is None:
        return None, None
    return teacher.latency_b1_ms / candidate.latency_b1_ms, teacher.latency_batch_ms / candidate.latency_batch_ms


def plot_latency_vs_macs(result: SearchResult, out_dir: Path, teacher: Candidate | None) -> Path:
    """Batch-1 latency against MACs, log-log: how far MACs are from predicting speed on this device."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 5))
    groups = [("within budget", result.kept, "C0"), ("over budget", [c for c, _ in result.dropped], "C7")]
    groups += [("teacher", [teacher], "C3")] if teacher else []
    for label, group, colour in groups:
        axis.scatter([c.macs for c in group], [c.latency_b1_ms for c in group], label=label, color=colour)
        for c in group:
            _label(axis, c.name, c.macs, c.latency_b1_ms)
    _finish(axis, "MACs per sample", "latency, batch 1 (ms)", _device_title(result, teacher))
    return _save(figure, out_dir / LATENCY_PNG)


def plot_pareto(
    students: Sequence[DistilledStudent],
    front: Sequence[DistilledStudent],
    best: DistilledStudent | None,
    out_dir: Path,
) -> Path:
    """Distilled test accuracy against batch-1 latency; the Pareto front joined, the chosen student starred."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 5))
    axis.scatter([s.latency_b1_ms for s in students], [100 * s.test_acc for s in students], color="C0")
    for s in students:
        _label(axis, s.name, s.latency_b1_ms, 100 * s.test_acc)
    axis.plot([s.latency_b1_ms for s in front], [100 * s.test_acc for s in front], "C1--", label="Pareto front")
    if best is not None:
        star = {"marker": "*", "s": 300, "color": "C3", "label": f"best: {best.name}"}
        axis.scatter([best.latency_b1_ms], [100 * best.test_acc], **star)
    _finish(axis, "latency, batch 1 (ms, the run's report)", "distilled student top-1 % (test)", "accuracy vs latency")
    return _save(figure, out_dir / PARETO_PNG)


def _label(axis, text: str, x: float, y: float) -> None:
    axis.annotate(text, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")


def _device_title(result: SearchResult, teacher: Candidate | None) -> str:
    every = result.kept + [c for c, _ in result.dropped] + ([teacher] if teacher else [])
    return f"latency vs MACs on {every[0].device}, {every[0].threads} thread(s)" if every else "latency vs MACs"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _finish(axis, xlabel: str, ylabel: str, title: str) -> None:
    axis.set_xscale("log")
    if "latency" in ylabel:
        axis.set_yscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)


def _save(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(figure)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()))
