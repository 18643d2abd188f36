"""Where trained teachers live, and the key that says which runs may share one."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import platformdirs
from omegaconf import DictConfig, OmegaConf, open_dict

from kdlab.data.transfer import data_source_config
from kdlab.training.seeding import teacher_seed

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
    """The run config as the teacher trains under it: ``teacher.max_epochs`` epochs and ``teacher.optim`` when given —
    a whole recipe (with an ``optimizer._target_``) replaces ``optim``, a partial one (``{optimizer: {lr: 0.05}}``)
    is merged over it; interpolations such as a scheduler's ``${trainer.max_epochs}`` resolve to the teacher's."""
    phase = OmegaConf.merge(cfg, {"trainer": {"max_epochs": cfg.teacher.max_epochs}})
    own = cfg.teacher.get("optim")
    if own:
        whole = OmegaConf.select(own, "optimizer._target_") is not None
        with open_dict(phase):
            phase.optim = phase.teacher.optim if whole else OmegaConf.merge(phase.optim, phase.teacher.optim)
    return phase


def teacher_cache_key(cfg: DictConfig) -> str:
    """Everything that determines a trained teacher: its config, the data config, its optimiser (as the teacher's phase
    resolves it, so changing the student's epochs does not retrain the teacher) and the teacher's seed."""
    teacher = OmegaConf.to_container(cfg.teacher, resolve=True)
    teacher.pop("checkpoint", None)
    teacher.pop("optim", None)
    return config_key(teacher, *_teacher_data_key(cfg, teacher), teacher_phase(cfg).optim, teacher_seed(cfg))


# --- issue 13: what the teacher trained on. The student's transfer set (data.transfer_*_classes) is not part of it,
# so an omitted-class run shares the plain run's teacher; teacher.bias is (it is in the teacher config), and an unset
# bias is dropped so that existing cache entries keep their keys.
def _teacher_data_key(cfg: DictConfig, teacher: dict[str, Any]) -> tuple[Any]:
    if teacher.get("bias") is None:
        teacher.pop("bias", None)
    return (data_source_config(cfg.data),)
