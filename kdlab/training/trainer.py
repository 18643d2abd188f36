"""Building Lightning trainers from the ``trainer`` config, for the main fit and for the quiet helper phases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from kdlab.instantiate import Node, build
from kdlab.training.speed import resolve_precision


def make_trainer(trainer_cfg: Node, root: Path, quiet: bool = False, **overrides: Any) -> pl.Trainer:
    """Instantiate the configured Trainer; ``quiet`` turns off checkpoints for helper phases, and logging unless a
    ``logger`` is given (the teacher's own W&B run)."""
    kwargs = OmegaConf.to_container(trainer_cfg, resolve=True)
    kwargs.update({k: v for k, v in overrides.items() if k not in ("logger", "callbacks", "plugins")})
    if "precision" in kwargs:
        kwargs["precision"] = resolve_precision(kwargs["precision"], str(kwargs.get("accelerator", "auto")))
    extra: dict[str, Any] = {"default_root_dir": str(root)}
    if quiet:
        extra.update(logger=overrides.get("logger") or False, enable_checkpointing=False)
        if _is_distributed(kwargs):  # helper phases (teacher training and testing) run in one process on every rank
            extra.update(strategy="auto", devices=1, num_nodes=1, sync_batchnorm=False)
    else:
        extra.update(logger=overrides.get("logger", False), callbacks=overrides.get("callbacks", []))
        extra.update({"plugins": overrides["plugins"]} if "plugins" in overrides else {})
    return build(OmegaConf.create(kwargs), **extra)


def leave_process_group() -> None:
    """End the DDP phase on every rank once training and testing are over.

    Rank 0 goes on alone (report, best-checkpoint test, export); torchmetrics would otherwise try to sync each of
    its metrics with ranks that have already returned, and fail on the closed connection.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _is_distributed(kwargs: dict[str, Any]) -> bool:
    return kwargs.get("strategy", "auto") != "auto" or kwargs.get("devices", 1) != 1 or kwargs.get("num_nodes", 1) != 1
