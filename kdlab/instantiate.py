"""The one wrapper around Hydra's ``instantiate``: a :class:`ConfigError` raised inside a target reaches the user
as itself, not buried in Hydra's ``InstantiationException``."""

from __future__ import annotations

from typing import Any

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
    """Optimizer and scheduler factories (``_partial_`` nodes): the module hands them its parameters at fit time."""
    scheduler = optim.get("scheduler")
    return {"optimizer": build(optim.optimizer), "scheduler": build(scheduler) if scheduler else None}
