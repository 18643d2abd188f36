"""Structured (channel) pruning: whole channels removed, so parameters, MACs, size on disk and latency all drop.

Removing a channel touches every layer that reads or writes it — the next conv, the BatchNorm, a residual sum, a
depthwise conv's groups, a squeeze-excite gate. ``torch-pruning`` (Fang et al., "DepGraph: Towards Any Structural
Pruning", CVPR 2023, arXiv:2301.12900) builds that dependency graph for any traced model, timm's included; kdlab only
chooses the importance (the L2 norm of each channel group's weights, as Li et al., "Pruning Filters for Efficient
ConvNets", arXiv:1608.08710) and keeps the classifier whole.

A pruned model no longer matches its architecture's constructor. :func:`pruned_structure` records, as plain ints,
what changed (channel counts, features, groups), so the checkpoint stays a ``weights_only`` state dict and
:func:`restore_structure` reshapes a freshly built model before loading it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from kdlab.errors import ConfigError

SHAPE_ATTRIBUTES = {
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm2d: ("num_features",),
    nn.LayerNorm: ("normalized_shape",),
    nn.GroupNorm: ("num_channels", "num_groups"),
}


def check_channel_pruning_available() -> None:
    if importlib.util.find_spec("torch_pruning") is None:
        raise ConfigError("post.prune_kind=channel needs the 'torch-pruning' package: pip install 'kdlab[prune]'")


def _classifiers(model: nn.Module) -> list[nn.Module]:
    """The layers whose outputs are the class logits: never pruned (the class count is fixed)."""
    get_classifier = getattr(model, "get_classifier", None)
    head = get_classifier() if callable(get_classifier) else None
    if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
        return [head]
    last = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    return last[-1:]


class ChannelPruner:
    """Removes ``amount`` of the channels of every prunable layer group (uniformly, layer by layer) in ``steps``
    equal steps, so a fine-tune can heal the network between steps (iterative pruning), in place."""

    def __init__(self, model: nn.Module, example: Tensor, amount: float, steps: int = 1) -> None:
        check_channel_pruning_available()
        import torch_pruning as tp  # an optional extra: imported only when channel pruning is asked for

        if not 0.0 < amount < 1.0:
            raise ConfigError(f"post.prune must be a fraction strictly between 0 and 1, got {amount}")
        if steps < 1:
            raise ConfigError(f"post.prune_steps must be an integer >= 1, got {steps}")
        self.model, self.steps, self.done = model, steps, 0
        self._pruner = tp.pruner.MetaPruner(
            model,
            example,
            importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=amount,
            iterative_steps=steps,
            ignored_layers=_classifiers(model),
        )

    def step(self) -> None:
        """Prune the next share of channels (``amount / steps`` of each group's original count)."""
        if self.done >= self.steps:
            raise RuntimeError(f"all {self.steps} pruning steps are done")
        was_training = self.model.training
        self.model.eval()  # tracing must not update BatchNorm's running statistics
        with torch.no_grad():
            self._pruner.step()
        self.model.train(was_training)
        self.done += 1


def channel_prune(model: nn.Module, example: Tensor, amount: float) -> nn.Module:
    """``model`` with ``amount`` of each prunable group's channels removed in one step, in place."""
    ChannelPruner(model, example, amount).step()
    return model


def _shaped_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module, tuple[str, ...]]]:
    for name, module in model.named_modules():
        for kind, attributes in SHAPE_ATTRIBUTES.items():
            if isinstance(module, kind):
                yield name, module, attributes
                break


def pruned_structure(model: nn.Module) -> dict[str, dict[str, int | list[int]]]:
    """Every conv/linear/norm layer's shape attributes (plain ints), to rebuild the pruned shapes on load."""
    structure = {}
    for name, module, attributes in _shaped_modules(model):
        values = {a: getattr(module, a) for a in attributes}
        structure[name] = {a: list(v) if isinstance(v, tuple) else int(v) for a, v in values.items()}
    return structure


def restore_structure(model: nn.Module, structure: dict, state_dict: dict[str, Tensor]) -> nn.Module:
    """Reshape a freshly built, unpruned ``model`` to ``structure`` and the tensor shapes in ``state_dict``, so
    ``load_state_dict`` can then fill it; in place. Unknown layer names mean another architecture: an error."""
    modules = dict(model.named_modules())
    unknown = sorted(set(structure) - set(modules))
    if unknown:
        raise ConfigError(f"pruned checkpoint has layers this model lacks ({', '.join(unknown[:3])} …)")
    for name, attributes in structure.items():
        for attribute, value in attributes.items():
            setattr(modules[name], attribute, tuple(value) if isinstance(value, list) else value)
    for key, tensor in state_dict.items():
        owner_name, _, leaf = key.rpartition(".")
        owner = modules.get(owner_name)
        current = getattr(owner, leaf, None) if owner is not None else None
        if isinstance(current, Tensor) and current.shape != tensor.shape:
            resized = torch.empty(tensor.shape, dtype=current.dtype)
            if isinstance(current, nn.Parameter):
                setattr(owner, leaf, nn.Parameter(resized, requires_grad=current.requires_grad))
            else:
                owner.register_buffer(leaf, resized)
    return model
