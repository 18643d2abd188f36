"""Multiply-accumulates of one forward pass, counted by PyTorch's own FLOP counter."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kdlab.measure.inference import evaluating, model_device
from kdlab.measure.quantized import refuse_quantized


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs for one sample of ``input_shape`` (no batch dimension), as FLOPs / 2 from ``FlopCounterMode``.

    Counted: convolutions and matrix products (linear, matmul, bmm, attention), where FLOPs are exactly 2 · MACs.
    Not counted: elementwise ops, normalisation, activations and pooling — cheap next to convs, but not free.
    Pruned zeros still count: dense kernels multiply by them.
    """
    refuse_quantized(model, "MACs")
    x = torch.zeros(1, *input_shape, device=model_device(model))
    counter = FlopCounterMode(display=False)
    with evaluating(model), torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() // 2
