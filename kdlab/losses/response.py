"""Response-based distillation losses: functions of the logits only.

The teacher side never carries a gradient: every function detaches the teacher's logits.
"""

from __future__ import annotations

import math

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


def kd_reverse_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Reverse-KL soft targets ("mode-seeking"), as in MiniLLM (Gu et al., arXiv:2306.08543) and GKD at β = 1.

    ``T² · KL(softmax(s/T) ‖ softmax(t/T))``, batchmean. The student distribution is both the weight and the
    argument, so the gradient flows through both.
    """
    _check_temperature(temperature)
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    return _kl_batchmean(log_p_teacher, log_p_student) * temperature**2


def kd_js(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Jensen–Shannon soft targets (symmetric, bounded by ``T² ln 2``); GKD's JSD(β = ½) (Agarwal et al., 2306.13649).

    ``T² · (½ KL(p ‖ m) + ½ KL(q ‖ m))`` with ``p = softmax(t/T)``, ``q = softmax(s/T)``, ``m = ½(p + q)``; ``log m``
    is a logsumexp of the two log-probabilities, so it never takes ``log 0``.
    """
    _check_temperature(temperature)
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    return 0.5 * (_kl_batchmean(log_m, log_p) + _kl_batchmean(log_m, log_q)) * temperature**2


DIVERGENCES = {"forward_kl": kd_kl, "reverse_kl": kd_reverse_kl, "js": kd_js}


def standardize_logits(logits: Tensor, eps: float = 1e-7) -> Tensor:
    """Z-score each row of logits: Sun et al., "Logit Standardization in Knowledge Distillation" (arXiv:2403.01427).

    ``Z(x) = (x − mean(x)) / (std(x) + ε)``, per sample and per model; the base temperature is applied afterwards by
    the loss. As in the authors' code (``normalize`` in ``KD.py``), ``std`` is unbiased (÷ (K−1), the paper's
    Algorithm 1 divides by K) with ε = 1e-7, and the student's mean and std keep their gradient.
    """
    mean = logits.mean(dim=-1, keepdim=True)
    return (logits - mean) / (logits.std(dim=-1, keepdim=True) + eps)


def tf_kd_virtual_teacher(
    student_logits: Tensor, target: Tensor, temperature: float, correct_prob: float = 0.99
) -> Tensor:
    """Tf-KD_reg of Yuan et al., "Revisiting Knowledge Distillation via Label Smoothing Regularization" (1909.11723).

    A teacher-free regulariser: ``KL(softmax(p^d / T) ‖ softmax(s))``, batchmean, with the virtual teacher
    ``p^d_k = a`` for the true class and ``(1 − a)/(K − 1)`` elsewhere. As in the authors' code
    (``loss_kd_regularization``), the temperature softens the *probabilities* ``p^d`` (nearly uniform at K = 100) and
    the student side is at T = 1 with no ``T²``; their element-wise mean × multiplier becomes a config weight here.
    """
    _check_temperature(temperature)
    num_classes = student_logits.shape[1]
    if num_classes < 2 or not 0.0 < correct_prob < 1.0:
        raise ValueError(f"Tf-KD needs ≥ 2 classes and 0 < correct_prob < 1, got {num_classes}, {correct_prob}")
    virtual = torch.full_like(student_logits, (1.0 - correct_prob) / (num_classes - 1))
    virtual = virtual.scatter(1, target.view(-1, 1), correct_prob)
    log_p_teacher = F.log_softmax(virtual / temperature, dim=1)
    return _kl_batchmean(F.log_softmax(student_logits, dim=1), log_p_teacher)


def cs_kd(logits: Tensor, partner_logits: Tensor, temperature: float) -> Tensor:
    """CS-KD of Yun et al., "Regularizing Class-wise Predictions via Self-knowledge Distillation" (arXiv:2003.13964).

    ``T² · KL(softmax(z(x')/T) ‖ softmax(z(x)/T))``, batchmean, where row i of ``partner_logits`` is the same network's
    output on another sample of row i's class; the partner side is a constant (the authors' code computes it under
    ``no_grad``), so the term pulls each sample's prediction towards its class-mate's, dark knowledge included.
    """
    return kd_kl(logits, partner_logits.detach(), temperature)


def deit_hard_distillation(dist_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """DeiT's hard-label distillation, Touvron et al., "Training data-efficient image transformers & distillation
    through attention" (arXiv:2012.12877): ``CE(z_dist, argmax z_t)``, mean over the batch, on the distillation
    token's head; the teacher's pseudo-label is not smoothed. The paper's objective is ``½·CE(z_cls, y)`` plus ½ this.
    """
    return F.cross_entropy(dist_logits, teacher_logits.detach().argmax(dim=1))


def deit_soft_distillation(dist_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """DeiT's soft distillation, Touvron et al. 2021 (arXiv:2012.12877), as its ``DistillationLoss`` computes it:
    ``T² · Σ KL(softmax(t/T) ‖ softmax(z_dist/T)) / (B·C)`` on the distillation token's head.

    The sum is divided by every element (B·C), not by the batch: :func:`kd_kl` / C. Kept so that DeiT's α means the
    same here; timm's ``TokenDistillationTask`` uses batchmean instead (C times stronger at the same weight).
    """
    return kd_kl(dist_logits, teacher_logits, temperature) / dist_logits.shape[1]


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


__all__ = [
    "dist",
    "dkd",
    "dkd_nckd",
    "dkd_tckd",
    "kd_js",
    "kd_kl",
    "kd_reverse_kl",
    "standardize_logits",
    "tf_kd_virtual_teacher",
    "top1_agreement",
]
