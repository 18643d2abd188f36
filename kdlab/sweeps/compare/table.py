"""The report's tables: every run (CSV + Markdown) and every configuration as mean ± std over seeds."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from kdlab import result_keys
from kdlab.io import atomic_write
from kdlab.sweeps.compare.analysis import DELTA, Group
from kdlab.sweeps.compare.collect import SEED_KEY, Run

# (column title, results key, shown as a percentage)
METRIC_COLUMNS = (
    ("student acc", result_keys.STUDENT_TEST_ACC, True),
    ("best-ckpt acc", result_keys.STUDENT_TEST_ACC_BEST_CKPT, True),
    ("best val acc", result_keys.STUDENT_BEST_VAL_ACC, True),
    ("teacher acc", result_keys.TEACHER_TEST_ACC, True),
    (result_keys.RETENTION, result_keys.RETENTION, True),
    ("agreement", result_keys.STUDENT_TEST_AGREEMENT, True),
    ("Δ vs kd=none", DELTA, True),
    ("student params", result_keys.STUDENT_PARAMS, False),
)


def _number(value: float | None, percent: bool, signed: bool = False) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def mean_std(group: Group, key: str, percent: bool) -> str:
    """``95.20 ± 0.31`` (± only with two or more seeds, never for sizes); deltas carry their sign."""
    mean, std = group.mean(key), (group.std(key) if percent else None)
    text = _number(mean, percent, signed=key == DELTA)
    return text if std is None or mean is None else f"{text} ± {_number(std, percent)}"


def _columns(keys: Sequence[str]) -> list[str]:
    return [k for k in keys if k != SEED_KEY]


def run_rows(runs: Sequence[Run], keys: Sequence[str], root: Path) -> list[dict[str, str]]:
    """One row per job, values as text for Markdown (accuracies in %)."""
    rows = []
    for run in runs:
        row = {"job": _relative(run.path, root), "status": run.status}
        row.update({k: str(run.setting(k) or "—") for k in _columns(keys)})
        row["seed"] = str(run.setting(SEED_KEY) or run.metrics.get("seed", "—"))
        row.update({title: _number(run.metric(key), pct, key == DELTA) for title, key, pct in METRIC_COLUMNS})
        row["note"] = (run.error or "").splitlines()[0][:120] if run.error else ""
        row["note"] += f"repeated by {_relative(run.repeat_of, root)}, counted once" if run.repeat_of else ""
        rows.append(row)
    return rows


def group_rows(groups: Sequence[Group]) -> list[dict[str, str]]:
    """One row per configuration: runs completed / started, then each metric as mean ± std over seeds."""
    rows = []
    for group in groups:
        row = dict(group.settings)
        row["runs"] = f"{len(group.completed)}/{len(group.runs)}"
        row.update({title: mean_std(group, key, pct) for title, key, pct in METRIC_COLUMNS})
        rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, str]]) -> str:
    if not rows:
        return "_(none)_\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row.get(h, "").replace("|", "\\|") for h in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_runs_csv(path: Path, runs: Sequence[Run], keys: Sequence[str], root: Path) -> Path:
    """Raw values (fractions, not %) keyed as in results.json, one row per job: for pandas, spreadsheets, plots."""
    metric_keys = [key for _, key, _ in METRIC_COLUMNS] + [
        result_keys.WALL_TIME,
        result_keys.TEACHER_SOURCE,
        result_keys.KD_METHOD,
    ]
    header = ["job", "status", *_columns(keys), SEED_KEY, *metric_keys, "error", "repeat_of"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    for run in runs:
        row = {"job": _relative(run.path, root), "status": run.status, "error": run.error or ""}
        row["repeat_of"] = _relative(run.repeat_of, root) if run.repeat_of else ""
        row.update({k: run.setting(k) for k in _columns(keys)})
        row[SEED_KEY] = run.setting(SEED_KEY) or run.metrics.get("seed")
        row.update({k: run.metrics.get(k) for k in metric_keys})
        writer.writerow(row)
    payload = buffer.getvalue().encode()
    return atomic_write(path, lambda handle: handle.write(payload))


def write_text(path: Path, text: str) -> Path:
    payload = text.encode()
    return atomic_write(path, lambda handle: handle.write(payload))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve())) or "."
    except ValueError:
        return str(path)


def write_groups_csv(path: Path, groups: Sequence[Group]) -> Path:
    """Per configuration: runs, then ``<metric>_mean`` and ``<metric>_std`` over seeds (raw fractions)."""
    settings = list(dict.fromkeys(k for group in groups for k in group.settings))
    stats = [f"{key}_{stat}" for _, key, _ in METRIC_COLUMNS for stat in ("mean", "std")]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*settings, "completed", "runs", *stats])
    writer.writeheader()
    for group in groups:
        row = {**group.settings, "completed": len(group.completed), "runs": len(group.runs)}
        for _, key, _ in METRIC_COLUMNS:
            row[f"{key}_mean"], row[f"{key}_std"] = group.mean(key), group.std(key)
        writer.writerow(row)
    payload = buffer.getvalue().encode()
    return atomic_write(path, lambda handle: handle.write(payload))
