"""Hydra callback for ``python -m kdlab -m …``: report the sweep at its end and fail it if any job failed.

In a multirun, ``kdlab.cli`` records a failing job in its ``results.json`` and returns instead of raising, so the
launcher goes on with the other jobs (Hydra's basic sweeper would stop after the first failed batch). This callback
then writes the comparison report into the sweep dir and exits with status 1 when any job failed or left no results.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("kdlab")


def _job_files(sweep_dir: Path) -> dict[Path, float]:
    """Each job's marker files (Hydra's overrides.yaml, results.json) with their modification times."""
    files = [*sweep_dir.glob("**/.hydra/overrides.yaml"), *sweep_dir.glob("**/results.json")]
    return {path: path.stat().st_mtime_ns for path in files if path.is_file()}


def _job_dir(marker: Path) -> Path:
    return marker.parent.parent if marker.name == "overrides.yaml" else marker.parent


class SweepReport(Callback):
    """Registered under ``hydra.callbacks`` in ``conf/config.yaml``; does nothing for a single run."""

    def __init__(self) -> None:
        self.before: dict[Path, float] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        self.before = _job_files(sweep_dir) if sweep_dir.is_dir() else {}

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from kdlab.sweeps.compare.cli import print_report
        from kdlab.sweeps.compare.collect import read_run
        from kdlab.sweeps.compare.sweep_report import write_report

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            log.error("sweep dir %s was never created: no job ran", sweep_dir)
            sys.exit(1)
        fresh = {p for p, mtime in _job_files(sweep_dir).items() if self.before.get(p) != mtime}  # this sweep's jobs
        runs = [read_run(job) for job in sorted({_job_dir(p) for p in fresh} - {sweep_dir})]
        if not runs:
            log.error("no job of this sweep left a results.json or a .hydra folder in %s", sweep_dir)
            sys.exit(1)
        try:
            print_report(write_report(runs, sweep_dir, title=f"kdlab sweep {sweep_dir.name}"))
            log_sweep_images(config, sweep_dir)
        except Exception:  # a broken report must not hide the sweep's outcome
            log.exception("could not write the sweep report into %s", sweep_dir)
        failed = [run for run in runs if not run.ok]
        if failed:
            described = [
                f"{run.path.name} ({' '.join(f'{k}={v}' for k, v in run.overrides.items())})" for run in failed
            ]
            log.error("%d of %d jobs failed: %s", len(failed), len(runs), "; ".join(described))
            sys.exit(1)


SWEEP_IMAGES = ("heatmap.png", "accuracy_vs_size.png", "accuracy_vs_cost.png")


def log_sweep_images(config: DictConfig, sweep_dir: Path) -> None:
    """With the W&B logger, the sweep's plots as images of a ``job_type=sweep-report`` run in the sweep's group."""
    from kdlab.tracking import finish_wandb, is_wandb, log_image, wandb_logger

    logger_cfg = config.get("logger")
    images = [sweep_dir / name for name in SWEEP_IMAGES if (sweep_dir / name).is_file()]
    if not is_wandb(logger_cfg) or not images:
        return
    group = logger_cfg.get("group") or sweep_dir.name  # the jobs' group (kdlab.tracking.sweep_group)
    logger = wandb_logger(
        str(sweep_dir), logger_cfg.get("project", "kdlab"), logger_cfg.get("mode", "auto"), group,
        name=f"report-{sweep_dir.name}", job_type="sweep-report",
    )  # fmt: skip
    for path in images:
        log_image(logger.experiment, f"sweep/{path.stem}", path)
    finish_wandb()
