"""One teacher model's weights: from a checkpoint, from the cache, or by training it (then caching it)."""

from __future__ import annotations

import logging
from pathlib import Path

from filelock import FileLock
from omegaconf import DictConfig
from torch import nn

from kdlab.data.bias import biased_split, check_bias
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.instantiate import build_optim
from kdlab.models.files import load_into, save_model
from kdlab.teacher.cache import cache_root, teacher_cache_key, teacher_phase
from kdlab.teacher.source import TeacherSource
from kdlab.training.module import DistillationModule
from kdlab.training.trainer import make_trainer

log = logging.getLogger(__name__)


def _freeze_all_but_head(model: nn.Module) -> None:
    model.requires_grad_(False)
    model.get_classifier().requires_grad_(True)


def _train(model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, root: Path) -> None:
    """Supervised training of the teacher with the run's optimiser (``teacher.optim`` overrides it), for
    ``teacher.max_epochs`` epochs.

    Optional, for a teacher with its own recipe: ``teacher.optim`` replaces ``optim``, and ``teacher.augment``
    replaces ``data.augment`` while the teacher trains (Hinton et al. 2015, §3: a jittered teacher, a plain student).
    """
    phase = teacher_phase(cfg)
    module = DistillationModule(
        model,
        num_classes=datamodule.num_classes,
        **build_optim(phase.optim),
    )
    trainer = make_trainer(phase.trainer, root, quiet=True)
    data_augment, data_train = datamodule.augment, datamodule.train
    datamodule.augment = cfg.teacher.get("augment") or data_augment  # e.g. Hinton et al.'s jitter, teacher only
    if cfg.teacher.get("bias"):  # a deliberately skewed teacher (kdlab.data.bias); the student's data stays as is
        datamodule.train = biased_split(data_train, check_bias(cfg.teacher.bias, datamodule.num_classes))
    try:
        trainer.fit(module, datamodule=datamodule)
    finally:
        datamodule.augment, datamodule.train = data_augment, data_train


def prepare_single(model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule) -> TeacherSource:
    """Fill ``model`` with trained weights; train and cache them when no checkpoint or cache entry exists."""
    shape = {"name": cfg.teacher.name, "num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    if cfg.teacher.get("bias"):
        check_bias(cfg.teacher.bias, datamodule.num_classes)  # before a cache lookup or any training
    if cfg.teacher.checkpoint:
        load_into(model, cfg.teacher.checkpoint, **shape)
        return TeacherSource("checkpoint", Path(cfg.teacher.checkpoint))
    path = cache_root(cfg.get("cache_dir")) / "teachers" / f"{cfg.teacher.name}-{teacher_cache_key(cfg)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # parallel sweep jobs train the teacher once
        if path.exists():
            load_into(model, path, **shape)
            return TeacherSource("cache", path)
        kind = "trained"
        if cfg.teacher.pretrained:
            _freeze_all_but_head(model)
            kind = "pretrained+finetuned"
        log.info("training teacher %s for %d epochs (cached at %s)", cfg.teacher.name, cfg.teacher.max_epochs, path)
        _train(model, cfg, datamodule, path.parent)
        model.requires_grad_(True)
        save_model(path, model, **shape, data=datamodule.name)
        return TeacherSource(kind, path)
