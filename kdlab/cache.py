"""Where trained teachers live, and the key that says which runs may share one."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import platformdirs
from omegaconf import DictConfig, OmegaConf

CACHE_FORMAT = 1


def cache_root(configured: str | None = None) -> Path:
    """``cache_dir`` from the config, else ``$KDLAB_CACHE``, else the user's XDG cache directory."""
    root = configured or os.environ.get("KDLAB_CACHE") or platformdirs.user_cache_dir("kdlab")
    return Path(root).expanduser()


def config_key(*parts: Any) -> str:
    """A short stable hash of resolved config parts (dict order does not matter)."""
    plain = [OmegaConf.to_container(p, resolve=True) if isinstance(p, DictConfig) else p for p in parts]
    blob = json.dumps([CACHE_FORMAT, *plain], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def teacher_phase(cfg: DictConfig) -> DictConfig:
    """The config as the teacher's own training sees it: ``teacher.max_epochs`` epochs, and ``teacher.optim`` in place
    of ``optim`` when the teacher has a recipe of its own."""
    phase = OmegaConf.merge(cfg, {"trainer": {"max_epochs": cfg.teacher.max_epochs}})
    if cfg.teacher.get("optim") is not None:
        phase.optim = phase.teacher.optim
    return phase


def teacher_cache_key(cfg: DictConfig) -> str:
    """Everything that determines a trained teacher: its config, the data config, the optimiser and the seed.

    The optimiser is the one the teacher's phase uses, resolved there (``trainer.max_epochs`` = ``teacher.max_epochs``),
    so a schedule that reads the epoch count keys the teacher's schedule: the student's epochs or, with a
    ``teacher.optim``, the student's optimiser do not retrain the teacher.
    """
    teacher = OmegaConf.to_container(cfg.teacher, resolve=True)
    teacher.pop("checkpoint", None)
    teacher.pop("optim", None)  # keyed below, as resolved for the teacher's phase
    return config_key(teacher, cfg.data, teacher_phase(cfg).optim, cfg.seed)
