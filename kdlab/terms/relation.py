"""Relation terms: distil how samples relate to each other in the teacher's embedding space."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.losses import cc, crd_nce, pkt, rkd_angle, rkd_distance, similarity_preserving
from kdlab.losses.relation import contrast_scores
from kdlab.models.outputs import ModelOutputs
from kdlab.terms.base import Batch, DistillationTerm, PairSpec


def embedding_dims(pair: PairSpec, method: str) -> tuple[int, int]:
    """Widths of both pooled embeddings, or a ConfigError naming the model that cannot tell."""
    for role, name, dim in (
        ("student", pair.student_name, pair.student_embedding_dim),
        ("teacher", pair.teacher_name, pair.teacher_embedding_dim),
    ):
        if dim is None:
            raise ConfigError(
                f"{method} needs the pooled embedding, but {role} model {name} exposes none (no timm classifier / "
                "forward_head); use a logit method (kd=response) or a timm model"
            )
    return pair.student_embedding_dim, pair.teacher_embedding_dim


class RKD(DistillationTerm):
    """Relational KD (Park et al. 2019, arXiv:1904.05068) on the pooled penultimate embeddings.

    Returns ``rkd_distance`` and ``rkd_angle``; the paper's weights (25, 50) live in the ``kd`` config.
    """

    loss_names = ("rkd_distance", "rkd_angle")

    def __init__(self, pair: PairSpec) -> None:
        super().__init__()
        embedding_dims(pair, "RKD")  # both models must expose the embedding; fail before training
        self.needs_embedding = True

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        return {
            "rkd_distance": rkd_distance(student.embedding, teacher.embedding),
            "rkd_angle": rkd_angle(student.embedding, teacher.embedding),
        }


class SimilarityPreserving(DistillationTerm):
    """SP (Tung & Mori 2019, arXiv:1907.09682): ``loss_sp = Σ_stages ‖G̃_t − G̃_s‖_F² / B²``, last stage by default."""

    loss_names = ("sp",)

    def __init__(self, pair: PairSpec, stages: Sequence[int] = (-1,)) -> None:
        super().__init__()
        self.student_stages, self.teacher_stages = pair.resolve(stages)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        pairs = zip(self.student_stages, self.teacher_stages, strict=True)
        return {"sp": sum(similarity_preserving(student.features[s], teacher.features[t]) for s, t in pairs)}


class PKT(DistillationTerm):
    """PKT (Passalis & Tefas 2018, arXiv:1803.10837): KL between cosine-kernel conditional probabilities."""

    loss_names = ("pkt",)

    def __init__(self, pair: PairSpec) -> None:
        super().__init__()
        embedding_dims(pair, "PKT")  # both models must expose the embedding; fail before training
        self.needs_embedding = True

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        return {"pkt": pkt(student.embedding, teacher.embedding)}


class CorrelationCongruence(DistillationTerm):
    """CC (Peng et al. 2019, arXiv:1904.01802), RepDistiller's variant: ``loss_cc = cc(W_s e_s, W_t e_t)``.

    Both linear embeddings (to ``feat_dim``) are trainable, the teacher's included, as in RepDistiller.
    """

    loss_names = ("cc",)

    def __init__(self, pair: PairSpec, feat_dim: int = 128) -> None:
        super().__init__()
        self.needs_embedding = True
        student_dim, teacher_dim = embedding_dims(pair, "CC")
        self.embed_s = nn.Linear(student_dim, feat_dim)
        self.embed_t = nn.Linear(teacher_dim, feat_dim)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        return {"cc": cc(self.embed_s(student.embedding), self.embed_t(teacher.embedding))}


class CRD(DistillationTerm):
    """CRD (Tian et al. 2020, arXiv:1910.10699): ``loss_crd = nce(s → M_t) + nce(t → M_s)``, RepDistiller's form.

    ``s, t`` are the pooled embeddings through trainable linear heads to ``feat_dim`` and L2-normalised. ``M_s, M_t``
    are N×feat_dim memory banks (buffers, N = training-set size); each training step scores the batch against its own
    row (``batch["index"]``) and ``nce_k`` negatives, then sets ``M[i] ← normalize(m·M[i] + (1−m)·v_i)``. The
    normaliser Z = mean score × N is estimated on the first training batch and then frozen. Deviation: negatives are
    drawn uniformly from all rows except the positive (RepDistiller draws them from other classes); ``nce_k`` is
    clamped to N − 1 when the data set is smaller. Outside training mode the banks and Z are left unchanged.
    """

    loss_names = ("crd",)

    def __init__(
        self, pair: PairSpec, feat_dim: int = 128, nce_k: int = 16384, nce_t: float = 0.07, nce_m: float = 0.5
    ) -> None:
        super().__init__()
        self.needs_embedding = True
        student_dim, teacher_dim = embedding_dims(pair, "CRD")
        self.num_data = int(pair.num_train_samples)
        if self.num_data < 2:
            raise ConfigError(f"CRD needs a training set of at least 2 samples, got {self.num_data}")
        if not (nce_t > 0 and 0 <= nce_m < 1 and nce_k >= 1):
            raise ConfigError(f"CRD needs nce_k ≥ 1, nce_t > 0 and 0 ≤ nce_m < 1, got {nce_k}, {nce_t}, {nce_m}")
        if nce_k > self.num_data - 1:
            warnings.warn(
                f"CRD nce_k={nce_k} exceeds the {self.num_data - 1} other training samples; using nce_k="
                f"{self.num_data - 1}",
                stacklevel=2,
            )
            nce_k = self.num_data - 1
        self.nce_k, self.nce_t, self.nce_m = int(nce_k), float(nce_t), float(nce_m)
        self.embed_s = nn.Linear(student_dim, feat_dim)
        self.embed_t = nn.Linear(teacher_dim, feat_dim)
        bound = 1.0 / math.sqrt(feat_dim / 3)  # RepDistiller's uniform init of the banks
        self.register_buffer("memory_s", torch.rand(self.num_data, feat_dim) * 2 * bound - bound)
        self.register_buffer("memory_t", torch.rand(self.num_data, feat_dim) * 2 * bound - bound)
        self.register_buffer("normalisers", torch.full((2,), -1.0))  # Z for the student and the teacher anchor

    def contrast_indices(self, index: Tensor) -> Tensor:
        """``(B, K+1)`` bank rows: each sample's own index, then K drawn uniformly from the other N − 1 rows."""
        draws = torch.randint(0, self.num_data - 1, (len(index), self.nce_k), device=index.device)
        negatives = draws + (draws >= index.unsqueeze(1)).long()
        return torch.cat([index.unsqueeze(1), negatives], dim=1)

    @torch.no_grad()
    def _update(self, memory: Tensor, index: Tensor, embedding: Tensor) -> None:
        rows = memory[index] * self.nce_m + embedding.detach() * (1 - self.nce_m)
        memory[index] = F.normalize(rows, dim=1)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        index = batch["index"]
        if bool(((index < 0) | (index >= self.num_data)).any()):
            raise ValueError(f"CRD batch['index'] must lie in [0, {self.num_data}), got {index.tolist()}")
        s = F.normalize(self.embed_s(student.embedding), dim=1)
        t = F.normalize(self.embed_t(teacher.embedding), dim=1)
        rows = self.contrast_indices(index)
        contrast_t, contrast_s = self.memory_t[rows], self.memory_s[rows]
        z = self.normalisers
        if bool((z < 0).any()):
            with torch.no_grad():
                scores = [contrast_scores(s, contrast_t, self.nce_t), contrast_scores(t, contrast_s, self.nce_t)]
                z = torch.stack([x.mean() for x in scores]) * self.num_data
            if self.training:
                self.normalisers.copy_(z)
        loss = crd_nce(s, contrast_t, self.nce_t, z[0], self.num_data) + crd_nce(
            t, contrast_s, self.nce_t, z[1], self.num_data
        )
        if self.training:
            self._update(self.memory_s, index, s)
            self._update(self.memory_t, index, t)
        return {"crd": loss}
