"""Get the run's trained, frozen teacher: a single model, or an ensemble whose members are each got as one."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from torch import nn

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.models.ensemble import TeacherEnsemble
from kdlab.teacher.members import prepare_ensemble
from kdlab.teacher.single import prepare_single
from kdlab.teacher.source import TeacherSource


def prepare_teacher(
    model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, run_dir: Path | None = None
) -> TeacherSource:
    """Fill ``model`` (a single teacher or a :class:`TeacherEnsemble`) with trained weights and say where from;
    a single teacher trained here logs its own W&B run under ``run_dir`` (ensemble members do not, yet)."""
    if isinstance(model, TeacherEnsemble):  # each member is prepared, and cached, as a single teacher
        return prepare_ensemble(model, cfg, datamodule)
    return prepare_single(model, cfg, datamodule, run_dir)
