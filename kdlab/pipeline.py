"""One kdlab run: check the config, get the teacher, distil the student, test both, write results once."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from kdlab.checkpoint import save_model
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.instantiate import build, build_optim
from kdlab.io import write_json
from kdlab.models import build_model, embedding_dim, stage_infos
from kdlab.module import DistillationModule, check_weights
from kdlab.speed import compile_model, to_channels_last
from kdlab.summary import print_summary
from kdlab.teacher import prepare_teacher
from kdlab.teacher_output_cache import teacher_outputs_plan
from kdlab.teacher_outputs import TeacherTaps
from kdlab.terms import PairSpec
from kdlab.tracking import finish_wandb
from kdlab.training import make_trainer, test_accuracy
from kdlab.validate import validate_config

log = logging.getLogger(__name__)


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build_terms(cfg: DictConfig, pair: PairSpec) -> dict:
    """Finish each ``_partial_`` term node with the runtime facts of the pair (channels, stages, data size)."""
    return {name: build(node, pair=pair) for name, node in (cfg.kd.terms or {}).items()}


def make_logger(cfg: DictConfig, out_dir: Path):
    if not cfg.get("logger") or cfg.logger.get("_target_") is None:
        return False
    return build(cfg.logger, save_dir=str(out_dir))


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run one experiment into ``out_dir`` and return its flat metrics (also written to ``results.json``)."""
    started = time.perf_counter()
    validate_config(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule: InMemoryDataModule = build(cfg.data)
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    student = build_model(cfg.student.model, role="student", **shape)
    teacher = build_model(cfg.teacher.model, role="teacher", **shape)
    pair = PairSpec(
        student_name=cfg.student.name,
        teacher_name=cfg.teacher.name,
        student_stages=tuple(stage_infos(student)),
        teacher_stages=tuple(stage_infos(teacher)),
        student_embedding_dim=embedding_dim(student),
        teacher_embedding_dim=embedding_dim(teacher),
        num_classes=datamodule.num_classes,
        num_train_samples=datamodule.num_train,
    )
    terms = build_terms(cfg, pair)  # bad stages / dims fail here, before any training
    optim = build_optim(cfg.optim)
    check_weights(terms, cfg.kd.weights, cfg.kd.alpha)
    if cfg.get("channels_last"):
        to_channels_last(student)
        to_channels_last(teacher)
    source = prepare_teacher(teacher, cfg, datamodule)
    outputs = teacher_outputs_plan(cfg, teacher, datamodule, TeacherTaps.of(terms.values()))
    teacher_metrics = test_accuracy(
        DistillationModule(teacher, datamodule.num_classes, **optim), datamodule, cfg.trainer
    )
    if cfg.get("compile"):
        compile_model(student)
        if outputs.table is None:
            compile_model(teacher)
    module = DistillationModule(
        student,
        datamodule.num_classes,
        teacher=teacher,
        terms=terms,
        weights=cfg.kd.weights,
        alpha=cfg.kd.alpha,
        teacher_outputs=outputs.table,
        **optim,
    )

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    logger = make_logger(cfg, out_dir)
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    best = ModelCheckpoint(dirpath=out_dir / "checkpoints", monitor="val/acc", mode="max", save_last=True)
    trainer = make_trainer(cfg.trainer, out_dir, logger=logger, callbacks=[best])
    try:
        trainer.fit(module, datamodule=datamodule)
        student_metrics = trainer.test(module, datamodule=datamodule, verbose=False)[0]
        metrics = _collect(cfg, datamodule, module, teacher_metrics, student_metrics, source, best, started)
        metrics["teacher/outputs_source"] = outputs.source
        student_path = save_model(out_dir / "student.pt", student, cfg.student.name, **shape)
        metrics["student/checkpoint"] = str(student_path)
        if logger:
            metrics["wandb/dir"] = getattr(getattr(logger, "experiment", None), "dir", None)
            logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
            _update_summary(logger, metrics)
    finally:
        finish_wandb()
    results = {
        **metrics,
        "status": "completed",
        "choices": _choices(),
        "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [],
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json(out_dir / "results.json", results)
    print_summary(metrics)
    return metrics


def _choices() -> dict[str, str]:
    """Which file of each config group this run composed (``kd: response`` …), when run through Hydra."""
    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}


def _update_summary(logger, metrics: dict[str, Any]) -> None:
    summary = getattr(getattr(logger, "experiment", None), "summary", None)
    if summary is not None:
        summary.update({k: v for k, v in metrics.items() if isinstance(v, int | float | str)})


def _collect(cfg, datamodule, module, teacher_metrics, student_metrics, source, best, started) -> dict[str, Any]:
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
        "student/best_val_acc": float(best.best_model_score) if best.best_model_score is not None else None,
        "student/params": s_params,
        "retention": student_acc / teacher_acc if teacher_acc else None,
        "param_ratio": t_params / s_params,
        "wall_time_s": time.perf_counter() - started,
    }
    return metrics
