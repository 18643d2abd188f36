"""Experiment loggers: W&B offline by default, online once the user has logged in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger

from kdlab.errors import ConfigError

WANDB_MODES = ("auto", "online", "offline", "disabled")


def resolve_wandb_mode(mode: str) -> str:
    """``auto``: ``$WANDB_MODE`` if set, online when an API key is configured, else offline (never asks to log in)."""
    if mode not in WANDB_MODES:
        raise ConfigError(f"logger.mode must be one of {', '.join(WANDB_MODES)}, got '{mode}'")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    logged_in = bool(os.environ.get("WANDB_API_KEY")) or (netrc.is_file() and "wandb" in netrc.read_text())
    return "online" if logged_in else "offline"


def wandb_logger(
    save_dir: str, project: str = "kdlab", mode: str = "auto", group: str | None = None, **kwargs: Any
) -> WandbLogger:
    """A WandbLogger whose mode goes to ``wandb.init`` (not ``offline=True``, which sets a process-wide env var)."""
    return WandbLogger(save_dir=save_dir, project=project, group=group, mode=resolve_wandb_mode(mode), **kwargs)


def finish_wandb() -> None:
    """End the live W&B run so the next job of a multirun starts its own instead of merging into this one."""
    import wandb

    if wandb.run is not None:
        wandb.finish()
