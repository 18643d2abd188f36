"""One kdlab run: check the config, get the teacher, distil the student, test both, write results once."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from kdlab.checkpoint import save_model
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.instantiate import build, build_optim
from kdlab.io import write_json
from kdlab.lightning_io import AtomicCheckpointIO, best_score
from kdlab.models import build_model, embedding_dim, stage_infos
from kdlab.module import DistillationModule, check_weights, metric_collection
from kdlab.report import finish_report
from kdlab.resume import (
    CHECKPOINT_DIR,
    ResumePlan,
    plan_resume,
    resumable_state,
    resume_callbacks,
    resume_mode,
    run_signature,
)
from kdlab.seeding import seeded, teacher_seed
from kdlab.speed import compile_model, to_channels_last, to_contiguous
from kdlab.summary import print_summary
from kdlab.teacher import TeacherSource, prepare_teacher
from kdlab.teacher_output_cache import TeacherOutputsPlan, teacher_outputs_plan
from kdlab.teacher_outputs import TeacherOutputTable, TeacherTaps
from kdlab.terms import PairSpec
from kdlab.tracking import finish_wandb
from kdlab.training import leave_process_group, make_trainer, test_accuracy
from kdlab.validate import validate_config

log = logging.getLogger(__name__)

FIT_LOSSES = ("train/loss_epoch", "val/loss_ce")  # last epoch's means, synced over DDP ranks


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_pair(cfg: DictConfig, student: nn.Module, teacher: nn.Module, datamodule) -> PairSpec:
    """What the terms may know of the pair and the data: names, stages, embedding sizes, classes, train size."""
    return PairSpec(
        student_name=cfg.student.name,
        teacher_name=cfg.teacher.name,
        student_stages=tuple(stage_infos(student)),
        teacher_stages=tuple(stage_infos(teacher)),
        student_embedding_dim=embedding_dim(student),
        teacher_embedding_dim=embedding_dim(teacher),
        num_classes=datamodule.num_classes,
        num_train_samples=datamodule.num_train,
    )


def build_terms(cfg: DictConfig, student: nn.Module, teacher: nn.Module, datamodule) -> dict:
    """Finish each ``_partial_`` term node with the runtime facts of the pair (channels, stages, data size)."""
    pair = describe_pair(cfg, student, teacher, datamodule)
    return {name: build(node, pair=pair) for name, node in (cfg.kd.terms or {}).items()}


def make_logger(cfg: DictConfig, out_dir: Path):
    if not cfg.get("logger") or cfg.logger.get("_target_") is None:
        return False
    return build(cfg.logger, save_dir=str(out_dir))


@dataclass
class RunSetup:
    """What a run builds before the student's first step. Every config error is raised while building it."""

    datamodule: InMemoryDataModule
    shape: dict[str, int]
    student: nn.Module
    teacher: nn.Module
    terms: dict[str, nn.Module]
    optim: dict[str, Any]
    signature: dict[str, Any]
    config: dict[str, Any]
    resume: ResumePlan
    source: TeacherSource
    outputs: TeacherOutputsPlan
    teacher_metrics: dict[str, float]


