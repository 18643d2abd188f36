"""One teacher model's weights: from a checkpoint, from the cache, or by training it (then caching it)."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only
from torch import nn

from kdlab.data.bias import biased_split, check_bias
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.instantiate import build, build_optim
from kdlab.models.files import load_into, save_model
from kdlab.teacher.cache import cache_root, teacher_cache_key, teacher_phase
from kdlab.teacher.source import TeacherSource
from kdlab.tracking import (
    define_summaries,
    finish_wandb,
    flat_config,
    is_wandb,
    log_config,
    log_output_model,
    outside_sweep,
    run_tags,
    teacher_artifact_name,
)
from kdlab.training.module import DistillationModule
from kdlab.training.seeding import teacher_seed
from kdlab.training.trainer import make_trainer

log = logging.getLogger(__name__)


def _freeze_all_but_head(model: nn.Module) -> None:
    model.requires_grad_(False)
    model.get_classifier().requires_grad_(True)


def _train(model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, root: Path, logger: Any = False) -> None:
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
    trainer = make_trainer(phase.trainer, root, quiet=True, logger=logger)
    data_augment, data_train = datamodule.augment, datamodule.train
    datamodule.augment = cfg.teacher.get("augment") or data_augment  # e.g. Hinton et al.'s jitter, teacher only
    if cfg.teacher.get("bias"):  # a deliberately skewed teacher (kdlab.data.bias); the student's data stays as is
        datamodule.train = biased_split(data_train, check_bias(cfg.teacher.bias, datamodule.num_classes))
    try:
        trainer.fit(module, datamodule=datamodule)
    finally:
        datamodule.augment, datamodule.train = data_augment, data_train


def prepare_single(
    model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, run_dir: Path | None = None
) -> TeacherSource:
    """Fill ``model`` with trained weights; train and cache them when no checkpoint or cache entry exists.

    With a W&B logger and a ``run_dir``, the training is a W&B run of its own (``job_type=teacher``, under
    ``<run_dir>/teacher``) with its curves, and logs the cached file as a ``model`` artifact: once, as the teacher
    is trained once."""
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
        logger = teacher_logger(cfg, run_dir, datamodule.name)
        with outside_sweep() if logger else nullcontext():
            _train_and_save(model, cfg, datamodule, path, logger, shape)
        return TeacherSource(kind, path)


def _train_and_save(
    model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, path: Path, logger: Any, shape: dict[str, Any]
) -> None:
    """Train, save to the cache and, with a W&B logger, log the file; the W&B run ends here, before the student's."""
    try:
        if logger:
            _start_teacher_run(logger, cfg)
        _train(model, cfg, datamodule, path.parent, logger)
        model.requires_grad_(True)
        save_model(path, model, **shape, data=datamodule.name)
        if logger:
            _log_teacher_file(logger, cfg, path, datamodule.name)
    except BaseException:
        if logger:
            finish_wandb(exit_code=1)
        raise
    if logger:
        finish_wandb()


def _log_teacher_file(logger: Any, cfg: DictConfig, path: Path, data_name: str) -> None:
    metadata = {"teacher": str(cfg.teacher.name), "data": data_name, "seed": teacher_seed(cfg)}
    log_output_model(logger.experiment, teacher_artifact_name(str(cfg.teacher.name), data_name), path, metadata)


def teacher_logger(cfg: DictConfig, run_dir: Path | None, data_name: str) -> Any:
    """A W&B logger for the teacher's own training run, when the run logs to W&B (rank 0 only), else False."""
    if run_dir is None or not is_wandb(cfg.get("logger")) or rank_zero_only.rank != 0:
        return False
    seed = teacher_seed(cfg)
    name = f"teacher-{cfg.teacher.name}-{data_name}-s{seed}"
    tags = run_tags(cfg.get("tags"), ["teacher"])
    save_dir = Path(run_dir) / "teacher"
    save_dir.mkdir(parents=True, exist_ok=True)
    return build(cfg.logger, save_dir=str(save_dir), name=name, job_type="teacher", tags=tags)


def _start_teacher_run(logger: Any, cfg: DictConfig) -> None:
    """``wandb.init`` (on first access to ``experiment``), then the config that made the teacher, flat."""
    phase = OmegaConf.to_container(teacher_phase(cfg), resolve=True)
    teacher_part = {k: phase[k] for k in ("teacher", "data", "optim", "trainer") if k in phase}
    log_config(logger.experiment, {**flat_config(teacher_part), "teacher_seed": teacher_seed(cfg)})
    define_summaries(logger.experiment)
