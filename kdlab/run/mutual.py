"""``kd=dml``: deep mutual learning (Zhang et al. 2018, arXiv:1706.00384): the student and ``kd.peers`` trained
together from scratch, each from the labels and the others' predictions; no teacher (a configured one is not used).

Every member is tested and saved (``cohort/<k>/…`` in results.json; member 0, the student, also fills the usual
``student/…`` keys and ``student.pt``). The logger gets every member's per-epoch curves (``train/member1/loss_dml``
…); a run is not resumable mid-way, and has no compression report or W&B summary/artifacts.
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
from kdlab.instantiate import build, build_optim
from kdlab.measure.params import count_parameters
from kdlab.models import build_model
from kdlab.models.files import save_model
from kdlab.run.members import member_nodes
from kdlab.run.results import hydra_choices, write_results
from kdlab.run.validate import has_teacher, validate_config
from kdlab.run.wandb_run import make_logger
from kdlab.tracking import finish_wandb
from kdlab.training.callbacks import build_callbacks
from kdlab.training.checkpoint_io import AtomicCheckpointIO, best_score
from kdlab.training.mutual import MutualLearningModule, member_prefix
from kdlab.training.trainer import make_trainer

log = logging.getLogger(__name__)

NO_TEACHER = {"name": "none", "model": None, "pretrained": False, "checkpoint": None, "max_epochs": 1}


def cohort_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the teacher set to none (DML has none), checked like any run's config."""
    cohort = copy.deepcopy(cfg)
    with open_dict(cohort):
        cohort.teacher = dict(NO_TEACHER)
    validate_config(cohort)
    weight = cfg.kd.get("mimicry_weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
        raise ConfigError(f"kd.mimicry_weight must be a number >= 0 (the paper: 1), got {weight!r}")
    return cohort


def run_mutual(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train the cohort ``[student, *kd.peers]`` in one module, test every member, write results.json."""
    started = time.perf_counter()
    peers = member_nodes(cfg.kd.peers, "kd.peers")
    if has_teacher(cfg):
        log.warning("kd=dml trains without a teacher: teacher=%s is not used", cfg.teacher.name)
    cfg = cohort_config(cfg)
    nodes = [cfg.student, *peers]
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule: InMemoryDataModule = build(data_source_config(cfg.data))
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    members = [build_model(node.model, role="student", **shape) for node in nodes]
    module = MutualLearningModule(
        members, datamodule.num_classes, mimicry_weight=cfg.kd.get("mimicry_weight", 1.0), **build_optim(cfg.optim)
    )
    logger = make_logger(cfg, out_dir)  # per-epoch curves of every member (CSV, W&B); no W&B summary or artifacts
    best, configured = build_callbacks(cfg.get("callbacks"), out_dir / "checkpoints", has_logger=bool(logger))
    callbacks = [best, *configured]
    trainer = make_trainer(cfg.trainer, out_dir, logger=logger, callbacks=callbacks, plugins=[AtomicCheckpointIO()])
    try:
        trainer.fit(module, datamodule=datamodule, weights_only=True)
        fitted = {k: float(v) for k, v in trainer.callback_metrics.items()}
        trainer.loggers = []  # as in a single run: test numbers go to results.json, not into the history
        tested = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    finally:
        finish_wandb()
    metrics = cohort_metrics(nodes, members, tested, fitted, out_dir, shape)
    metrics.update(
        {
            result_keys.DATA_NAME: datamodule.name,
            result_keys.KD_METHOD: hydra_choices().get("kd", "dml"),
            result_keys.SEED: cfg.seed,
            result_keys.TEACHER_NAME: "none",
            result_keys.TEACHER_SOURCE: "none",
            result_keys.STUDENT_BEST_VAL_ACC: best_score(best),
            result_keys.WALL_TIME: time.perf_counter() - started,
        }
    )
    write_results(cfg, out_dir, metrics)
    print_cohort(metrics)
    return metrics


def cohort_metrics(nodes, members, tested: dict, fitted: dict, out_dir: Path, shape: dict) -> dict[str, Any]:
    """``cohort/<k>/…`` for every member; member 0's numbers also under the usual ``student/…`` keys."""
    metrics: dict[str, Any] = {result_keys.COHORT: len(members)}
    for k, (node, member) in enumerate(zip(nodes, members, strict=True)):
        path = save_model(out_dir / ("student.pt" if k == 0 else f"member{k}.pt"), member, node.name, **shape)
        values = {
            "name": node.name,
            "test_acc": tested[f"{member_prefix('test', k)}acc"],
            "test_acc_top5": tested.get(f"{member_prefix('test', k)}acc_top5"),
            "val_acc": fitted.get(f"{member_prefix('val', k)}acc"),
            "params": count_parameters(member),
            "checkpoint": str(path),
        }
        metrics.update({result_keys.cohort_key(k, field): value for field, value in values.items()})
    metrics.update(
        {
            result_keys.STUDENT_NAME: nodes[0].name,
            result_keys.STUDENT_TEST_ACC: metrics[result_keys.cohort_key(0, "test_acc")],
            result_keys.STUDENT_TEST_ACC_TOP5: metrics[result_keys.cohort_key(0, "test_acc_top5")],
            result_keys.STUDENT_VAL_ACC: metrics[result_keys.cohort_key(0, "val_acc")],
            result_keys.STUDENT_PARAMS: metrics[result_keys.cohort_key(0, "params")],
            result_keys.STUDENT_CHECKPOINT: metrics[result_keys.cohort_key(0, "checkpoint")],
        }
    )
    return metrics


def print_cohort(metrics: dict[str, Any]) -> None:
    table = Table(title="deep mutual learning cohort")
    for column in ("member", "name", "test acc", "params"):
        table.add_column(column, justify="right" if column in ("test acc", "params") else "left")
    for k in range(metrics[result_keys.COHORT]):
        value = {field: metrics[result_keys.cohort_key(k, field)] for field in ("name", "test_acc", "params")}
        label = "0 (student)" if k == 0 else str(k)
        table.add_row(label, str(value["name"]), f"{100 * value['test_acc']:.2f}%", f"{value['params']:,}")
    Console().print(table)