def set_up(cfg: DictConfig, out_dir: Path) -> RunSetup:
    """Check the config, build data, models and terms, find the checkpoint to resume, then get the teacher."""
    validate_config(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule: InMemoryDataModule = build(cfg.data)
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    student = build_model(cfg.student.model, role="student", **shape)
    with seeded(teacher_seed(cfg)):  # the teacher's init and training follow teacher_seed only
        teacher = build_model(cfg.teacher.model, role="teacher", **shape)
    terms = build_terms(cfg, student, teacher, datamodule)  # bad stages / dims fail here, before any training
    optim = build_optim(cfg.optim)
    check_weights(terms, cfg.kd.weights, cfg.kd.alpha)
    signature = run_signature(cfg.student.name, cfg.teacher.name, **shape, terms=terms)
    config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "resume"}
    mode = resume_mode(cfg.get("resume", "auto"))  # a foreign or torn checkpoint fails here, before the teacher
    resume = plan_resume(out_dir, mode, signature, resumable_state(student, terms), config)
    if cfg.get("channels_last") and "ddp" not in str(cfg.trainer.get("strategy", "")):
        # single process only: under DDP, NHWC weights' gradients no longer match the bucket views exactly
        to_channels_last(student)
        to_channels_last(teacher)
    with seeded(teacher_seed(cfg)):
        source = prepare_teacher(teacher, cfg, datamodule, out_dir)
    outputs = teacher_outputs_plan(cfg, teacher, datamodule, TeacherTaps.of(terms.values()))
    teacher_metrics = teacher_test_metrics(teacher, datamodule, outputs.table, optim, cfg.trainer)
    return RunSetup(
        datamodule, shape, student, teacher, terms, optim, signature, config, resume, source, outputs, teacher_metrics
    )


def teacher_test_metrics(teacher, datamodule, table: TeacherOutputTable | None, optim, trainer_cfg) -> dict:
    """The teacher's test metrics: from its cached test logits when the output table has them and the whole test
    split is tested (as the student is), else a test pass."""
    limit = trainer_cfg.get("limit_test_batches", 1.0)  # Lightning: an int counts batches, a float is a fraction
    whole_split = limit is None or (isinstance(limit, float) and limit == 1.0)
    if table is not None and table.covers("test") and whole_split:
        metrics = metric_collection(datamodule.num_classes, "test/")
        index = torch.arange(len(datamodule.test))
        metrics.update(table.lookup(index, "test").logits.float(), datamodule.test.targets)
        return {k: float(v) for k, v in metrics.compute().items()}
    return test_accuracy(DistillationModule(teacher, datamodule.num_classes, **optim), datamodule, trainer_cfg)


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run one experiment into ``out_dir`` and return its flat metrics (also written to ``results.json``)."""
    if cfg.kd.get("generations") is not None:  # born-again networks: a chain of runs of this function
        from kdlab.born_again import run_generations

        return run_generations(cfg, out_dir)
    started = time.perf_counter()
    setup = set_up(cfg, out_dir)
    if cfg.get("compile"):
        compile_model(setup.student)
        if setup.outputs.table is None:
            compile_model(setup.teacher)
    module = DistillationModule(
        setup.student,
        setup.datamodule.num_classes,
        teacher=setup.teacher,
        terms=setup.terms,
        weights=cfg.kd.weights,
        alpha=cfg.kd.alpha,
        teacher_outputs=setup.outputs.table,
        **setup.optim,
    )
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    logger = make_logger(cfg, out_dir)
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    best = ModelCheckpoint(
        dirpath=out_dir / CHECKPOINT_DIR, monitor="val/acc", mode="max", save_last=True, enable_version_counter=False
    )
    every = cfg.get("checkpoint_every_n_steps")
    callbacks = [best, *resume_callbacks(out_dir / CHECKPOINT_DIR, setup.signature, setup.config, every)]
    trainer = make_trainer(cfg.trainer, out_dir, logger=logger, callbacks=callbacks, plugins=[AtomicCheckpointIO()])
    try:
        trainer.fit(module, datamodule=setup.datamodule, ckpt_path=setup.resume.checkpoint, weights_only=True)
        fitted = trainer.callback_metrics  # empty when a finished run is resumed: nothing left to train
        last_epoch = {f"student/{k.split('/')[0]}_loss": float(fitted[k]) if k in fitted else None for k in FIT_LOSSES}
        final_val_acc = fitted.get("val/acc")
        student_metrics = trainer.test(module, datamodule=setup.datamodule, verbose=False)[0]
        leave_process_group()  # from here on rank 0 works alone
        for model in (setup.student, setup.teacher):  # the report times both, pruning and export need NCHW
            to_contiguous(model)
        if not trainer.is_global_zero:  # under DDP every rank runs this function; rank 0 alone writes
            return {}
        metrics = _collect(cfg, setup, module, student_metrics, best, started)
        metrics.update({**last_epoch, **setup.resume.results()})
        student_path = save_model(out_dir / "student.pt", setup.student, cfg.student.name, **setup.shape)
        metrics["student/checkpoint"] = str(student_path)
        metrics["student/val_acc"] = float(final_val_acc) if final_val_acc is not None else None
        metrics.update(finish_report(cfg, out_dir, module, setup.datamodule, logger))
        # last: testing the best checkpoint loads its weights into the module
        metrics["student/test_acc_best_ckpt"] = _test_best_checkpoint(cfg, module, setup.datamodule, best)
        if logger:
            metrics["wandb/dir"] = getattr(getattr(logger, "experiment", None), "dir", None)
            logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
            _update_summary(logger, metrics)
    except BaseException:
        finish_wandb(exit_code=1)  # the dashboard shows a crashed job as failed, not finished
        raise
    finish_wandb()
    write_results(cfg, out_dir, metrics)
    print_summary(metrics)
    return metrics


def write_results(cfg: DictConfig, out_dir: Path, metrics: dict[str, Any]) -> None:
    """``results.json``: the flat metrics plus status, the group choices, the overrides and the resolved config."""
    results = {
        **metrics,
        "status": "completed",
        "choices": _choices(),
        "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [],
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json(out_dir / "results.json", results)


def _test_best_checkpoint(cfg, module, datamodule, best: ModelCheckpoint) -> float | None:
    """Test accuracy of the best-val epoch's weights: the "best" number a sweep reports, chosen on val, not test."""
    if not best.best_model_path:
        return None
    tester = make_trainer(cfg.trainer, Path(best.dirpath), quiet=True, enable_progress_bar=False)
    with warnings.catch_warnings():  # Lightning asks for the ModelCheckpoint callback, which testing does not need
        warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint.*")
        return tester.test(module, datamodule=datamodule, ckpt_path=best.best_model_path, verbose=False)[0]["test/acc"]


