"""Get the run's trained, frozen teacher: a single model, or an ensemble whose members are each got as one."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from torch import nn

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.models.ensemble import TeacherEnsemble
from kdlab.teacher.members import prepare_ensemble
from kdlab.teacher.single import flag_chance_level, prepare_single, run_directory
from kdlab.teacher.source import TeacherSource


def prepare_teacher(
    model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, run_dir: Path | None = None
) -> TeacherSource:
    """Fill ``model`` (a single teacher or a :class:`TeacherEnsemble`) with trained weights and say where from.

    A teacher that is not cached (partial training, a full disk) is kept in ``run_dir``; a single teacher trained here
    logs its own W&B run under it (ensemble members do not, yet). A teacher at chance level is reported loudly.
    """
    with run_directory(run_dir):
        if isinstance(model, TeacherEnsemble):  # each member is prepared, and cached, as a single teacher
            source = prepare_ensemble(model, cfg, datamodule)
        else:
            source = prepare_single(model, cfg, datamodule, run_dir)
    flag_chance_level(model, str(cfg.teacher.name), datamodule, source)
    return source
