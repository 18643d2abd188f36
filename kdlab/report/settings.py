"""What the compression report and ``kdlab-evaluate``'s W&B run take from a run's config, read once at the top.

:func:`report_settings` is called where the config is composed (``kdlab.run`` for a run, :func:`kdlab.report.
evaluate.evaluate_run` for a recomputed report); everything else in :mod:`kdlab.report` takes the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from kdlab.instantiate import Node
from kdlab.post.settings import FinetuneSettings, finetune_settings


@dataclass(frozen=True)
class ReportSettings:
    """The report's rows (which models, named how), its ``post`` steps and how it times them."""

    student_name: str
    student_model: Node  # rebuilds the student for the sweep's baseline and a reused pruned checkpoint
    teacher_name: str
    seed: int  # picks the int8 calibration batches and the baseline of the same seed first
    is_baseline: bool  # kd=none: the run is itself the sweep's baseline, so none is loaded
    quantize: str | None  # post.quantize: None | int8 | qat (post.prune is finetune.prune)
    export: str | None  # post.export: None | onnx
    calibration_batches: int
    latency_threads: int | None
    latency_warmup: int
    latency_repeats: int
    finetune: FinetuneSettings


@dataclass(frozen=True)
class EvaluationLogSettings:
    """What ``kdlab-evaluate``'s own W&B run needs: the logger, the distilling run's name parts, tags and ``post``."""

    logger: Node | None
    kd_terms: tuple[str, ...]
    teacher_name: str
    student_name: str
    seed: int
    tags: Any
    post: Mapping[str, Any]  # the resolved post node, logged as the evaluate run's config


def report_settings(cfg: DictConfig) -> ReportSettings:
    """The report's settings from a composed run config (a missing ``post`` node: no post steps, default timing)."""
    post = cfg.get("post") or {}
    latency = post.get("latency") or {}
    return ReportSettings(
        student_name=str(cfg.student.name),
        student_model=cfg.student.model,
        teacher_name=str(cfg.teacher.get("name")),
        seed=int(cfg.seed),
        is_baseline=is_baseline_config(cfg),
        quantize=post.get("quantize"),
        export=post.get("export"),
        calibration_batches=int(post.get("calibration_batches", 16)),
        latency_threads=latency.get("threads"),
        latency_warmup=int(latency.get("warmup", 5)),
        latency_repeats=int(latency.get("repeats", 20)),
        finetune=finetune_settings(cfg),
    )


def evaluation_log_settings(cfg: DictConfig) -> EvaluationLogSettings:
    """What ``kdlab-evaluate`` logs to W&B, from the config stored in results.json (``post`` overrides merged)."""
    return EvaluationLogSettings(
        logger=cfg.get("logger"),
        kd_terms=tuple(cfg.kd.terms or {}),
        teacher_name=str(cfg.teacher.name),
        student_name=str(cfg.student.name),
        seed=int(cfg.seed),
        tags=cfg.get("tags"),
        post=OmegaConf.to_container(cfg.post, resolve=True),
    )


def is_baseline_config(cfg: DictConfig) -> bool:
    """True for a run without distillation (no terms, alpha 0): it is itself the baseline."""
    return not cfg.kd.get("terms") and float(cfg.kd.get("alpha", 0.0)) == 0.0
