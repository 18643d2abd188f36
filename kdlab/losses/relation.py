"""Relation-based distillation losses: functions of how samples in a batch relate to each other."""

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
