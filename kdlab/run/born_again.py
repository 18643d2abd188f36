"""Born-again networks (Furlanello et al. 2018, "Born-Again Neural Networks", arXiv:1805.04770).

Generation 0 is the student's architecture trained from labels; generation k = 1..N has the same architecture, is
trained from scratch against generation k−1's outputs (the ``kd`` config's terms; ``kd=born_again`` is the paper's
soft targets at T = 1), and BANE, the born-again ensemble, averages the predictions of generations 1..k
(f̂ᵏ(x) = 1/k Σᵢ₌₁ᵏ f(x, θᵢ)). ``kd.generations=N`` turns any ``kd`` config into such a chain; the
configured ``teacher`` is not used.

Each generation is one ordinary :func:`kdlab.run.single.run` (own folder ``gen<k>/`` with its own results.json),
whose teacher is the previous generation's saved model. Generation 0 is trained and cached exactly as a teacher
of the student's architecture would be, for ``trainer.max_epochs`` epochs, so every generation gets the same
budget. Generation k trains under ``seed + k``, so generations differ in initialisation and data order as
independently trained networks do.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.table import Table

from kdlab import result_keys
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.transfer import data_source_config
from kdlab.errors import ConfigError
from kdlab.instantiate import build
from kdlab.models import build_model
from kdlab.models.ensemble import TeacherEnsemble
from kdlab.models.files import load_into
from kdlab.run.results import write_results
from kdlab.run.single import run_single
from kdlab.run.summary import print_summary
from kdlab.run.validate import validate_config
from kdlab.teacher.prepare import prepare_teacher
from kdlab.teacher.recipe import teacher_recipe
from kdlab.teacher.source import TeacherSource
from kdlab.training.evaluator import evaluate_model

log = logging.getLogger(__name__)


def check_generations(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"kd.generations must be an integer >= 1 (generations after generation 0), got {value!r}")
    return value


def generation_config(cfg: DictConfig, generation: int, teacher_checkpoint: str | None) -> DictConfig:
    """A single-run config: the student as its own teacher (loaded from ``teacher_checkpoint``), seed + generation."""
    gen = copy.deepcopy(cfg)
    with open_dict(gen):
        gen.kd.pop("generations")
        gen.seed = int(cfg.seed) + generation
        gen.teacher = checkpoint_teacher(cfg.student, teacher_checkpoint, cfg.trainer.max_epochs)
    return gen


def checkpoint_teacher(network: DictConfig, checkpoint: str | None, max_epochs: int) -> dict[str, Any]:
    """A ``teacher`` node for the ``student``-shaped ``network`` loaded from ``checkpoint`` (trained when None)."""
    return {
        "name": network.name,
        "pretrained": False,
        "checkpoint": checkpoint,
        "max_epochs": max_epochs,
        "model": copy.deepcopy(network.model),
    }


def train_generation_zero(cfg: DictConfig, datamodule: InMemoryDataModule) -> TeacherSource:
    """Generation 0 from labels, through the teacher cache (so a repeated born-again run reuses it)."""
    gen0 = generation_config(cfg, 0, None)
    pl.seed_everything(gen0.seed, workers=True, verbose=False)
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    return prepare_teacher(build_model(gen0.teacher.model, role="student", **shape), teacher_recipe(gen0), datamodule)


def ensemble_accuracy(cfg: DictConfig, datamodule: InMemoryDataModule, checkpoints: dict[int, str]) -> float:
    """Test accuracy of the chosen generations' averaged predictions (probabilities at T = 1)."""
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    models = []
    for path in checkpoints.values():
        model = build_model(cfg.student.model, role="student", **shape)
        load_into(model, path, name=cfg.student.name, **shape)
        models.append(model)
    ensemble = TeacherEnsemble(models, [f"gen{k}" for k in checkpoints], "mean_probs", temperature=1.0)
    return float(evaluate_model(ensemble, datamodule, cfg.trainer)["test/acc"])


def run_generations(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train generation 0, then ``kd.generations`` born-again generations; results.json reports every one and BANE."""
    started = time.perf_counter()
    count = check_generations(cfg.kd.generations)
    validate_config(generation_config(cfg, 0, None))
    datamodule: InMemoryDataModule = build(data_source_config(cfg.data))
    zero = train_generation_zero(cfg, datamodule)
    checkpoints, runs = [str(zero.path)], []
    for k in range(1, count + 1):
        log.info("born-again generation %d of %d (teacher: %s)", k, count, checkpoints[-1])
        runs.append(run_single(generation_config(cfg, k, checkpoints[-1]), out_dir / f"gen{k}"))
        checkpoints.append(runs[-1][result_keys.STUDENT_CHECKPOINT])
    metrics = _collect(runs, checkpoints)
    every = dict(enumerate(checkpoints))
    metrics[result_keys.GENERATIONS_ENSEMBLE_TEST_ACC] = ensemble_accuracy(
        cfg, datamodule, {k: every[k] for k in every if k}
    )
    metrics[result_keys.GENERATIONS_ENSEMBLE_ALL_TEST_ACC] = ensemble_accuracy(cfg, datamodule, every)
    metrics.update(
        {"teacher/source": zero.kind, "seed": cfg.seed, result_keys.WALL_TIME: time.perf_counter() - started}
    )
    write_results(cfg, out_dir, metrics)
    print_summary(metrics)
    print_generations(metrics)
    return metrics


def _collect(runs: list[dict[str, Any]], checkpoints: list[str]) -> dict[str, Any]:
    """The last generation is the run's student, generation 0 its teacher; every generation is listed."""
    metrics = {k: v for k, v in runs[-1].items() if not k.startswith("teacher/")}
    metrics.update({k: v for k, v in runs[0].items() if k.startswith("teacher/")})
    accuracies = [runs[0][result_keys.TEACHER_TEST_ACC], *(r[result_keys.STUDENT_TEST_ACC] for r in runs)]
    metrics[result_keys.RETENTION] = accuracies[-1] / accuracies[0] if accuracies[0] else None
    metrics[result_keys.PARAM_RATIO] = 1.0
    metrics["generations"] = len(runs)
    for k, (acc, path) in enumerate(zip(accuracies, checkpoints, strict=True)):
        metrics[f"generations/{k}/test_acc"] = acc
        metrics[f"generations/{k}/checkpoint"] = str(path)
    return metrics


def print_generations(metrics: dict[str, Any]) -> None:
    table = Table(title="born-again generations")
    table.add_column("generation")
    table.add_column("test acc", justify="right")
    for k in range(metrics["generations"] + 1):
        table.add_row(str(k), f"{100 * metrics[f'generations/{k}/test_acc']:.2f}%")
    table.add_row("BANE 1..N", f"{100 * metrics['generations/ensemble_test_acc']:.2f}%")
    table.add_row("ensemble 0..N", f"{100 * metrics['generations/ensemble_all_test_acc']:.2f}%")
    Console().print(table)
