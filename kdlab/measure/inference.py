"""Running a model for a measurement without leaving a trace on it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the measurement, then every submodule's own flag back, so mixed train/eval trees survive."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


def model_device(model: nn.Module) -> torch.device:
    """Where the model's tensors live; CPU when it has none (int8 models keep their weights in packed objects)."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")
