"""Response-based distillation losses: functions of the logits only.

The teacher side never carries a gradient: every function detaches the teacher's logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _kl_batchmean(student_log_probs: Tensor, teacher_log_probs: Tensor) -> Tensor:
    """``KL(p_t ‖ p_s)`` summed over the last dim and averaged over the batch, from log-probabilities."""
    return F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)


def kd_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Soft-target loss of Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv:1503.02531).

    ``T² · KL(softmax(t/T) ‖ softmax(s/T))``, summed over classes and averaged over the batch ("batchmean"), the
    reduction of RepDistiller and mdistiller. The ``T²`` keeps the gradient scale independent of ``T``.
    """
    _check_temperature(temperature)
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    return _kl_batchmean(log_p_student, log_p_teacher) * temperature**2


def top1_agreement(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Fraction of samples where student and teacher predict the same class."""
    return (student_logits.argmax(dim=1) == teacher_logits.argmax(dim=1)).float().mean()


def _split_target(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """The target-class logit ``(B,)`` and the non-target logits ``(B, C−1)``, in class order."""
    if logits.shape[1] < 2:
        raise ValueError(f"DKD needs at least 2 classes, got logits of shape {tuple(logits.shape)}")
    is_target = F.one_hot(target, logits.shape[1]).bool()
    return logits[is_target], logits[~is_target].view(len(logits), -1)


def _binary_log_probs(logits: Tensor, target: Tensor, temperature: float) -> Tensor:
    """``log [p_gt, 1 − p_gt]`` at temperature ``T``, computed in log space (no ``log(1 − p)`` underflow)."""
    gt, others = _split_target(logits / temperature, target)
    return torch.stack([gt, others.logsumexp(dim=1)], dim=1).log_softmax(dim=1)


def dkd_tckd(student_logits: Tensor, teacher_logits: Tensor, target: Tensor, temperature: float) -> Tensor:
    """Target-class part of Zhao et al., "Decoupled Knowledge Distillation" (arXiv:2203.08679).

    ``TCKD = T² · KL(b_t ‖ b_s)`` with ``b = [p_gt, 1 − p_gt]`` at temperature ``T``; batchmean, as in mdistiller.
    """
    _check_temperature(temperature)
    log_b_student = _binary_log_probs(student_logits, target, temperature)
    log_b_teacher = _binary_log_probs(teacher_logits.detach(), target, temperature)
    return _kl_batchmean(log_b_student, log_b_teacher) * temperature**2


def dkd_nckd(student_logits: Tensor, teacher_logits: Tensor, target: Tensor, temperature: float) -> Tensor:
    """Non-target-class part of Zhao et al., "Decoupled Knowledge Distillation" (arXiv:2203.08679).

    ``NCKD = T² · KL(p̂_t ‖ p̂_s)`` with ``p̂`` the softmax at ``T`` over the non-target classes only; batchmean.
    mdistiller gets ``p̂`` by subtracting 1000 from the target logit; dropping that column is the exact version.
    """
    _, student_others = _split_target(student_logits, target)
    _, teacher_others = _split_target(teacher_logits, target)
    return kd_kl(student_others, teacher_others, temperature)


def dkd(
    student_logits: Tensor, teacher_logits: Tensor, target: Tensor, alpha: float, beta: float, temperature: float
) -> Tensor:
    """Decoupled KD of Zhao et al., "Decoupled Knowledge Distillation" (arXiv:2203.08679), mdistiller's signature.

    ``α · TCKD + β · NCKD`` (see :func:`dkd_tckd`, :func:`dkd_nckd`); the warm-up factor is the caller's business.
    """
    tckd = dkd_tckd(student_logits, teacher_logits, target, temperature)
    return alpha * tckd + beta * dkd_nckd(student_logits, teacher_logits, target, temperature)


def _pearson_rows(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (cosine of mean-centred rows)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float, beta: float = 1.0, gamma: float = 1.0
) -> Tensor:
    """DIST of Huang et al., "Knowledge Distillation from A Stronger Teacher" (arXiv:2205.10536).

    ``T² · (β · (1 − mean_i ρ(y_s[i,:], y_t[i,:])) + γ · (1 − mean_c ρ(y_s[:,c], y_t[:,c])))`` with
    ``y = softmax(z/T)`` and ``ρ`` the Pearson correlation (ε = 1e-8): inter-class per sample, intra-class per class
    across the batch, as in ``hunto/image_classification_sota``.
    """
    _check_temperature(temperature)
    y_student = (student_logits / temperature).softmax(dim=1)
    y_teacher = (teacher_logits.detach() / temperature).softmax(dim=1)
    inter = 1 - _pearson_rows(y_student, y_teacher).mean()
    intra = 1 - _pearson_rows(y_student.t(), y_teacher.t()).mean()
    return temperature**2 * (beta * inter + gamma * intra)


__all__ = ["dist", "dkd", "dkd_nckd", "dkd_tckd", "kd_kl", "top1_agreement"]
