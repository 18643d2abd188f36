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
from kdlab.sweeps.compare.published import PAPERS, comparison_markdown, comparison_rows
from kdlab.sweeps.compare.sweep_report import DEFAULT_METRIC, Report, write_report
from kdlab.sweeps.compare.table import group_rows, write_text


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
    p.add_argument(
        "--paper",
        choices=sorted(PAPERS),
        default=None,
        help="instead of the sweep report: the sweep's CIFAR-100 runs beside the paper's published table "
        "(CRD: last epoch, one run; DKD: best epoch, mean of 5), written to paper_<name>.md",
    )
    return p


def compare_with_paper(runs: list, out: Path, name: str, console: Console | None = None) -> Path:
    """Write and print ``paper_<name>.md``: the runs' numbers beside the published rows of their pairs."""
    rows = comparison_rows(runs, name)
    path = write_text(out / f"paper_{name}.md", comparison_markdown(rows, name))
    console = console or Console(width=max(120, Console().width))
    table = Table(title=f"CIFAR-100 top-1 % beside {PAPERS[name].title} (the paper: {PAPERS[name].protocol})")
    for column in rows[0] if rows else ():
        table.add_column(column, justify="left" if column in ("teacher → student", "method") else "right")
    for row in rows:
        table.add_row(*row.values())
    console.print(table if rows else "no CIFAR-100 run of a pair in the paper's table", markup=False)
    console.print(f"wrote {path}", markup=False, highlight=False)
    return path


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
    for line in report.pruned_rows:  # a prune sweep: the pruned students, which the table above does not show
        console.print(line, **say)
    for note in report.notes:
        console.print(f"note: {note}", **say)
    for run in report.failed:
        console.print(f"{run.status}: {run.path} — {run.error}", style="red", **say)
    console.print("wrote " + ", ".join(str(path) for path in report.files.values()), **say)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        runs = collect_runs(args.dirs)
        if args.paper:
            compare_with_paper(runs, args.out or args.dirs[0], args.paper)
            return 0
        report = write_report(runs, args.out or args.dirs[0], args.metric, tuple(args.heatmap or ()) or None)
    except ConfigError as error:
        print(f"kdlab-compare: error: {error}", file=sys.stderr)
        return 2
    print_report(report)
    return 0
