"""Early checks of the ``post`` config node, so a typo fails in a second instead of after training, and the
settings the post fine-tunes read from the run config (once, where the report is set up)."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from kdlab.errors import ConfigError
from kdlab.instantiate import Node

QUANTIZE_CHOICES = (None, "int8", "qat")
PRUNE_KINDS = ("unstructured", "channel")
EXPORT_CHOICES = (None, "onnx")
EXPORT_PACKAGES = {"onnx": ("onnx", "onnxscript", "onnxruntime")}


def check_post_config(post: Mapping[str, Any] | None) -> None:
    """Raise :class:`ConfigError` naming the first bad ``post.*`` value and what is allowed; None means no node."""
    if post is None:
        return
    quantize, prune, export = post.get("quantize"), post.get("prune"), post.get("export")
    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(f"post.quantize must be null, int8 or qat, got {quantize!r}")
    if quantize is not None and importlib.util.find_spec("torchao") is None:
        raise ConfigError(f"post.quantize={quantize} needs the 'torchao' package: pip install 'kdlab[quant]'")
    if prune is not None and (not _is_number(prune) or not 0.0 < float(prune) < 1.0):
        raise ConfigError(f"post.prune must be null or a fraction in (0, 1), got {prune!r}")
    if export not in EXPORT_CHOICES:
        raise ConfigError(f"post.export must be null or onnx, got {export!r}")
    _check_int(post.get("prune_finetune_epochs", 0), "post.prune_finetune_epochs", least=0)
    _check_int(post.get("prune_steps", 1), "post.prune_steps", least=1)
    kind = post.get("prune_kind", "unstructured")
    if kind not in PRUNE_KINDS:
        raise ConfigError(f"post.prune_kind must be unstructured or channel, got {kind!r}")
    if prune is not None and kind == "channel" and importlib.util.find_spec("torch_pruning") is None:
        raise ConfigError("post.prune_kind=channel needs the 'torch-pruning' package: pip install 'kdlab[prune]'")
    _check_int(post.get("calibration_batches", 1), "post.calibration_batches", least=1)
    _check_int(post.get("qat_epochs", 1), "post.qat_epochs", least=1)
    bits = post.get("quant_weight_bits", 8)
    if not isinstance(bits, int) or isinstance(bits, bool) or not 2 <= bits <= 8:
        raise ConfigError(f"post.quant_weight_bits must be an integer in [2, 8] (int8 kernels), got {bits!r}")
    for key in ("qat_teacher", "prune_teacher"):
        if not isinstance(post.get(key, True), bool):
            raise ConfigError(f"post.{key} must be true or false, got {post.get(key)!r}")
    for key in ("prune_finetune_lr_factor", "qat_lr_factor"):
        factor = post.get(key, 1.0)
        if not _is_number(factor) or not math.isfinite(float(factor)) or not float(factor) > 0:
            raise ConfigError(f"post.{key} must be a finite number > 0, got {factor!r}")
    latency = post.get("latency") or {}
    _check_int(latency.get("repeats", 1), "post.latency.repeats", least=1)
    _check_int(latency.get("warmup", 0), "post.latency.warmup", least=0)
    if latency.get("threads") is not None:
        _check_int(latency.get("threads"), "post.latency.threads", least=1)
    for package in EXPORT_PACKAGES.get(export, ()):
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"post.export={export} needs the '{package}' package: pip install 'kdlab[export]'")


@dataclass(frozen=True)
class FinetuneSettings:
    """What the post fine-tunes (prune-then-distil, QAT) take from the run: its distillation mix, optimiser, Trainer
    and seed, plus each fine-tune's length and learning-rate factor (``post.*``)."""

    prune: float | None
    prune_finetune_epochs: int
    prune_finetune_lr_factor: float
    prune_kind: str  # unstructured (zeros by magnitude) | channel (whole channels removed)
    prune_steps: int  # prune in this many equal steps, the fine-tune's epochs spread between them
    prune_teacher: bool  # false: the healing fine-tune uses cross-entropy only (the no-teacher ablation)
    qat_epochs: int
    qat_teacher: bool
    qat_lr_factor: float
    quant_weight_bits: int  # the int8 models' weights use 2^bits levels per channel (8: plain int8; 4: W4A8)
    kd_weights: Any  # kd.weights, as DistillationModule takes them
    kd_alpha: Any  # kd.alpha, likewise
    seed: int
    optim: Node  # the run's optimiser + scheduler node; the fine-tunes use its optimiser at a scaled lr
    trainer: Node  # the run's Trainer node; the fine-tunes override the epochs and switch off validation


def finetune_settings(cfg: DictConfig) -> FinetuneSettings:
    """The fine-tunes' settings from a composed run config (a missing ``post`` node: the defaults below)."""
    post = cfg.get("post") or {}
    prune = post.get("prune")
    return FinetuneSettings(
        prune=None if prune is None else float(prune),
        prune_finetune_epochs=int(post.get("prune_finetune_epochs", 0)),
        prune_finetune_lr_factor=float(post.get("prune_finetune_lr_factor", 1.0)),
        prune_kind=str(post.get("prune_kind", "unstructured")),
        prune_steps=int(post.get("prune_steps", 1)),
        prune_teacher=bool(post.get("prune_teacher", True)),
        qat_epochs=int(post.get("qat_epochs", 1)),
        qat_teacher=bool(post.get("qat_teacher", True)),
        qat_lr_factor=float(post.get("qat_lr_factor", 1.0)),
        quant_weight_bits=int(post.get("quant_weight_bits", 8)),
        kd_weights=cfg.kd.weights,
        kd_alpha=cfg.kd.alpha,
        seed=int(cfg.seed),
        optim=cfg.optim,
        trainer=cfg.trainer,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_int(value: Any, key: str, least: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"{key} must be an integer >= {least}, got {value!r}")
