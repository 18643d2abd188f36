"""Checkpoint size: what shipping the weights costs."""

from __future__ import annotations

import io

import torch
from torch import nn

SHIPPED_BYTES = "kdlab_shipped_bytes"  # set on a lowered int8 graph: the size of the int8 model it was lowered from


def size_on_disk(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``; int8 models serialise their packed weights, so it covers them.

    A PT2E int8 model lowered to oneDNN kernels holds packed, kernel-specific copies of its weights (MobileNetV3's
    came to 8.9 MB against 6.2 MB in fp32), so its size is the one recorded before lowering: the tensors the
    converted int8 graph reads (:func:`graph_tensor_bytes`), what one ships.
    """
    shipped = getattr(model, SHIPPED_BYTES, None)
    if shipped is not None:
        return int(shipped)
    state = {key: value.to_dense() if _is_mkldnn(value) else value for key, value in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def _is_mkldnn(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.is_mkldnn


def graph_tensors(graph_module: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors an FX graph reads (its ``get_attr`` nodes) by name, dense."""
    tensors = {}
    for node in graph_module.graph.nodes:
        if node.op == "get_attr":
            value = graph_module
            for part in str(node.target).split("."):
                value = getattr(value, part)
            if isinstance(value, torch.Tensor):
                tensors[str(node.target)] = value.to_dense() if _is_mkldnn(value) else value
    return tensors


def graph_tensor_bytes(graph_module: nn.Module) -> int:
    """Bytes of ``torch.save`` of the tensors an FX graph reads (:func:`graph_tensors`)."""
    buffer = io.BytesIO()
    torch.save(graph_tensors(graph_module), buffer)
    return buffer.tell()
