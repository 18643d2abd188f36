"""Artifacts and images of a W&B run: the teacher a student learned from (input), the student (output), plots.

Offline, ``Run.use_artifact`` refuses to run (wandb 0.31: "Cannot use artifact when in offline mode"); the record it
would write online is the one ``_log_artifact(..., use_after_commit=True)`` writes, so that is written offline and
``wandb sync`` turns it into the same input edge. A file's artifact digest is its content's, so the teacher file a
student declares resolves, once synced, to the version its teacher run logged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

TEACHER_ARTIFACT_TYPE = "model"


def artifact_name(*parts: str) -> str:
    """A W&B artifact name (letters, digits, ``-_.``) from readable parts: ``teacher-resnet32x4-cifar100``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))


def teacher_artifact_name(teacher: str, data: str) -> str:
    """The teacher's ``model`` artifact: one name per teacher and data set, a version per distinct file."""
    return artifact_name("teacher", teacher, data)


def model_artifact(name: str, path: Path, metadata: dict[str, Any]) -> Any:
    import wandb

    artifact = wandb.Artifact(name, type=TEACHER_ARTIFACT_TYPE, metadata=metadata)
    artifact.add_file(str(path), name=Path(path).name)
    return artifact


def log_output_model(run: Any, name: str, path: Path, metadata: dict[str, Any]) -> None:
    """Log ``path`` as a ``model`` artifact this run produced."""
    run.log_artifact(model_artifact(name, path, metadata))


def use_input_model(run: Any, name: str, path: Path, metadata: dict[str, Any]) -> None:
    """Declare ``path`` (a model another run logged) as this run's input, online and offline alike."""
    artifact = model_artifact(name, path, metadata)
    if run.settings._offline:
        run._log_artifact(artifact, is_user_created=True, use_after_commit=True)
    else:
        run.use_artifact(artifact)


def log_image(run: Any, key: str, path: Path) -> None:
    """Log a PNG (``report.png``) as an image, when it was written."""
    import wandb

    if Path(path).is_file():
        run.log({key: wandb.Image(str(path))})


def define_summaries(run: Any) -> None:
    """Best-of summaries a dashboard reads: the best validation accuracy, the lowest validation losses."""
    step = "trainer/global_step"  # the step axis Lightning's WandbLogger gives every metric
    for name in ("val/acc", "val/acc_top5"):
        run.define_metric(name, step_metric=step, summary="max")
    run.define_metric("val/loss*", step_metric=step, summary="min")


def update_summary(run: Any, metrics: dict[str, Any]) -> None:
    """Final numbers go to the summary only: a value logged once as history is a chart with one point."""
    run.summary.update({k: v for k, v in metrics.items() if isinstance(v, int | float | str)})
