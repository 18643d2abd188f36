"""Write a sweep's report next to its runs: runs.csv, summary.csv, report.md, heatmap.png, accuracy_vs_size.png and,
for a prune-ratio sweep, accuracy_vs_cost.png."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kdlab import result_keys
from kdlab.sweeps.compare import plots, pruning
from kdlab.sweeps.compare.analysis import (
    BASELINE_METHOD,
    DELTA,
    Group,
    annotate_deltas,
    common_settings,
    group_by_setting,
    mark_repeats,
    rank,
    selection_metric,
    swept_keys,
)
from kdlab.sweeps.compare.collect import Run
from kdlab.sweeps.compare.table import (
    group_rows,
    markdown,
    mean_std,
    run_rows,
    write_groups_csv,
    write_runs_csv,
    write_text,
)

DEFAULT_METRIC = (
    result_keys.STUDENT_BEST_VAL_ACC
)  # choose on validation, report test: the test set never picks the winner


@dataclass
class Report:
    """What was written, and the winner, for the caller to print."""

    runs: list[Run]
    groups: list[Group]
    metric: str
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pruned_rows: list[str] = field(default_factory=list)  # a prune-ratio sweep's accuracy-against-cost table

    @property
    def failed(self) -> list[Run]:
        return [run for run in self.runs if not run.ok]

    @property
    def best(self) -> Group | None:
        return self.groups[0] if self.groups and self.groups[0].mean(self.metric) is not None else None

    def best_line(self) -> str:
        best = self.best
        if best is None:
            return "no completed run: no best configuration"
        parts = [f"best by {self.metric}: {best.label()}"]
        for title, key in (
            ("test acc", result_keys.STUDENT_TEST_ACC),
            ("best val acc", result_keys.STUDENT_BEST_VAL_ACC),
            ("Δ", DELTA),
        ):
            if best.mean(key) is not None:
                parts.append(f"{title} {mean_std(best, key, percent=True)}{' pp' if key == DELTA else '%'}")
        seeds = len(best.completed)
        parts.append(f"{seeds} seed{'s' if seeds != 1 else ''}")
        return " · ".join(parts)


def write_report(
    runs: Sequence[Run],
    out_dir: Path,
    metric: str = DEFAULT_METRIC,
    axes: tuple[str, str] | None = None,
    title: str = "kdlab sweep report",
) -> Report:
    """Analyse ``runs`` and write the report files into ``out_dir`` (atomically, so a reader never sees half a file)."""
    runs = list(runs)
    out_dir = Path(out_dir)
    repeats = mark_repeats(runs)
    unmatched = annotate_deltas(runs)
    metric = selection_metric(runs, metric)
    report = Report(runs, rank(group_by_setting(runs), metric), metric)
    keys = swept_keys(runs)
    report.files["runs.csv"] = write_runs_csv(out_dir / "runs.csv", runs, keys, out_dir)
    report.files["summary.csv"] = write_groups_csv(out_dir / "summary.csv", report.groups)
    unpruned, pruned = pruning.pruned_points(runs) if pruning.is_prune_sweep(keys) else (None, [])
    heat_metric = pruning.PRUNED_TOP1 if unpruned is not None else plots.ACCURACY  # a prune sweep: the pruned student
    x_key, y_key = axes or plots.heatmap_axes(runs)
    for name, path in (
        ("heatmap.png", plots.heatmap(runs, out_dir / "heatmap.png", x_key, y_key, heat_metric)),
        ("accuracy_vs_size.png", plots.accuracy_vs_size(runs, out_dir / "accuracy_vs_size.png")),
    ):
        if path is not None:
            report.files[name] = path
    if unpruned is not None:
        report.files["accuracy_vs_cost.png"] = pruning.accuracy_vs_cost(
            unpruned, pruned, out_dir / "accuracy_vs_cost.png"
        )
        report.pruned_rows = pruning.markdown_rows(unpruned, pruned)
    if "heatmap.png" not in report.files:
        report.notes.append(f"no heatmap: the distilled runs do not span a {x_key} × {y_key} grid")
    if repeats:
        report.notes.append(f"{repeats} run(s) repeat the config and seed of a later run: counted once")
    if unmatched:
        report.notes.append(
            f"{unmatched} distilled run(s) have no kd={BASELINE_METHOD} run with the same data/student/optim/trainer, "
            "so no Δ (add one, e.g. python -m kdlab -m hparams_search=kd_seeds, and pass both dirs)"
        )
    report.files["report.md"] = write_text(out_dir / "report.md", _markdown(report, keys, out_dir, title))
    return report


def _markdown(report: Report, keys: Sequence[str], out_dir: Path, title: str) -> str:
    runs = report.runs
    common = " ".join(f"{k}={v}" for k, v in common_settings(runs).items()) or "(none)"
    lines = [
        f"# {title}",
        "",
        f"{len(runs)} runs: {len(runs) - len(report.failed)} completed, {len(report.failed)} failed or missing.",
        f"Settings shared by all runs: `{common}`. Accuracies in %, test set unless named; "
        f"configurations ranked by {report.metric} (mean over seeds).",
        "",
        f"**{report.best_line()}**",
        "",
        *[f"- {note}" for note in report.notes],
        "",
        "## Configurations (mean ± std over seeds)",
        "",
        markdown(group_rows(report.groups)),
    ]
    heat_caption = "Pruned student accuracy" if report.pruned_rows else "Student accuracy"
    for name, caption in (("heatmap.png", heat_caption), ("accuracy_vs_size.png", "Accuracy against size")):
        if name in report.files:
            lines += [f"![{caption}]({name})", ""]
    if report.pruned_rows:
        lines += ["## Pruned students (mean ± std over runs; the first row is the unpruned student)", ""]
        lines += [*report.pruned_rows, "", "![Accuracy against cost](accuracy_vs_cost.png)", ""]
    lines += ["## All runs", "", markdown(run_rows(runs, keys, out_dir))]
    if report.failed:
        lines += ["## Failed runs", ""]
        lines += [f"- `{run.path.name}` ({run.status}): {run.error or 'no error recorded'}" for run in report.failed]
    return "\n".join(lines) + "\n"
