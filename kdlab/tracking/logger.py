"""Experiment loggers: W&B offline by default, online once the user has logged in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
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


def sweep_group() -> str | None:
    """The W&B group of a sweep's runs: the W&B sweep id under ``wandb agent``, the sweep dir's name in a multirun."""
    if os.environ.get("WANDB_SWEEP_ID"):
        return f"sweep-{os.environ['WANDB_SWEEP_ID']}"
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return Path(HydraConfig.get().sweep.dir).name
    return None


def wandb_logger(
    save_dir: str, project: str = "kdlab", mode: str = "auto", group: str | None = None, **kwargs: Any
) -> WandbLogger:
    """A WandbLogger whose mode goes to ``wandb.init`` (not ``offline=True``, which sets a process-wide env var).

    ``group`` null: the runs of one sweep share a group (:func:`sweep_group`), so W&B shows them side by side.
    """
    group = group or sweep_group()
    logger = WandbLogger(save_dir=save_dir, project=project, group=group, mode=resolve_wandb_mode(mode), **kwargs)
    if logger._wandb_init.get("anonymous") is None:  # Lightning 2.6 always passes anonymous=None, and wandb 0.31 warns
        logger._wandb_init.pop("anonymous", None)  # "The anonymous setting has no effect" on every run: leave it unset
    return logger


def finish_wandb(exit_code: int | None = None) -> None:
    """End the live W&B run so the next job of a multirun starts its own instead of merging into this one."""
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)


def is_wandb(logger_cfg: Any) -> bool:
    """True when the ``logger`` config node builds kdlab's W&B logger."""
    targets = ("kdlab.tracking.wandb_logger", f"{__name__}.wandb_logger")
    return bool(logger_cfg) and str(logger_cfg.get("_target_")) in targets


SWEEP_RUN_VARIABLES = ("WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RUN_ID")


@contextmanager
def outside_sweep() -> Iterator[None]:
    """Run a side run (the teacher's training) as a run of its own, not as the sweep's: ``wandb agent`` sets the run
    id and the sweep's parameters for the one job it launched, the student's.

    wandb reads those variables once, into a process-wide singleton; it is torn down before the side run (rebuilt
    without them) and after it (rebuilt with them for the sweep's own run). Wrap the side run from init to finish.
    """
    saved = {name: os.environ.pop(name) for name in SWEEP_RUN_VARIABLES if name in os.environ}
    if not saved:
        yield
        return
    import wandb

    wandb.teardown()
    try:
        yield
    finally:
        wandb.teardown()
        os.environ.update(saved)
