"""Checkpoint size: what shipping the weights costs."""

from __future__ import annotations

import io

import torch
from torch import nn


def size_on_disk(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``; int8 models serialise their packed weights, so it covers them."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()
