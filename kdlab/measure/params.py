"""Parameter counts: what the architecture stores, and what is left after pruning."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kdlab.measure.quantized import refuse_quantized


def count_parameters(model: nn.Module) -> int:
    """All parameter elements; pruned zeros still count, because a dense checkpoint still stores them."""
    refuse_quantized(model, "parameters")
    return sum(p.numel() for p in model.parameters())


def count_nonzero_parameters(model: nn.Module) -> int:
    """Parameter elements that are not zero, read through any pruning mask still attached (``weight_orig`` · mask)."""
    refuse_quantized(model, "parameters")
    return sum(int(torch.count_nonzero(tensor)) for tensor in _effective_parameters(model))


def _effective_parameters(model: nn.Module) -> list[Tensor]:
    tensors = []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            masked = name.removesuffix("_orig")
            tensors.append(getattr(module, masked) if masked != name and hasattr(module, masked) else param)
    return tensors
