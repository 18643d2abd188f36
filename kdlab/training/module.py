"""The LightningModule: runs student and frozen teacher, asks each term for its losses, weights them in one place."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from kdlab.data.pairs import PARTNER_KEY
from kdlab.errors import ConfigError
from kdlab.losses import kd_kl
from kdlab.models.frozen import FrozenTeacher
from kdlab.models.outputs import ModelOutputs
from kdlab.models.taps import forward_with_taps
from kdlab.terms.base import Batch, DistillationTerm
from kdlab.training.faults import check_finite_loss
from kdlab.training.replay_table import ReplayTable
from kdlab.training.step_log import RunningLosses
from kdlab.training.teacher_outputs import TeacherOutputTable, run_teacher

# The frozen teacher is in eval mode on purpose; Lightning warns about any eval-mode module at fit start.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode", category=UserWarning)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


def check_weights(
    terms: Mapping[str, DistillationTerm], weights: Mapping[str, float], alpha: float
) -> dict[str, float]:
    """Every loss a term returns needs a weight and every weight a loss; alpha must lie in [0, 1]."""
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"kd.alpha must be in [0, 1], got {alpha}")
    produced = {name for term in terms.values() for name in term.loss_names}
    missing, unused = produced - set(weights), set(weights) - produced
    if missing:
        raise ConfigError(f"kd.weights has no weight for loss(es) {sorted(missing)}; add kd.weights.<name>=<float>")
    if unused:
        raise ConfigError(f"kd.weights names {sorted(unused)}, which no term returns (terms return {sorted(produced)})")
    return {"ce": 1.0 - float(alpha), **{k: float(v) for k, v in weights.items()}}


def metric_collection(num_classes: int, prefix: str, validate_args: bool = True) -> MetricCollection:
    acc = {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=validate_args)}
    if num_classes > 5:
        acc["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro", validate_args=validate_args)
    return MetricCollection(acc, prefix=prefix)


def supervised_rows(batch: Batch) -> Tensor | slice:
    """The rows that get cross-entropy and count for training accuracy: all of them, or only the anchors of a
    class-paired batch (CS-KD, :mod:`kdlab.data.pairs`), whose partner half only the term reads, as in the paper."""
    partner = batch.get(PARTNER_KEY)
    return slice(None) if partner is None else ~partner


TRAIN_LOSSES_KEY = "kdlab_train_losses"  # the epoch's running loss sums, in Lightning checkpoints


class DistillationModule(pl.LightningModule):
    """Student (+ optional frozen teacher and distillation terms); with no teacher it is plain supervised training.

    ``teacher_outputs``, a table of the teacher's outputs per sample (see :mod:`kdlab.teacher.output_cache`), or per
    sample and augmented view (:mod:`kdlab.teacher.replay`), replaces the teacher's forward pass wherever it covers
    the split and taps; elsewhere the teacher runs online.
    ``total = (1 − alpha)·CE + Σ_name weights[name]·loss[name]``; every raw term is logged as ``train/loss_<name>``.
    """

    def __init__(
        self,
        student: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        teacher: nn.Module | None = None,
        terms: Mapping[str, DistillationTerm] | None = None,
        weights: Mapping[str, float] | None = None,
        alpha: float = 0.0,
        teacher_outputs: TeacherOutputTable | ReplayTable | None = None,
    ) -> None:
        super().__init__()
        self.student = student
        self.teacher = (
            FrozenTeacher(teacher) if teacher is not None and not isinstance(teacher, FrozenTeacher) else teacher
        )
        self.terms = nn.ModuleDict(dict(terms or {}))
        self.terms_need_teacher = any(term.needs_teacher for term in self.terms.values())
        if self.terms_need_teacher and self.teacher is None:
            raise ConfigError("distillation terms need a teacher")
        self.weights = check_weights(self.terms, weights or {}, alpha)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.student_stages = sorted({s for t in self.terms.values() for s in t.student_stages})
        self.teacher_stages = sorted({s for t in self.terms.values() for s in t.teacher_stages})
        self.needs_embedding = any(t.needs_embedding for t in self.terms.values())
        self.needs_dist_token = any(t.needs_dist_token for t in self.terms.values())  # DeiT's second head
        # validate_args=False: its checks would sync with the GPU every step
        self.train_metrics = metric_collection(num_classes, "train/", validate_args=False)
        self.train_losses = (
            RunningLosses()
        )  # see kdlab.training.step_log: one self.log per step would cost a few per cent
        self.val_metrics = metric_collection(num_classes, "val/")
        self.test_metrics = metric_collection(num_classes, "test/")
        if self.teacher is not None:
            self.val_agreement = MulticlassAccuracy(num_classes, average="micro")
            self.test_agreement = MulticlassAccuracy(num_classes, average="micro")
            self.val_kl, self.test_kl = MeanMetric(), MeanMetric()
        self.teacher_outputs = teacher_outputs
        self.strict_loading = False  # the teacher is not stored in student checkpoints

    def forward(self, x: Tensor) -> Tensor:
        return self.student(x)

    def _teacher_outputs(self, batch: Batch, split: str, stages: list[int], embedding: bool) -> ModelOutputs:
        table = self.teacher_outputs
        if table is not None and table.covers(split, stages, embedding):
            return table.lookup(batch["index"], split, stages, embedding, epoch=self.current_epoch)
        return run_teacher(self.teacher.model, batch["image"], stages, embedding)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        x, rows = batch["image"], supervised_rows(batch)
        y = batch["target"][rows]
        student = forward_with_taps(self.student, x, self.student_stages, self.needs_embedding, self.needs_dist_token)
        # mixup/cutmix (kdlab.data.mixing): cross-entropy on the mixed soft labels; accuracy stays on the hard ones
        losses = {"ce": F.cross_entropy(student.logits[rows], batch.get("soft_target", batch["target"])[rows])}
        if self.terms:
            teacher = None
            if self.terms_need_teacher:
                teacher = self._teacher_outputs(batch, "train", self.teacher_stages, self.needs_embedding)
            for term in self.terms.values():
                term.current_epoch = self.current_epoch
                losses.update(term(student, teacher, batch))
        total = sum(self.weights[name] * value for name, value in losses.items())
        check_finite_loss(losses, total, self.global_step, self.terms)
        self.train_losses.add({**{f"train/loss_{k}": v for k, v in losses.items()}, "train/loss": total}, len(y))
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:  # the steps Lightning's logger writes
            self.log_dict(self.train_losses.step_values(), on_step=True, on_epoch=False, sync_dist=True)
        self.train_metrics.update(student.logits[rows].detach(), y)
        return total

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_losses.pop_epoch_means(), on_step=False, on_epoch=True, sync_dist=True)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)

    def _eval_step(self, batch: Batch, stage: str) -> None:
        x, y = batch["image"], batch["target"]
        logits = self.student(x)
        getattr(self, f"{stage}_metrics").update(logits, y)
        self.log(f"{stage}/loss_ce", F.cross_entropy(logits, y), on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log_dict(getattr(self, f"{stage}_metrics"), on_epoch=True, prog_bar=stage == "val")
        if self.teacher is not None:
            teacher_logits = self._teacher_outputs(batch, stage, [], False).logits
            agreement, kl = getattr(self, f"{stage}_agreement"), getattr(self, f"{stage}_kl")
            agreement.update(logits, teacher_logits.argmax(dim=1))
            kl.update(kd_kl(logits, teacher_logits, 1.0), weight=len(y))
            self.log(f"{stage}/agreement", agreement, on_epoch=True)
            self.log(f"{stage}/kl_to_teacher", kl, on_epoch=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Student and term parameters (connectors, embeddings); never the teacher's."""
        params = list(self.student.parameters()) + list(self.terms.parameters())
        return [p for p in params if p.requires_grad]

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.trainable_parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "epoch"},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if TRAIN_LOSSES_KEY in checkpoint:
            self.train_losses.load_state_dict(checkpoint[TRAIN_LOSSES_KEY])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[TRAIN_LOSSES_KEY] = self.train_losses.state_dict()
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith("teacher.")]:
            del state[key]
