"""The table a run prints at the end: teacher vs student, retention and size."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

from kdlab import result_keys


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


def inherited_line(metrics: Mapping[str, float | int | str | None]) -> str:
    """Three numbers on what the student took from the teacher: the teacher's mistakes it repeats with the same label
    (beside a student trained alone, when the sweep has one), how often it is wrong where the teacher is, and its
    calibration error beside the teacher's."""
    copied = f"copied mistakes {_pct(metrics.get(result_keys.STUDENT_COPIED_ERROR_RATE))}"
    baseline = metrics.get(result_keys.BASELINE_COPIED_ERROR_RATE)
    if baseline is not None:
        copied += f" (alone {_pct(baseline)})"
    wrong = f"P(wrong | teacher wrong) {_pct(metrics.get(result_keys.STUDENT_P_WRONG_GIVEN_TEACHER_WRONG))}"
    student_ece, teacher_ece = metrics.get(result_keys.STUDENT_TEST_ECE), metrics.get(result_keys.TEACHER_TEST_ECE)
    ece = f"ECE {_pct(student_ece)} (teacher {_pct(teacher_ece)})"
    return f"inherited: {copied} · {wrong} · {ece}"


def print_summary(metrics: Mapping[str, float | int | str | None]) -> None:
    console = Console()
    console.print(summary_table(metrics))
    console.print(inherited_line(metrics))
