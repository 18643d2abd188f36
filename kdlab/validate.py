"""Checks on the composed config that need no data and no model: they run first, so bad input fails in a second."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from kdlab.errors import ConfigError
from kdlab.models.factory import check_timm_name
from kdlab.teacher_output_cache import cache_mode
from kdlab.tracking import resolve_wandb_mode


def _check_model(node: DictConfig, role: str) -> None:
    model = node.get("model")
    if model is None or "_target_" not in model:
        raise ConfigError(f"{role}.model must be a node with a _target_ (e.g. timm.create_model)")
    if model._target_ == "timm.create_model":
        check_timm_name(str(model.model_name), role)


def _check_positive_int(value, key: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming the first bad value and what is allowed."""
    temperature = cfg.kd.get("temperature")
    if temperature is not None and not float(temperature) > 0:
        raise ConfigError(f"kd.temperature must be > 0, got {temperature}")
    alpha = float(cfg.kd.get("alpha", 0.0))
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"kd.alpha must be in [0, 1], got {cfg.kd.alpha}")
    _check_model(cfg.student, "student")
    _check_model(cfg.teacher, "teacher")
    _check_positive_int(cfg.trainer.get("max_epochs"), "trainer.max_epochs")
    _check_positive_int(cfg.teacher.get("max_epochs"), "teacher.max_epochs")
    if cfg.teacher.get("checkpoint") and not Path(cfg.teacher.checkpoint).is_file():
        raise ConfigError(f"teacher.checkpoint {cfg.teacher.checkpoint} does not exist")
    cache_mode(cfg)  # kd.cache_teacher: a bad value, or true with random augmentation
    if cfg.get("logger") and cfg.logger.get("mode") is not None:
        resolve_wandb_mode(cfg.logger.mode)
