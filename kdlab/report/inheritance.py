"""The report's "what did the student inherit" part: flat keys, confusion-matrix PNG and W&B images, computed from
the test logits the compression report already holds (``kdlab.measure.inheritance`` does the maths)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from kdlab import result_keys
from kdlab.measure.inheritance import calibration, confusion_matrix, error_inheritance, per_class_accuracy

CONFUSION_PNG = "confusion.png"
ROLES = ("teacher", "baseline", "student")  # the fp32 rows that have a teacher to inherit from (or are it)


def inheritance_metrics(logits: Mapping[str, Tensor], targets: Tensor, num_classes: int) -> dict[str, float | None]:
    """Flat keys for the roles present in ``logits`` (``teacher`` required; ``student``, ``baseline`` optional)."""
    predictions = {role: logits[role].argmax(dim=1) for role in ROLES if role in logits}
    per_class = {role: per_class_accuracy(p, targets, num_classes) for role, p in predictions.items()}
    flat: dict[str, float | None] = {}
    for role in predictions:
        flat.update(
            {f"{role}/{field}": value for field, value in calibration(logits[role], targets, num_classes).items()}
        )
        flat.update(_per_class(role, "acc", per_class[role]))
        if role != "teacher":
            inherited = error_inheritance(predictions[role], predictions["teacher"], targets)
            flat.update({f"{role}/{field}": value for field, value in inherited.items()})
    if "student" in per_class:
        for other in ("teacher", "baseline"):
            if other in per_class:
                flat.update(_per_class("student", f"delta_vs_{other}", per_class["student"] - per_class[other]))
    copied, baseline_copied = (
        flat.get(result_keys.STUDENT_COPIED_ERROR_RATE),
        flat.get(result_keys.BASELINE_COPIED_ERROR_RATE),
    )
    if copied is not None and baseline_copied is not None:
        flat[result_keys.STUDENT_COPIED_ERROR_RATE_VS_BASELINE] = copied - baseline_copied
    return flat


def _per_class(role: str, field: str, values: Tensor) -> dict[str, float | None]:
    """NaN (a class absent from the test split) becomes None, which JSON can hold."""
    return {
        result_keys.per_class_key(role, field, str(label)): None if math.isnan(v) else v
        for label, v in enumerate(values.tolist())
    }


def plot_confusion_matrices(logits: Mapping[str, Tensor], targets: Tensor, num_classes: int, path: Path) -> Path:
    """One row-normalised confusion matrix per role, side by side (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    roles = [role for role in ROLES if role in logits]
    figure, axes = plt.subplots(1, len(roles), figsize=(4.2 * len(roles), 4), squeeze=False)
    for axis, role in zip(axes[0], roles, strict=True):
        counts = confusion_matrix(logits[role].argmax(dim=1), targets, num_classes).float()
        rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
        axis.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
        errors = int(counts.sum() - counts.diagonal().sum())
        axis.set_title(f"{role}: {errors} test errors", fontsize=9)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def log_confusion_image(logger: Any, path: Path) -> None:
    """The PNG as a W&B image when the run logs to W&B."""
    from pytorch_lightning.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log({"report/confusion": wandb.Image(str(path))})


def is_inheritance_key(key: str) -> bool:
    return key in result_keys.INHERITANCE_KEYS or result_keys.PER_CLASS_MARK in key or key == result_keys.CONFUSION_PLOT
