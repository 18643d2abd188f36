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
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from torch import nn

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.errors import ConfigError
from kdlab.instantiate import Node, build_optim
from kdlab.post.prune import apply_pruning, make_pruning_permanent
from kdlab.post.quantize import convert_qat, fake_quantizers, prepare_qat
from kdlab.post.settings import FinetuneSettings
from kdlab.training.module import DistillationModule
from kdlab.training.trainer import make_trainer


def prune_and_distil(
    module: DistillationModule, settings: FinetuneSettings, datamodule: InMemoryDataModule, root: Path
) -> nn.Module:
    """A pruned copy of ``module.student``: ``post.prune`` of its conv/linear weights zeroed by global magnitude, then
    ``post.prune_finetune_epochs`` epochs of the run's distillation (same teacher, terms, weights and alpha).

    The masks stay attached during the fine-tune, so pruned weights cannot grow back; they are baked in at the end.
    The learning rate is ``optim.optimizer.lr × post.prune_finetune_lr_factor``, constant (no scheduler).
    """
    if settings.prune is None:
        raise ValueError("prune_and_distil needs post.prune")
    pruned = apply_pruning(copy.deepcopy(module.student).cpu(), settings.prune)
    epochs, lr_factor = settings.prune_finetune_epochs, settings.prune_finetune_lr_factor
    if epochs > 0:
        _fine_tune(pruned, module, settings, datamodule, root, epochs, lr_factor, with_teacher=True)
    return make_pruning_permanent(pruned.cpu())


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
    if with_teacher and (module.student_stages or module.needs_embedding):
        raise ConfigError(
            f"post.quantize=qat distils through the logits only; the kd terms {sorted(module.terms)} include feature "
            "or embedding terms: use a logit-based kd (response, dkd, …) or post.qat_teacher=false"
        )
    example = next(iter(datamodule.model_batches("train")))["image"].cpu()
    prepared = prepare_qat(module.student, example)
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
