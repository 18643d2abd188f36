"""The one wrapper around Hydra's ``instantiate``: a :class:`ConfigError` raised inside a target reaches the user
as itself, not buried in Hydra's ``InstantiationException``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from kdlab.errors import ConfigError

Node = DictConfig
"""A ``_target_`` (or ``_partial_``) node: what to build, such as a model, an optimiser, a Trainer or a logger.

Functions below the run layer take nodes like this one and typed settings, never the run's whole composed config
(``tests/test_architecture.py`` checks that no parameter there is annotated ``DictConfig``)."""


def build(node: Node, *args: Any, **kwargs: Any) -> Any:
    """``instantiate(node)``; a ``_partial_`` node is then called with ``args``/``kwargs`` (the runtime facts)."""
    try:
        made = instantiate(node)
        return made(*args, **kwargs) if node.get("_partial_", False) and (args or kwargs) else made
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise ConfigError(f"cannot build {node.get('_target_')}: {exc}") from exc


def build_optim(optim: Node) -> dict[str, Any]:
    """Optimizer and scheduler factories (``_partial_`` nodes): the module hands them its parameters at fit time.

    ``optim.warmup_epochs = w`` scales the first ``w`` epochs' learning rate by (k + 1) / (w + 1), on top of the
    scheduler (chained, so a cosine still decays over the whole run): a soft-target loss at a high temperature can
    then train at the plain-CE learning rate without diverging in its first epoch (Goyal et al. 2017's warm-up)."""
    node = optim.get("scheduler")
    scheduler = build(node) if node else None
    warmup = optim.get("warmup_epochs", 0)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"optim.warmup_epochs must be an integer ≥ 0, got {warmup!r}")
    if warmup:
        scheduler = partial(_warmed_up, scheduler=scheduler, epochs=warmup)
    return {"optimizer": build(optim.optimizer), "scheduler": scheduler}


def _warmed_up(
    optimizer: torch.optim.Optimizer, scheduler: Callable[..., Any] | None, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A linear warm-up chained with the configured scheduler: both factors multiply the base learning rate."""
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (epochs + 1), total_iters=epochs)
    if scheduler is None:
        return ramp
    return torch.optim.lr_scheduler.ChainedScheduler([ramp, scheduler(optimizer)], optimizer=optimizer)
