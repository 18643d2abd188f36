"""The baseline student of the same sweep: the same student on the same data, trained without distillation.

It is what the report compares against to show what KD added on top of plain training. A Hydra multirun writes
``multirun.yaml`` into its sweep folder and one folder per job beside it; a job with ``kd=none`` there is the baseline.
A single run, or a sweep whose baseline job has not finished yet, has none (``kdlab.report.evaluate`` finds it later).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from torch import nn

from kdlab import result_keys
from kdlab.errors import ConfigError
from kdlab.models import build_model
from kdlab.models.files import load_into
from kdlab.report.settings import ReportSettings

log = logging.getLogger(__name__)


def find_baseline_run(run_dir: Path, student_name: str, data_name: str, seed: int) -> Path | None:
    """The sibling job dir holding a completed ``kd=none`` run of ``student_name`` on ``data_name``; same seed first."""
    run_dir = Path(run_dir).resolve()
    sweep = run_dir.parent
    if not (sweep / "multirun.yaml").is_file():
        return None
    candidates = []
    for results_path in sorted(sweep.glob("*/results.json")):
        job = results_path.parent.resolve()
        results = _read(results_path)
        if job != run_dir and _is_baseline_of(results, student_name, data_name) and (job / "student.pt").is_file():
            candidates.append((results.get("seed") != seed, str(job)))
    return Path(min(candidates)[1]) if candidates else None


def load_baseline(
    run_dir: Path, settings: ReportSettings, num_classes: int, in_chans: int, data_name: str
) -> nn.Module | None:
    """A fresh student filled with the sweep's baseline weights, or None when there is none (or it does not load)."""
    if settings.is_baseline:
        return None
    job = find_baseline_run(run_dir, settings.student_name, data_name, settings.seed)
    if job is None:
        return None
    model = build_model(settings.student_model, num_classes=num_classes, in_chans=in_chans, role="student")
    try:
        load_into(model, job / "student.pt", settings.student_name, num_classes, in_chans)
    except ConfigError as error:
        log.warning("baseline run %s not used: %s", job, error)
        return None
    log.info("baseline student from %s", job)
    return model


def _read(path: Path) -> dict[str, Any]:
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return results if isinstance(results, dict) else {}


def _is_baseline_of(results: dict[str, Any], student_name: str, data_name: str) -> bool:
    return (
        results.get("status") == "completed"
        and results.get(result_keys.KD_METHOD) == "none"
        and results.get(result_keys.STUDENT_NAME) == student_name
        and results.get(result_keys.DATA_NAME) == data_name
    )
