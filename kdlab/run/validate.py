"""Checks on the composed config that need no data and no model: they run first, so bad input fails in a second."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from kdlab.data.augment import check_augment
from kdlab.datafree import check_data_free
from kdlab.errors import ConfigError
from kdlab.models.factory import check_timm_name
from kdlab.models.foreign import FORMATS as CHECKPOINT_FORMATS
from kdlab.post.settings import check_post_config
from kdlab.teacher.members import reject_teacher_list
from kdlab.teacher.output_cache import cache_mode
from kdlab.teacher.recipe import outputs_settings
from kdlab.teacher.replay import ReplaySettings, check_forced_replay
from kdlab.tracking import resolve_wandb_mode
from kdlab.training.resume import resume_mode

log = logging.getLogger(__name__)


def _check_model(node: DictConfig, role: str) -> None:
    model = node.get("model")
    if model is None or "_target_" not in model:
        raise ConfigError(f"{role}.model must be a node with a _target_ (e.g. timm.create_model)")
    if model._target_ == "timm.create_model":
        check_timm_name(str(model.model_name), role)


def _check_positive_int(value, key: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_number(cfg: DictConfig, key: str, low: float, high: float | None = None, *, open_low: bool = False) -> None:
    """``key`` (if set) is a finite number in ``[low, high]``; ``open_low`` excludes ``low`` (``> low``).

    NaN passes every comparison and inf every lower bound, and both reach here as floats (YAML ``.nan``/``.inf``,
    ``key=nan``/``inf`` on the command line), so they are refused by name first."""
    value = OmegaConf.select(cfg, key)
    if value is None:
        return
    allowed = (
        (f"> {low:g}" if open_low else f">= {low:g}")
        if high is None
        else f"in {'(' if open_low else '['}{low:g}, {high:g}]"
    )
    if not _is_number(value):
        raise ConfigError(f"{key} must be a number {allowed}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number {allowed}, got {value}")
    if (value <= low if open_low else value < low) or (high is not None and value > high):
        raise ConfigError(f"{key} must be {allowed}, got {value}")


def _check_fraction(data: DictConfig, key: str) -> None:
    value = data.get(key)
    if value is not None and not (_is_number(value) and 0 < value < 1):
        raise ConfigError(f"data.{key} must be a number in (0, 1), got {value!r}")


def _check_data(data: DictConfig) -> None:
    for key in ("batch_size", "image_size"):
        if data.get(key) is not None:
            _check_positive_int(data.get(key), f"data.{key}")
    if data.get("image_size") is not None and data.image_size < 8:
        raise ConfigError(
            f"data.image_size must be an integer >= 8 (models downsample by up to 8), got {data.image_size}"
        )
    for key in ("val_fraction", "test_fraction"):
        _check_fraction(data, key)
    held_out = float(data.get("val_fraction") or 0) + float(data.get("test_fraction") or 0)
    if held_out >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction must be < 1 (something must be left to train on), got {held_out:g}"
        )
    if OmegaConf.is_missing(data, "root"):
        raise ConfigError("data.root is not set: pass data.root=/path/to/the/data")
    root = data.get("root")
    if root is not None and data.get("download") is not True and not Path(str(root)).expanduser().exists():
        raise ConfigError(f"data.root {root} does not exist")


def _check_run(cfg: DictConfig) -> None:
    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
    resume_mode(cfg.get("resume", "auto"))
    if cfg.get("checkpoint_every_n_steps") is not None:
        _check_positive_int(cfg.checkpoint_every_n_steps, "checkpoint_every_n_steps")


def has_teacher(cfg: DictConfig) -> bool:
    """False for ``teacher=none`` (no model): the baseline and teacher-free methods (kd=tfkd) need no teacher."""
    return not (cfg.teacher.get("name") == "none" and cfg.teacher.get("model") is None)


def _check_teacher(cfg: DictConfig) -> None:
    _check_model(cfg.teacher, "teacher")
    _check_positive_int(cfg.teacher.get("max_epochs"), "teacher.max_epochs")
    if cfg.teacher.get("augment") is not None:
        check_augment(cfg.teacher.augment, key="teacher.augment")
    if cfg.teacher.get("checkpoint") and not Path(cfg.teacher.checkpoint).is_file():
        raise ConfigError(f"teacher.checkpoint {cfg.teacher.checkpoint} does not exist")
    _check_teacher_files(cfg.teacher)
    cache_mode(outputs_settings(cfg))  # kd.cache_teacher: a bad value, or true with random augmentation


def _check_teacher_files(teacher: DictConfig) -> None:
    """``checkpoint_format`` from the known layouts; ``pretrained_file`` an existing file, and not combined with
    another source of weights (a checkpoint is loaded as it is, a pretrained start is fine-tuned)."""
    fmt = teacher.get("checkpoint_format") or "auto"
    if fmt not in CHECKPOINT_FORMATS:
        raise ConfigError(f"teacher.checkpoint_format must be one of {', '.join(CHECKPOINT_FORMATS)}, got {fmt!r}")
    start = teacher.get("pretrained_file")
    if not start:
        return
    if not Path(str(start)).expanduser().is_file():
        raise ConfigError(f"teacher.pretrained_file {start} does not exist (a timm/torchvision/safetensors state dict)")
    for other in ("checkpoint", "pretrained"):
        if teacher.get(other):
            raise ConfigError(
                f"teacher.pretrained_file={start} and teacher.{other}={teacher[other]} both give the teacher weights; "
                "set one (a checkpoint is loaded as it is; a pretrained start has its head fine-tuned)"
            )


def _warn_about_unfinished_warmups(cfg: DictConfig) -> None:
    """A term whose loss ramps up over more epochs than the run has (DKD's and ReviewKD's 20 are CIFAR's 240-epoch
    recipe) never reaches its full weight: legal, but rarely what a short run means."""
    epochs = cfg.trainer.max_epochs
    for name, node in (cfg.kd.get("terms") or {}).items():
        warmup = node.get("warmup_epochs") if isinstance(node, DictConfig) else None
        if isinstance(warmup, int) and warmup >= epochs:
            log.warning(
                "kd.terms.%s.warmup_epochs=%d ≥ trainer.max_epochs=%d: its loss never reaches full weight (at most "
                "%.0f%%); set kd.terms.%s.warmup_epochs below the epochs", name, warmup, epochs,
                100 * min(epochs / warmup, 1.0), name,
            )  # fmt: skip


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming the first bad value and what is allowed."""
    _check_number(cfg, "kd.temperature", 0, open_low=True)
    _check_number(cfg, "kd.alpha", 0, 1)
    for name in cfg.kd.get("weights") or {}:
        _check_number(cfg, f"kd.weights.{name}", 0)
    _check_number(cfg, "optim.optimizer.lr", 0, open_low=True)
    _check_number(cfg, "optim.optimizer.weight_decay", 0)
    _check_number(cfg, "optim.optimizer.momentum", 0, 1)
    _check_number(cfg, "trainer.gradient_clip_val", 0, open_low=True)
    _check_number(cfg, "post.prune_finetune_lr_factor", 0, open_low=True)  # check_post_config lets inf through
    _check_data(cfg.data)
    _check_run(cfg)
    if float(cfg.kd.get("alpha") or 0) > 0 and not cfg.kd.get("terms"):
        raise ConfigError(
            f"kd.alpha={cfg.kd.alpha} only scales the cross-entropy by 1 - alpha: kd has no distillation terms "
            "(kd=none?); set kd.alpha=0"
        )
    _check_model(cfg.student, "student")
    reject_teacher_list()
    _check_positive_int(cfg.trainer.get("max_epochs"), "trainer.max_epochs")
    warmup = cfg.optim.get("warmup_epochs", 0)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < cfg.trainer.max_epochs:
        epochs = cfg.trainer.max_epochs
        raise ConfigError(f"optim.warmup_epochs must be an integer in [0, trainer.max_epochs={epochs}), got {warmup!r}")
    _warn_about_unfinished_warmups(cfg)
    if has_teacher(cfg):
        _check_teacher(cfg)
    ReplaySettings.of(outputs_settings(cfg))  # kd.replay: views, topk, max_gb
    check_forced_replay(cfg.kd)  # kd.cache_teacher=replay with feature-map terms
    if cfg.get("logger") and cfg.logger.get("mode") is not None:
        resolve_wandb_mode(cfg.logger.mode)
    check_post_config(cfg.get("post"))
    check_data_free(cfg)  # kd.transfer, kd.generator: nothing may read the training split after the teacher
