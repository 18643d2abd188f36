"""Numerical faults: stop at the first non-finite loss and say which loss, which term and which step.

The check is ``torch.isfinite(total)`` once per training step. On CPU that costs nothing; on a GPU it is one host
sync per step (a few microseconds against a step's milliseconds), the price of naming the exact step that went
bad. The per-loss scan runs only after the total has gone bad.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from kdlab.errors import ConfigError


class NonFiniteLossError(ConfigError):
    """Training produced NaN/Inf. Shown like a config error (one line, exit 2): the fix is a config value."""


def first_non_finite(tensors: Mapping[str, Tensor]) -> str | None:
    """Name of the first floating-point tensor holding NaN or Inf, else ``None``."""
    for name, value in tensors.items():
        if torch.is_floating_point(value) and not bool(torch.isfinite(value).all()):
            return name
    return None


def check_finite_loss(
    losses: Mapping[str, Tensor], total: Tensor, step: int, terms: Mapping[str, nn.Module] | None = None
) -> None:
    """Raise :class:`NonFiniteLossError` naming each non-finite loss (``loss_kd`` …), its term and the step."""
    if bool(torch.isfinite(total)):
        return
    owner = {loss: term for term, module in (terms or {}).items() for loss in getattr(module, "loss_names", ())}
    bad = [
        f"loss_{name}={value.item():g}" + (f" (term {owner[name]})" if name in owner else "")
        for name, value in losses.items()
        if not bool(torch.isfinite(value).all())
    ]
    what = ", ".join(bad) if bad else f"the weighted total ({total.item():g}; every loss is finite, check kd.weights)"
    raise NonFiniteLossError(
        f"non-finite loss at global step {step}: {what}; training stopped and the last good checkpoint is kept. "
        "Lower optim.optimizer.lr or the weight of that loss, then rerun (it resumes from that checkpoint) "
        "or pass resume=false"
    )
