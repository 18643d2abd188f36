"""Feature terms: distil from the teacher's intermediate feature maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.losses import hint_mse
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
    """FitNet hints (Romero et al. 2015, arXiv:1412.6550) on one or several stages, as in Patient KD.

    ``loss_hint = Σ_stages mean((r(f_s) − f_t)²)``; one connector per stage, sized from ``feature_info``.
    """

    loss_names = ("hint",)

    def __init__(self, pair: PairSpec, stages: Sequence[int] = (-2,)) -> None:
        super().__init__()
        if not stages:
            raise ConfigError("kd.stages must name at least one stage for feature distillation, got []")
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
