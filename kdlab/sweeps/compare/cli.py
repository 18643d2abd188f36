"""``python -m kdlab.sweeps.compare DIR [DIR …]`` (or ``kdlab-compare``): one report over the runs of sweeps."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kdlab.errors import ConfigError
from kdlab.sweeps.compare.collect import collect_runs
from kdlab.sweeps.compare.sweep_report import DEFAULT_METRIC, Report, write_report
from kdlab.sweeps.compare.table import group_rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kdlab-compare",
        description="Read every job's results.json under the given multirun (or run) dirs and write runs.csv, "
        "summary.csv, report.md, heatmap.png and accuracy_vs_size.png; print the best configuration.",
    )
    p.add_argument("dirs", nargs="+", type=Path, help="multirun dirs (multirun/kd_grid-…) or single run dirs")
    p.add_argument("--out", type=Path, default=None, help="where the report goes (default: the first dir)")
    p.add_argument("--metric", default=DEFAULT_METRIC, help=f"ranks configurations (default: {DEFAULT_METRIC})")
    p.add_argument(
        "--heatmap", nargs=2, metavar=("X", "Y"), default=None, help="grid axes (default: kd.temperature kd.alpha)"
    )
    return p


SHOWN = ("runs", "student acc", "best val acc", "Δ vs kd=none", "retention")  # the rest is in report.md


def print_report(report: Report, console: Console | None = None) -> None:
    """The configurations (best first, key columns), the winner, notes, failures and where the files went."""
    console = console or Console(width=max(120, Console().width))
    settings = list(report.groups[0].settings) if report.groups else []
    table = Table(title=f"{len(report.runs)} runs · ranked by {report.metric} · accuracies in %")
    for column in (*settings, *SHOWN):
        table.add_column(column, justify="left" if column in settings else "right")
    for row in group_rows(report.groups):
        table.add_row(*(row[column] for column in (*settings, *SHOWN)))
    console.print(table)
    say = {"markup": False, "highlight": False, "soft_wrap": True}
    console.print(report.best_line(), style="bold", **say)
    for note in report.notes:
        console.print(f"note: {note}", **say)
    for run in report.failed:
        console.print(f"{run.status}: {run.path} — {run.error}", style="red", **say)
    console.print("wrote " + ", ".join(str(path) for path in report.files.values()), **say)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        runs = collect_runs(args.dirs)
        report = write_report(runs, args.out or args.dirs[0], args.metric, tuple(args.heatmap or ()) or None)
    except ConfigError as error:
        print(f"kdlab-compare: error: {error}", file=sys.stderr)
        return 2
    print_report(report)
    return 0
