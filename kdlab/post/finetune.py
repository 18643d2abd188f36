"""Prune the distilled student, then let it recover by distilling a little longer from the same frozen teacher.

Pruning and KD combine naturally: the fine-tune that repairs a pruned network can keep the teacher's soft targets and
hints instead of falling back to labels alone (Han et al., "Learning both Weights and Connections for Efficient
Neural Networks", arXiv:1506.02626, for prune-then-retrain; the KD objective is the run's own ``kd`` config).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig
from torch import nn

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.instantiate import build_optim
from kdlab.post.prune import apply_pruning, make_pruning_permanent
from kdlab.training.module import DistillationModule
from kdlab.training.trainer import make_trainer


def prune_and_distil(
    module: DistillationModule, cfg: DictConfig, datamodule: InMemoryDataModule, root: Path
) -> nn.Module:
    """A pruned copy of ``module.student``: ``post.prune`` of its conv/linear weights zeroed by global magnitude, then
    ``post.prune_finetune_epochs`` epochs of the run's distillation (same teacher, terms, weights and alpha).

    The masks stay attached during the fine-tune, so pruned weights cannot grow back; they are baked in at the end.
    The learning rate is ``optim.optimizer.lr × post.prune_finetune_lr_factor``, constant (no scheduler).
    """
    pruned = apply_pruning(copy.deepcopy(module.student).cpu(), float(cfg.post.prune))
    epochs = int(cfg.post.get("prune_finetune_epochs", 0))
    if epochs > 0:
        finetune = DistillationModule(
            pruned,
            datamodule.num_classes,
            optimizer=_finetune_optimizer(cfg),
            scheduler=None,
            teacher=module.teacher,
            terms=copy.deepcopy(dict(module.terms)),
            weights=cfg.kd.weights,
            alpha=cfg.kd.alpha,
        )
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        trainer = make_trainer(
            cfg.trainer,
            root,
            quiet=True,
            max_epochs=epochs,
            limit_val_batches=0,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(finetune, datamodule=datamodule)
    return make_pruning_permanent(pruned.cpu())


def _finetune_optimizer(cfg: DictConfig) -> functools.partial:
    factory = build_optim(cfg.optim)["optimizer"]
    lr = cfg.optim.optimizer.get("lr")
    if lr is None:
        return factory
    return functools.partial(factory, lr=float(lr) * float(cfg.post.get("prune_finetune_lr_factor", 1.0)))
