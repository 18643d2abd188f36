"""Deep mutual learning (Zhang et al., "Deep Mutual Learning", CVPR 2018, arXiv:1706.00384) as one LightningModule.

A cohort of K networks, no teacher: member k minimises ``CE(y, p_k) + w · (1/(K−1)) Σ_{l≠k} KL(p_l ‖ p_k)``
(:func:`kdlab.losses.dml_kl`, peers detached). All members are updated in the same step from one forward pass, by
one optimiser over their union: each member's loss reaches only its own weights, so this equals K optimisers stepped
together; the paper's Algorithm 1 instead re-runs the forward pass after each member's update (a variant, not done).
Member 0 is the run's student; its metrics keep the usual names (``val/acc``), member k's are ``val/member<k>/acc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.losses import dml_kl
from kdlab.terms.base import Batch
from kdlab.training.module import OptimizerFactory, SchedulerFactory, metric_collection


def member_prefix(stage: str, member: int) -> str:
    """``val/`` for member 0 (the student: checkpointing and sweeps read ``val/acc``), ``val/member<k>/`` else."""
    return f"{stage}/" if member == 0 else f"{stage}/member{member}/"


class MutualLearningModule(pl.LightningModule):
    """A cohort trained together; ``mimicry_weight`` is ``w`` above (the paper: 1)."""

    def __init__(
        self,
        members: Sequence[nn.Module],
        num_classes: int,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        mimicry_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"deep mutual learning needs a cohort of at least 2 networks, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.mimicry_weight = float(mimicry_weight)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        for stage in ("train", "val", "test"):  # validate_args=False in training: its checks sync with the GPU
            per_member = [
                metric_collection(num_classes, member_prefix(stage, k), stage != "train") for k in range(len(members))
            ]
            setattr(self, f"{stage}_metrics", nn.ModuleList(per_member))

    def forward(self, x: Tensor) -> Tensor:
        return self.members[0](x)

    def cohort_losses(self, logits: list[Tensor], target: Tensor) -> dict[str, Tensor]:
        """Each member's cross-entropy and mimicry loss, by log name: ``train/loss_ce``, ``train/member1/loss_dml`` …"""
        losses = {}
        for k, own in enumerate(logits):
            prefix = member_prefix("train", k)
            losses[f"{prefix}loss_ce"] = F.cross_entropy(own, target)
            losses[f"{prefix}loss_dml"] = dml_kl(own, [peer for j, peer in enumerate(logits) if j != k])
        return losses

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        x, y = batch["image"], batch["target"]
        logits = [member(x) for member in self.members]
        losses = self.cohort_losses(logits, batch.get("soft_target", y))
        total = sum(value * (self.mimicry_weight if name.endswith("_dml") else 1.0) for name, value in losses.items())
        self.log_dict({**losses, "train/loss": total}, on_step=False, on_epoch=True, batch_size=len(y))
        for metrics, own in zip(self.train_metrics, logits, strict=True):
            metrics.update(own.detach(), y)
        return total

    def on_train_epoch_end(self) -> None:
        for metrics in self.train_metrics:
            self.log_dict(metrics, on_step=False, on_epoch=True)

    def _eval_step(self, batch: Batch, stage: str) -> None:
        x, y = batch["image"], batch["target"]
        for k, (member, metrics) in enumerate(zip(self.members, getattr(self, f"{stage}_metrics"), strict=True)):
            logits = member(x)
            metrics.update(logits, y)
            loss = F.cross_entropy(logits, y)
            self.log(f"{member_prefix(stage, k)}loss_ce", loss, on_epoch=True, batch_size=len(y), sync_dist=True)
            self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val" and k == 0)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory([p for p in self.members.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "epoch"},
        }
