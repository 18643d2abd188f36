"""Response-based distillation losses: functions of the logits only."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def kd_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Soft-target loss of Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv:1503.02531).

    ``T² · KL(softmax(t/T) ‖ softmax(s/T))``, summed over classes and averaged over the batch ("batchmean"), the
    reduction of RepDistiller and mdistiller. The ``T²`` keeps the gradient scale independent of ``T``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def top1_agreement(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Fraction of samples where student and teacher predict the same class."""
    return (student_logits.argmax(dim=1) == teacher_logits.argmax(dim=1)).float().mean()


__all__ = ["kd_kl", "top1_agreement"]
