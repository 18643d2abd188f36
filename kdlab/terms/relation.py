"""Relation terms: distil how samples relate to each other in the teacher's embedding space."""

from __future__ import annotations

from torch import Tensor

from kdlab.losses import rkd_angle, rkd_distance
from kdlab.models.outputs import ModelOutputs
from kdlab.terms.base import Batch, DistillationTerm, PairSpec


class RKD(DistillationTerm):
    """Relational KD (Park et al. 2019, arXiv:1904.05068) on the pooled penultimate embeddings.

    Returns ``rkd_distance`` and ``rkd_angle``; the paper's weights (25, 50) live in the ``kd`` config.
    """

    loss_names = ("rkd_distance", "rkd_angle")

    def __init__(self, pair: PairSpec) -> None:
        super().__init__()
        self.needs_embedding = True

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        return {
            "rkd_distance": rkd_distance(student.embedding, teacher.embedding),
            "rkd_angle": rkd_angle(student.embedding, teacher.embedding),
        }