def _choices() -> dict[str, str]:
    """Which file of each config group this run composed (``kd: response`` …), when run through Hydra."""
    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}


def _update_summary(logger, metrics: dict[str, Any]) -> None:
    summary = getattr(getattr(logger, "experiment", None), "summary", None)
    if summary is not None:
        summary.update({k: v for k, v in metrics.items() if isinstance(v, int | float | str)})


def _collect(cfg, setup: RunSetup, module, student_metrics, best, started) -> dict[str, Any]:
    teacher_metrics, source, datamodule = setup.teacher_metrics, setup.source, setup.datamodule
    teacher_acc, student_acc = teacher_metrics["test/acc"], student_metrics["test/acc"]
    t_params, s_params = _params(module.teacher.model), _params(module.student)
    metrics = {
        "data/name": datamodule.name,
        "kd/method": _choices().get("kd", ",".join(cfg.kd.terms or {}) or "none"),
        "seed": cfg.seed,
        "teacher/name": cfg.teacher.name,
        "teacher/source": source.kind,
        "teacher/path": str(source.path),
        "teacher/test_acc": teacher_acc,
        "teacher/test_acc_top5": teacher_metrics.get("test/acc_top5"),
        "teacher/params": t_params,
        "student/name": cfg.student.name,
        "student/test_acc": student_acc,
        "student/test_acc_top5": student_metrics.get("test/acc_top5"),
        "student/test_agreement": student_metrics.get("test/agreement"),
        "student/test_kl_to_teacher": student_metrics.get("test/kl_to_teacher"),
        "student/best_val_acc": best_score(best),
        "student/params": s_params,
        "retention": student_acc / teacher_acc if teacher_acc else None,
        "param_ratio": t_params / s_params,
        "wall_time_s": time.perf_counter() - started,
    }
    metrics.update(source.report)
    metrics["teacher/outputs_source"] = setup.outputs.source
    return metrics
