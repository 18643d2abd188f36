"""Feature terms: distil from the teacher's intermediate feature maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.losses import attention_transfer, hint_mse, nst, patient_loss
from kdlab.models.outputs import ModelOutputs
from kdlab.terms.base import Batch, DistillationTerm, PairSpec


def match_spatial(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bring a feature map to ``size``: average-pool when larger, bilinear upsampling when smaller."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class Connector(nn.Module):
    """FitNet regressor: 1×1 conv + BN from student to teacher channels, then spatial match to the teacher map."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, student_map: Tensor, teacher_size: Sequence[int]) -> Tensor:
        return match_spatial(self.proj(student_map), teacher_size)


class FitNetHints(DistillationTerm):
    """FitNet hints (Romero et al. 2015, arXiv:1412.6550) on one or several stages.

    ``loss_hint = Σ_stages mean((r(f_s) − f_t)²)``; one connector per stage, sized from ``feature_info``.
    """

    loss_names = ("hint",)

    def __init__(self, pair: PairSpec, stages: Sequence[int] = (-2,)) -> None:
        super().__init__()
        self.student_stages, self.teacher_stages = pair.resolve(stages)
        self.connectors = nn.ModuleList(
            Connector(pair.student_stages[s].channels, pair.teacher_stages[t].channels)
            for s, t in zip(self.student_stages, self.teacher_stages, strict=True)
        )

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        total = 0.0
        for connector, s, t in zip(self.connectors, self.student_stages, self.teacher_stages, strict=True):
            target = teacher.features[t]
            total = total + hint_mse(connector(student.features[s], target.shape[-2:]), target)
        return {"hint": total}


class AttentionTransfer(DistillationTerm):
    """AT (Zagoruyko & Komodakis 2017, arXiv:1612.03928): ``loss_at = Σ_stages at(f_s, f_t)``, no trainable parts."""

    loss_names = ("at",)

    def __init__(self, pair: PairSpec, stages: Sequence[int] = (-3, -2, -1), p: float = 2.0) -> None:
        super().__init__()
        self.student_stages, self.teacher_stages = pair.resolve(stages)
        self.p = float(p)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        pairs = zip(self.student_stages, self.teacher_stages, strict=True)
        return {"at": sum(attention_transfer(student.features[s], teacher.features[t], self.p) for s, t in pairs)}


class NST(DistillationTerm):
    """Neuron selectivity transfer (Huang & Wang 2017, arXiv:1707.01219): ``loss_nst = Σ_stages MMD²_poly``."""

    loss_names = ("nst",)

    def __init__(self, pair: PairSpec, stages: Sequence[int] = (-3, -2, -1)) -> None:
        super().__init__()
        self.student_stages, self.teacher_stages = pair.resolve(stages)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        pairs = zip(self.student_stages, self.teacher_stages, strict=True)
        return {"nst": sum(nst(student.features[s], teacher.features[t]) for s, t in pairs)}


class PatientKD(DistillationTerm):
    """Patient-KD-style patience term (Sun et al. 2019, arXiv:1908.09355) on globally pooled stage outputs.

    ``loss_patient = mean_stages mean((ŝ − t̂)²)`` with ``ŝ = normalize(W·pool(f_s))``, ``t̂ = normalize(pool(f_t))``;
    one trainable linear connector per stage from the student's to the teacher's channels (BERT needs none).
    """

    loss_names = ("patient",)

    def __init__(self, pair: PairSpec, stages: Sequence[int] = (-4, -3, -2)) -> None:
        super().__init__()
        self.student_stages, self.teacher_stages = pair.resolve(stages)
        self.connectors = nn.ModuleList(
            nn.Linear(pair.student_stages[s].channels, pair.teacher_stages[t].channels)
            for s, t in zip(self.student_stages, self.teacher_stages, strict=True)
        )

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        pairs = zip(self.connectors, self.student_stages, self.teacher_stages, strict=True)
        student_vecs, teacher_vecs = [], []
        for connector, s, t in pairs:
            student_vecs.append(connector(student.features[s].mean(dim=(2, 3))))
            teacher_vecs.append(teacher.features[t].mean(dim=(2, 3)))
        return {"patient": patient_loss(student_vecs, teacher_vecs)}
