"""Compress the distilled student, then let it recover by distilling a little longer from the same frozen teacher.

Pruning and KD combine naturally: the fine-tune that repairs a pruned network can keep the teacher's soft targets and
hints instead of falling back to labels alone (Han et al., "Learning both Weights and Connections for Efficient
Neural Networks", arXiv:1506.02626, for prune-then-retrain; the KD objective is the run's own ``kd`` config).
Quantization-aware distillation does the same with fake-quantized weights and activations in the forward pass
(Mishra & Marr, "Apprentice: Using Knowledge Distillation Techniques To Improve Low-Precision Network Accuracy",
arXiv:1711.05852: ``L = (1 − α)·CE(q(student)) + α·KD(q(student), teacher)``), then converts to a real int8 model.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.errors import ConfigError
from kdlab.instantiate import Node, build_optim
from kdlab.post.channels import ChannelPruner
from kdlab.post.prune import apply_pruning, make_pruning_permanent
from kdlab.post.quantize import convert_qat, fake_quantizers, prepare_qat
from kdlab.post.settings import FinetuneSettings
from kdlab.training.module import DistillationModule
from kdlab.training.trainer import make_trainer


def prune_and_distil(
    module: DistillationModule, settings: FinetuneSettings, datamodule: InMemoryDataModule, root: Path
) -> nn.Module:
    """A pruned copy of ``module.student``, healed by ``post.prune_finetune_epochs`` epochs of the run's distillation
    (same teacher, terms, weights and alpha; cross-entropy alone with ``post.prune_teacher=false``).

    ``post.prune_kind=unstructured`` zeroes ``post.prune`` of the conv/linear weights by global magnitude; the masks
    stay attached during the fine-tune, so pruned weights cannot grow back, and are baked in at the end.
    ``channel`` removes that fraction of each layer group's channels (:mod:`kdlab.post.channels`), so the network
    itself shrinks. With ``post.prune_steps=N`` it prunes in N steps with the fine-tune's epochs spread between them
    (iterative pruning, Han et al.). The learning rate is ``optim.optimizer.lr × post.prune_finetune_lr_factor``,
    constant (no scheduler).
    """
    if settings.prune is None:
        raise ValueError("prune_and_distil needs post.prune")
    with_teacher = settings.prune_teacher and module.teacher is not None
    student = copy.deepcopy(module.student).cpu().to(memory_format=torch.contiguous_format)  # pruning reshapes views
    if settings.prune_kind == "channel":
        _check_logits_only(module.terms, with_teacher, "post.prune_kind=channel", "post.prune_teacher=false")
        example = next(iter(datamodule.model_batches("train")))["image"][:1].cpu()
        prune_step = ChannelPruner(student, example, settings.prune, settings.prune_steps).step
    else:
        share = 1.0 - (1.0 - settings.prune) ** (1.0 / settings.prune_steps)  # of what is left, each step

        def prune_step() -> None:
            apply_pruning(student, share)

    lr_factor = settings.prune_finetune_lr_factor
    for epochs in spread(settings.prune_finetune_epochs, settings.prune_steps):
        prune_step()
        if epochs > 0:
            student.train()  # it was last tested, or traced by the pruner (eval mode); Lightning keeps modes in fit
            _fine_tune(student, module, settings, datamodule, root, epochs, lr_factor, with_teacher=with_teacher)
    return make_pruning_permanent(student.cpu())


def spread(epochs: int, steps: int) -> list[int]:
    """``epochs`` split over ``steps`` as evenly as whole epochs allow, the later steps taking the remainder."""
    base, extra = divmod(epochs, steps)
    return [base + (1 if i >= steps - extra else 0) for i in range(steps)]


def check_fine_tunes_fit_terms(settings: FinetuneSettings, qat: bool, terms: Mapping[str, Any], teacher: bool) -> None:
    """Before training: a QAT or channel-pruning fine-tune that keeps the teacher needs logit-only terms."""
    if qat:
        _check_logits_only(terms, teacher and settings.qat_teacher, "post.quantize=qat", "post.qat_teacher=false")
    if settings.prune is not None and settings.prune_kind == "channel":
        with_teacher = teacher and settings.prune_teacher
        _check_logits_only(terms, with_teacher, "post.prune_kind=channel", "post.prune_teacher=false")


def _check_logits_only(terms: Mapping[str, Any], with_teacher: bool, what: str, instead: str) -> None:
    """A fine-tune that changes the student's shape or arithmetic distils through its logits only: feature and
    embedding terms carry connectors sized for the student as it was."""
    if with_teacher and any(t.student_stages or t.needs_embedding for t in terms.values()):
        raise ConfigError(
            f"{what} distils through the logits only; the kd terms {sorted(terms)} include feature "
            f"or embedding terms: use a logit-based kd (response, dkd, …) or {instead}"
        )


@dataclass(frozen=True)
class QatResult:
    """The int8 model and the evidence that it was trained with quantization in the loop."""

    model: nn.Module
    fake_quantizers: int  # fake-quant modules in the fine-tuned graph
    weight_change: float  # largest relative L2 change of a weight tensor during the fine-tune
    with_teacher: bool


def qat_and_distil(
    module: DistillationModule, settings: FinetuneSettings, datamodule: InMemoryDataModule, root: Path
) -> QatResult:
    """Quantization-aware fine-tune of ``module.student`` for ``post.qat_epochs``, then conversion to int8.

    With ``post.qat_teacher`` the run's distillation continues (same teacher, terms, weights, alpha); without, it is
    cross-entropy only (the ablation). The lr is ``optim.optimizer.lr × post.qat_lr_factor``, constant.
    """
    with_teacher = settings.qat_teacher and module.teacher is not None
    _check_logits_only(module.terms, with_teacher, "post.quantize=qat", "post.qat_teacher=false")
    example = next(iter(datamodule.model_batches("train")))["image"].cpu()
    prepared = prepare_qat(module.student, example, weight_bits=settings.quant_weight_bits)
    before = [p.detach().clone() for p in prepared.parameters()]
    epochs, lr_factor = settings.qat_epochs, settings.qat_lr_factor
    _fine_tune(prepared, module, settings, datamodule, root, epochs, lr_factor, with_teacher=with_teacher)
    change = max(
        float((p.detach().cpu() - b).norm() / b.norm().clamp_min(1e-12))
        for p, b in zip(prepared.parameters(), before, strict=True)
    )
    return QatResult(convert_qat(prepared, example), len(fake_quantizers(prepared)), change, with_teacher)


def _fine_tune(
    student: nn.Module,
    module: DistillationModule,
    settings: FinetuneSettings,
    datamodule: InMemoryDataModule,
    root: Path,
    epochs: int,
    lr_factor: float,
    *,
    with_teacher: bool,
) -> None:
    """``epochs`` of the run's distillation (or cross-entropy alone) on ``student``, in place, no validation."""
    finetune = DistillationModule(
        student,
        datamodule.num_classes,
        optimizer=_finetune_optimizer(settings.optim, lr_factor),
        scheduler=None,
        teacher=module.teacher if with_teacher else None,
        terms=copy.deepcopy(dict(module.terms)) if with_teacher else None,
        weights=settings.kd_weights if with_teacher else None,
        alpha=settings.kd_alpha if with_teacher else 0.0,
    )
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    trainer = make_trainer(
        settings.trainer,
        root,
        quiet=True,
        max_epochs=epochs,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(finetune, datamodule=datamodule)


def _finetune_optimizer(optim: Node, lr_factor: float) -> functools.partial:
    factory = build_optim(optim)["optimizer"]
    lr = optim.optimizer.get("lr")
    if lr is None:
        return factory
    return functools.partial(factory, lr=float(lr) * lr_factor)
