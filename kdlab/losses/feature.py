"""Feature-based distillation losses: functions of intermediate feature maps."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def hint_mse(student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
    """FitNet hint loss of Romero et al., "FitNets: Hints for Thin Deep Nets" (arXiv:1412.6550).

    ``mean((r(f_s) − f_t)²)`` over every element, as in RepDistiller/mdistiller; ``student_feat`` is the output of the
    regressor ``r`` and must already have the teacher's shape.
    """
    if student_feat.shape != teacher_feat.shape:
        raise ValueError(
            f"hint_mse needs equal shapes, got student {tuple(student_feat.shape)} "
            f"and teacher {tuple(teacher_feat.shape)}: pass the student map through a connector first"
        )
    return F.mse_loss(student_feat, teacher_feat)
