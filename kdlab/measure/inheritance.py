"""What a student inherits from its teacher, measured on test logits: per-class accuracy, repeated mistakes and
calibration. Pure functions of tensors; the run's report turns them into flat keys and plots.

"Copied mistakes" follow the question Stanton et al. ask in "Does Knowledge Distillation Really Work?"
(arXiv:2106.05945): not only whether the student is wrong where the teacher is, but wrong with the *same* label,
P(ŝ = t̂ | t̂ ≠ y). The same rate for a student trained alone (the ``kd=none`` baseline) is what two models of this
data share anyway; the difference is what distillation transferred.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassCalibrationError, MulticlassConfusionMatrix

ECE_BINS = 15  # Guo et al. 2017, "On Calibration of Modern Neural Networks" (arXiv:1706.04599)


def per_class_accuracy(predictions: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """Accuracy on each class's test samples (``num_classes`` values; NaN for a class with no test sample)."""
    hits = torch.zeros(num_classes).index_add_(0, targets, (predictions == targets).float())
    counts = torch.bincount(targets, minlength=num_classes).float()
    return torch.where(counts > 0, hits / counts.clamp(min=1), torch.full_like(hits, float("nan")))


def _rate(events: Tensor, given: Tensor) -> float | None:
    """P(event | given) as a fraction of the ``given`` samples; None when no sample is given."""
    count = int(given.sum())
    return float((events & given).sum()) / count if count else None


def error_inheritance(predictions: Tensor, teacher_predictions: Tensor, targets: Tensor) -> dict[str, float | None]:
    """P(wrong | teacher wrong), P(wrong | teacher right) and the copied-error rate P(ŷ = t̂ | t̂ ≠ y).

    None where the condition never holds (a teacher without a mistake has nothing to copy)."""
    wrong, teacher_wrong = predictions != targets, teacher_predictions != targets
    return {
        "p_wrong_given_teacher_wrong": _rate(wrong, teacher_wrong),
        "p_wrong_given_teacher_right": _rate(wrong, ~teacher_wrong),
        "copied_error_rate": _rate(predictions == teacher_predictions, teacher_wrong),
    }


def calibration(logits: Tensor, targets: Tensor, num_classes: int, bins: int = ECE_BINS) -> dict[str, float]:
    """Expected calibration error, ECE = Σ_b |B_b|/n · |acc(B_b) − conf(B_b)| over ``bins`` equal-width confidence
    bins (Guo et al. 2017), and the mean top-1 confidence."""
    probabilities = logits.float().softmax(dim=1)
    ece = MulticlassCalibrationError(num_classes, n_bins=bins, norm="l1")(probabilities, targets)
    return {"test_ece": float(ece), "test_mean_confidence": float(probabilities.max(dim=1).values.mean())}


def confusion_matrix(predictions: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """Counts, rows = true class, columns = predicted class."""
    return MulticlassConfusionMatrix(num_classes)(predictions, targets).long()
