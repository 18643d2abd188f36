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


def teacher_cache_key(cfg: DictConfig) -> str:
    """Everything that determines a trained teacher: its config, the data config, the optimiser and the seed.

    The optimiser is resolved as the teacher phase sees it (``trainer.max_epochs = teacher.max_epochs``, e.g. the
    scheduler's ``T_max``), so a sweep over the student's epochs shares one teacher.
    """
    teacher = OmegaConf.to_container(cfg.teacher, resolve=True)
    teacher.pop("checkpoint", None)
    phase = OmegaConf.merge(cfg, {"trainer": {"max_epochs": cfg.teacher.max_epochs}})
    return config_key(teacher, cfg.data, phase.optim, cfg.seed)
