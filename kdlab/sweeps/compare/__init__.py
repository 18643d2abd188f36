"""Compare the runs of sweeps: tables (CSV, Markdown), a temperature × alpha heatmap, accuracy against size."""

from kdlab.sweeps.compare.collect import Run, collect_runs
from kdlab.sweeps.compare.sweep_report import Report, write_report

__all__ = ["Report", "Run", "collect_runs", "write_report"]
