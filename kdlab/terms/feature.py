"""Feature terms: distil from the teacher's intermediate feature maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.losses import attention_transfer, hint_mse, nst, patient_loss, review_hcl
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


class AttentionBasedFusion(nn.Module):
    """ReviewKD's ABF block (the authors' ``ABF``): project the student map to ``mid`` channels, fuse it with the
    deeper level's residual through two sigmoid attention maps, then a 3×3 conv + BN to the teacher's channels.

    Returns ``(output for the loss, residual for the next-shallower level)``; no ReLU anywhere, as in the code.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, fuse: bool) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels))
        self.expand = nn.Sequential(
            nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.attention = nn.Sequential(nn.Conv2d(2 * mid_channels, 2, 1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(self.reduce[0].weight, a=1)
        nn.init.kaiming_uniform_(self.expand[0].weight, a=1)

    def forward(self, x: Tensor, deeper: Tensor | None, teacher_size: Sequence[int]) -> tuple[Tensor, Tensor]:
        x = self.reduce(x)
        if self.attention is not None and deeper is not None:
            deeper = F.interpolate(deeper, size=tuple(x.shape[-2:]), mode="nearest")
            a = self.attention(torch.cat([x, deeper], dim=1))
            x = x * a[:, :1] + deeper * a[:, 1:]
        if tuple(x.shape[-2:]) != tuple(teacher_size):
            x = F.interpolate(x, size=tuple(teacher_size), mode="nearest")
        return self.expand(x), x


class ReviewKD(DistillationTerm):
    """ReviewKD, Chen et al., "Distilling Knowledge via Knowledge Review" (CVPR 2021, arXiv:2104.09044).

    The student's levels (``stages`` shallow→deep, plus the pooled embedding as a 1×1 map when ``pooled``) are fused
    deep→shallow by :class:`AttentionBasedFusion`, each level seeing the residual of all deeper ones, and compared
    with the teacher's same levels by the hierarchical context loss: ``loss_review = min(epoch/W, 1)·Σ HCL``
    (epochs from 0, so the first epoch adds nothing, as in the CIFAR code; W = ``warmup_epochs``, 0 = none).
    """

    loss_names = ("review",)

    def __init__(
        self,
        pair: PairSpec,
        stages: Sequence[int] = (-4, -3, -2, -1),
        pooled: bool = True,
        max_mid_channels: int = 512,
        warmup_epochs: int = 20,
    ) -> None:
        super().__init__()
        if warmup_epochs < 0 or max_mid_channels < 1:
            raise ConfigError(
                f"ReviewKD needs warmup_epochs ≥ 0 and max_mid_channels ≥ 1, got {warmup_epochs}, {max_mid_channels}"
            )
        self.student_stages, self.teacher_stages = pair.resolve(stages)
        self.needs_embedding, self.warmup_epochs = bool(pooled), int(warmup_epochs)
        student_ch = [pair.student_stages[s].channels for s in self.student_stages]
        teacher_ch = [pair.teacher_stages[t].channels for t in self.teacher_stages]
        if pooled:
            student_ch.append(embedding_width(pair.student_embedding_dim, "student", pair.student_name))
            teacher_ch.append(embedding_width(pair.teacher_embedding_dim, "teacher", pair.teacher_name))
        mid = min(max_mid_channels, student_ch[-1])  # the authors' min(512, C_last)
        deepest = len(student_ch) - 1
        self.fusions = nn.ModuleList(  # shallow→deep, like the levels; the deepest level has nothing to fuse
            AttentionBasedFusion(c_s, mid, c_t, fuse=i < deepest)
            for i, (c_s, c_t) in enumerate(zip(student_ch, teacher_ch, strict=True))
        )

    def levels(self, outputs: ModelOutputs, stages: Sequence[int]) -> list[Tensor]:
        maps = [outputs.features[s] for s in stages]
        if self.needs_embedding:
            maps.append(outputs.embedding[:, :, None, None])
        return maps

    def warmup_factor(self) -> float:
        return 1.0 if self.warmup_epochs == 0 else min(self.current_epoch / self.warmup_epochs, 1.0)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        student_maps, teacher_maps = (
            self.levels(student, self.student_stages),
            self.levels(teacher, self.teacher_stages),
        )
        fused: list[Tensor] = []
        residual = None
        for fusion, x, target in reversed(list(zip(self.fusions, student_maps, teacher_maps, strict=True))):
            out, residual = fusion(x, residual, target.shape[-2:])
            fused.insert(0, out)
        return {"review": self.warmup_factor() * review_hcl(fused, teacher_maps)}


def embedding_width(width: int | None, role: str, name: str) -> int:
    if width is None:
        raise ConfigError(f"ReviewKD with pooled=true needs the {role}'s pooled embedding width; {name} does not say")
    return width
