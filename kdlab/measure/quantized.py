"""Telling an int8 model apart: PyTorch's counters cannot see inside its packed kernels."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def is_quantized(model: nn.Module) -> bool:
    """True when any state entry is a quantized tensor, a packed (non-tensor) weight, as torch.ao int8 layers store, or
    an int8 weight (PT2E graphs fold weights to plain or oneDNN-packed int8 tensors).

    ``parameters()`` and ``FlopCounterMode`` miss those weights and kernels, so counts taken on such a model would be
    silently low; take them on the float model instead.
    """
    return any(
        not isinstance(value, Tensor) or value.is_quantized or value.dtype == torch.int8
        for value in model.state_dict().values()
    )


def refuse_quantized(model: nn.Module, what: str) -> None:
    """Raise instead of returning a count that quietly leaves out the int8 layers."""
    if is_quantized(model):
        raise ValueError(f"cannot count {what} of an int8 model (its weights are packed): count the float model")
