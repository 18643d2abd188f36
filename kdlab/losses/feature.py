"""Feature-based distillation losses: functions of intermediate feature maps.

The teacher side never carries a gradient: every function detaches the teacher's features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
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
    return F.mse_loss(student_feat, teacher_feat.detach())


def _pool_to_smaller(student_feat: Tensor, teacher_feat: Tensor) -> tuple[Tensor, Tensor]:
    """Adaptive-average-pool the spatially larger of two ``(B, C, H, W)`` maps to the other's size (RepDistiller)."""
    size = (min(student_feat.shape[-2], teacher_feat.shape[-2]), min(student_feat.shape[-1], teacher_feat.shape[-1]))
    pooled = [
        f if tuple(f.shape[-2:]) == size else F.adaptive_avg_pool2d(f, size) for f in (student_feat, teacher_feat)
    ]
    return pooled[0], pooled[1]


def _attention_map(feat: Tensor, p: float) -> Tensor:
    return F.normalize(feat.pow(p).mean(dim=1).flatten(1), dim=1)


def attention_transfer(student_feat: Tensor, teacher_feat: Tensor, p: float = 2.0) -> Tensor:
    """AT of Zagoruyko & Komodakis, "Paying More Attention to Attention" (arXiv:1612.03928), one stage.

    ``mean_{B×HW}((a(f_s) − a(f_t))²)`` with ``a(f) = normalize_L2(vec(mean_c f_c^p))``; the larger map is
    adaptive-avg-pooled to the smaller one first. Channel-agnostic; β = 1000 without the paper's /2 (RepDistiller).
    """
    s, t = _pool_to_smaller(student_feat, teacher_feat.detach())
    return (_attention_map(s, p) - _attention_map(t, p)).pow(2).mean()


def _poly_kernel_mean(a: Tensor, b: Tensor) -> Tensor:
    """Mean over the batch and all channel pairs of ``(a_i · b_j)²`` for ``(B, C, HW)`` inputs.

    ``Σ_ij (a_i · b_j)² = ‖A Bᵀ‖²_F = ⟨AᵀA, BᵀB⟩_F``, so when the maps are small (deep stages: HW of 1–16 against
    hundreds of channels) the two HW×HW Gram matrices give the same sum at a fraction of the C_a×C_b one's cost.
    """
    batch, channels_a, positions = a.shape
    channels_b = b.shape[1]
    if positions * positions < channels_a * channels_b:
        total = (torch.bmm(a.transpose(1, 2), a) * torch.bmm(b.transpose(1, 2), b)).sum()
    else:
        total = torch.bmm(a, b.transpose(1, 2)).pow(2).sum()
    return total / (batch * channels_a * channels_b)


def nst(student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
    """NST of Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer" (arXiv:1707.01219).

    ``MMD² = mean k(t, t) + mean k(s, s) − 2 mean k(s, t)`` between each sample's channel maps (L2-normalised over
    ``HW``) with the polynomial kernel ``k(x, y) = (xᵀy)²``; the larger map is pooled to the smaller one first.
    """
    s, t = _pool_to_smaller(student_feat, teacher_feat.detach())
    s = F.normalize(s.flatten(2), dim=2)
    t = F.normalize(t.flatten(2), dim=2)
    return _poly_kernel_mean(t, t) + _poly_kernel_mean(s, s) - 2 * _poly_kernel_mean(s, t)


def patient_loss(student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
    """Patience loss of Sun et al., "Patient Knowledge Distillation for BERT Model Compression" (arXiv:1908.09355).

    ``mean_l mean((s_l/‖s_l‖ − t_l/‖t_l‖)²)`` over pairs of ``(B, D_l)`` vectors (per-sample L2 normalisation, the
    official code's ``normalize_patience``); ``student_feats`` must already be projected to the teacher's widths.
    """
    if len(student_feats) != len(teacher_feats) or not student_feats:
        raise ValueError(
            f"patient_loss needs equally many (≥ 1) vectors, got {len(student_feats)}/{len(teacher_feats)}"
        )
    losses = []
    for s, t in zip(student_feats, teacher_feats, strict=True):
        if s.dim() != 2 or s.shape != t.shape:
            raise ValueError(f"patient_loss needs equal (B, D) shapes, got {tuple(s.shape)} and {tuple(t.shape)}")
        losses.append(F.mse_loss(F.normalize(s, dim=1), F.normalize(t.detach(), dim=1)))
    return torch.stack(losses).mean()


__all__ = ["attention_transfer", "hint_mse", "nst", "patient_loss"]


def review_hcl(student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
    """Hierarchical context loss of Chen et al., "Distilling Knowledge via Knowledge Review" (arXiv:2104.09044).

    Per level: ``(MSE(f_s, f_t) + Σ_l w_l·MSE(pool_l(f_s), pool_l(f_t))) / (1 + Σ_l w_l)`` over the pooled sizes
    l ∈ (4, 2, 1) smaller than the map's height, with w halving (½, ¼, ⅛) for each size used; summed over levels.
    All MSEs are element-wise means, as in the authors' ``hcl``; the student maps come from the ABF fusion.
    """
    total = student_feats[0].new_zeros(())
    for fs, ft in zip(student_feats, teacher_feats, strict=True):
        ft = ft.detach()
        loss, weight, weight_sum = F.mse_loss(fs, ft), 1.0, 1.0
        for size in (4, 2, 1):
            if size >= fs.shape[-2]:
                continue
            weight /= 2.0
            loss = loss + weight * F.mse_loss(F.adaptive_avg_pool2d(fs, size), F.adaptive_avg_pool2d(ft, size))
            weight_sum += weight
        total = total + loss / weight_sum
    return total
