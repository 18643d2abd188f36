"""Get the run's trained, frozen teacher: a single model, or an ensemble whose members are each got as one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.measure.params import count_parameters
from kdlab.models.ensemble import TeacherEnsemble
from kdlab.teacher.recipe import EnsembleRecipe, TeacherRecipe
from kdlab.teacher.single import flag_chance_level, prepare_single, run_directory
from kdlab.teacher.source import TeacherSource
from kdlab.training.evaluator import evaluate_model


def prepare_teacher(
    model: nn.Module,
    recipe: TeacherRecipe | EnsembleRecipe,
    datamodule: InMemoryDataModule,
    run_dir: Path | None = None,
) -> TeacherSource:
    """Fill ``model`` (a single teacher or a :class:`TeacherEnsemble`) with trained weights and say where from.

    ``recipe`` comes from :func:`kdlab.teacher.recipe.teacher_recipe`. A teacher that is not cached (partial training,
    a full disk) is kept in ``run_dir``; a teacher trained here (each ensemble member too) logs its own W&B run under
    it. A teacher at chance level is reported loudly.
    """
    with run_directory(run_dir):
        if isinstance(recipe, EnsembleRecipe):  # each member is prepared, and cached, as a single teacher
            if not isinstance(model, TeacherEnsemble):
                raise TypeError(f"an ensemble recipe needs a TeacherEnsemble, got {type(model).__name__}")
            source = prepare_ensemble(model, recipe, datamodule)
        else:
            source = prepare_single(model, recipe, datamodule, run_dir)
    flag_chance_level(model, recipe.name, datamodule, source)
    return source


def prepare_ensemble(model: TeacherEnsemble, recipe: EnsembleRecipe, datamodule: InMemoryDataModule) -> TeacherSource:
    """Prepare each member with :func:`kdlab.teacher.single.prepare_single` and report its source and test accuracy."""
    report: dict[str, Any] = {"teacher/members": list(model.names)}
    paths, members = [], []
    for label, member_recipe, member in zip(model.names, recipe.members, model.members, strict=True):
        source = prepare_single(member, member_recipe, datamodule)
        prefix = f"teacher/members/{label}"
        report[f"{prefix}/test_acc"] = evaluate_model(member, datamodule, recipe.test_trainer)["test/acc"]
        report[f"{prefix}/source"], report[f"{prefix}/path"] = source.kind, str(source.path)
        report[f"{prefix}/params"] = count_parameters(member)
        paths.append(str(source.path.resolve()))
        members.append((member_recipe.name, source.path))
    return TeacherSource("ensemble", Path(os.path.commonpath(paths)), report, members)
