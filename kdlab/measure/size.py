"""Checkpoint size: what shipping the weights costs."""

from __future__ import annotations

import io

import torch
from torch import nn


def size_on_disk(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``; int8 models serialise their packed weights, so it covers them.

    oneDNN-packed tensors (PT2E int8 graphs) cannot be serialised as they are: they are saved as their dense int8.
    """
    state = {key: value.to_dense() if _is_mkldnn(value) else value for key, value in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def _is_mkldnn(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.is_mkldnn
