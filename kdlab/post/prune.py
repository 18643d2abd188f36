"""Global magnitude pruning of conv and linear weights, in two steps so a fine-tune can run in between.

``apply_pruning`` attaches masks (``weight = weight_orig · weight_mask``, recomputed before every forward), so a
fine-tune that keeps distilling cannot revive pruned weights; ``make_pruning_permanent`` then bakes the zeros in.
Unstructured zeros are stored densely: they lower the non-zero parameter count, not checkpoint size or latency.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import prune

from kdlab.errors import ConfigError

PRUNABLE = (nn.Conv2d, nn.Linear)


def global_magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """Zero the ``amount`` fraction of smallest-|w| conv/linear weights, ranked across all layers, in place."""
    return make_pruning_permanent(apply_pruning(model, amount))


def apply_pruning(model: nn.Module, amount: float) -> nn.Module:
    """Attach global L1 (magnitude) masks over every Conv2d/Linear weight, in place; biases are left dense."""
    if not 0.0 < amount < 1.0:
        raise ConfigError(f"pruning amount must be a fraction strictly between 0 and 1, got {amount}")
    targets = _prunable(model)
    if not targets:
        raise ConfigError(f"{type(model).__name__} has no Conv2d or Linear layer to prune")
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return model


def make_pruning_permanent(model: nn.Module) -> nn.Module:
    """Fold every attached mask into its weight and drop the mask, in place; a no-op for layers without one."""
    for module, name in _prunable(model):
        if prune.is_pruned(module) and hasattr(module, f"{name}_orig"):
            prune.remove(module, name)
    return model


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of zeros over all Conv2d/Linear weights (the prunable ones), through any attached masks."""
    weights = [getattr(module, name) for module, name in _prunable(model)]
    total = sum(w.numel() for w in weights)
    if total == 0:
        raise ConfigError(f"{type(model).__name__} has no Conv2d or Linear weights to measure")
    return sum(int((w == 0).sum()) for w in weights) / total


def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(module, "weight") for module in model.modules() if isinstance(module, PRUNABLE)]
