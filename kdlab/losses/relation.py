"""Relation-based distillation losses: functions of how samples in a batch relate to each other.

The teacher side carries no gradient, except in :func:`cc`, whose teacher input is the output of a *trainable*
teacher-side embedding (CC trains both embeddings), and :func:`crd_nce`, which takes one side's embedding as anchor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _pairwise_distances(emb: Tensor, eps: float = 1e-12) -> Tensor:
    squared = emb.pow(2).sum(dim=1)
    prod = emb @ emb.t()
    dist = (squared.unsqueeze(0) + squared.unsqueeze(1) - 2 * prod).clamp(min=eps).sqrt()
    dist = dist.clone()
    dist[range(len(emb)), range(len(emb))] = 0
    return dist


def _mean_normalised(dist: Tensor) -> Tensor:
    return dist / dist[dist > 0].mean()


def rkd_distance(student_emb: Tensor, teacher_emb: Tensor) -> Tensor:
    """RKD distance loss of Park et al., "Relational Knowledge Distillation" (arXiv:1904.05068).

    ``Huber(ψ_D(s_i, s_j), ψ_D(t_i, t_j))`` over all pairs, where ``ψ_D`` is the Euclidean distance divided by the
    mean non-zero distance in the batch; the teacher side carries no gradient.
    """
    s = student_emb.flatten(1)
    t = teacher_emb.flatten(1)
    with torch.no_grad():
        t_d = _mean_normalised(_pairwise_distances(t))
    s_d = _mean_normalised(_pairwise_distances(s))
    return F.smooth_l1_loss(s_d, t_d)


def _angles(emb: Tensor) -> Tensor:
    diff = F.normalize(emb.unsqueeze(0) - emb.unsqueeze(1), p=2, dim=2)
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()


def rkd_angle(student_emb: Tensor, teacher_emb: Tensor) -> Tensor:
    """RKD angle loss of Park et al., "Relational Knowledge Distillation" (arXiv:1904.05068).

    ``Huber(cos∠(s_i, s_j, s_k), cos∠(t_i, t_j, t_k))`` over all triplets, the angle taken at ``s_j``; the teacher
    side carries no gradient.
    """
    s = student_emb.flatten(1)
    t = teacher_emb.flatten(1)
    with torch.no_grad():
        t_angle = _angles(t)
    return F.smooth_l1_loss(_angles(s), t_angle)


def _row_normalised_gram(feat: Tensor) -> Tensor:
    flat = feat.flatten(1)
    return F.normalize(flat @ flat.t(), dim=1)


def similarity_preserving(student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
    """SP of Tung & Mori, "Similarity-Preserving Knowledge Distillation" (arXiv:1907.09682).

    ``‖G̃_t − G̃_s‖_F² / B²`` with ``G = F Fᵀ`` (``B × B``, from flattened features) and ``G̃`` its rows L2-normalised.
    """
    g_student = _row_normalised_gram(student_feat)
    g_teacher = _row_normalised_gram(teacher_feat.detach())
    return (g_teacher - g_student).pow(2).sum() / len(g_student) ** 2


def _conditional_probabilities(emb: Tensor, eps: float) -> Tensor:
    flat = emb.flatten(1)
    unit = flat / (flat.norm(dim=1, keepdim=True) + eps)
    similarity = (unit @ unit.t() + 1) / 2
    return similarity / similarity.sum(dim=1, keepdim=True)


def pkt(student_emb: Tensor, teacher_emb: Tensor, eps: float = 1e-7) -> Tensor:
    """PKT of Passalis & Tefas, "Learning Deep Representations with Probabilistic Knowledge Transfer" (ECCV 2018,
    arXiv:1803.10837).

    ``mean_ij P_t[i,j] · log((P_t[i,j] + ε) / (P_s[i,j] + ε))`` with ``P[i,j] = K[i,j] / Σ_j K[i,j]`` and
    ``K = (cos(e_i, e_j) + 1) / 2`` (diagonal included); mean over all ``B²`` entries, as in RepDistiller.
    """
    p_student = _conditional_probabilities(student_emb, eps)
    p_teacher = _conditional_probabilities(teacher_emb.detach(), eps)
    return (p_teacher * torch.log((p_teacher + eps) / (p_student + eps))).mean()


def cc(student_emb: Tensor, teacher_emb: Tensor) -> Tensor:
    """Correlation congruence of Peng et al., "Correlation Congruence for Knowledge Distillation" (arXiv:1904.01802).

    ``1/(B−1) · Σ_i Σ_d Δ[i,d] · Δ[i+1,d]`` with ``Δ = |e_s − e_t|``: the authors' consecutive-pair form shipped in
    RepDistiller. Both inputs are outputs of trainable embeddings, so both receive gradients.
    """
    if len(student_emb) < 2:
        raise ValueError(f"cc needs a batch of at least 2 samples, got {len(student_emb)}")
    delta = (student_emb.flatten(1) - teacher_emb.flatten(1)).abs()
    return (delta[:-1] * delta[1:]).sum(dim=1).mean()


def contrast_scores(anchor: Tensor, contrast: Tensor, temperature: float) -> Tensor:
    """``exp(⟨anchor_b, contrast_bk⟩ / τ)`` for ``anchor (B, D)``, ``contrast (B, K+1, D)``; shape ``(B, K+1)``."""
    return torch.exp(torch.bmm(contrast, anchor.unsqueeze(2)).squeeze(2) / temperature)


def crd_nce(
    anchor: Tensor,
    contrast: Tensor,
    temperature: float,
    normaliser: float | Tensor,
    num_data: int,
    eps: float = 1e-7,
) -> Tensor:
    """NCE loss of Tian et al., "Contrastive Representation Distillation" (arXiv:1910.10699), one direction.

    ``−1/B Σ_b [log(h_0 / (h_0 + K/N)) + Σ_{k≥1} log((K/N) / (h_k + K/N))]`` with ``h_k = exp(aᵀm_k/τ) / Z``, where
    ``contrast[:, 0]`` holds the positive memory row and ``contrast[:, 1:]`` the ``K`` negatives (uniform noise
    ``P_n = 1/N``; ε = 1e-7 in the denominators as in RepDistiller). The memory rows carry no gradient.
    """
    scores = contrast_scores(anchor, contrast.detach(), temperature) / normaliser
    noise = (scores.shape[1] - 1) / num_data
    log_positive = torch.log(scores[:, 0] / (scores[:, 0] + noise + eps))
    log_negatives = torch.log(noise / (scores[:, 1:] + noise + eps))
    return -(log_positive.sum() + log_negatives.sum()) / len(scores)


__all__ = ["cc", "crd_nce", "pkt", "rkd_angle", "rkd_distance", "similarity_preserving"]
