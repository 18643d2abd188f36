"""The table a run prints at the end: teacher vs student, retention and size."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def summary_table(metrics: Mapping[str, float | int | str | None]) -> Table:
    table = Table(title=f"kdlab · {metrics.get('kd/method', '')} · {metrics.get('data/name', '')}")
    for column in ("model", "name", "test acc", "top-5", "params", "source"):
        table.add_column(column, justify="right" if column not in ("model", "name", "source") else "left")
    for role in ("teacher", "student"):
        table.add_row(
            role,
            str(metrics.get(f"{role}/name")),
            _pct(metrics.get(f"{role}/test_acc")),
            _pct(metrics.get(f"{role}/test_acc_top5")),
            f"{metrics.get(f'{role}/params') or 0:,}",
            str(metrics.get(f"{role}/source", "")),
        )
    table.caption = (
        f"retention {_pct(metrics.get('retention'))} · params ×{metrics.get('param_ratio') or float('nan'):.2f} smaller"
        f" · agreement {_pct(metrics.get('student/test_agreement'))}"
    )
    return table


def print_summary(metrics: Mapping[str, float | int | str | None]) -> None:
    Console().print(summary_table(metrics))
