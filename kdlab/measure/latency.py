"""Wall-clock inference latency, measured the same way for every model in a report."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from kdlab.errors import ConfigError
from kdlab.measure.inference import evaluating, model_device


@dataclass(frozen=True)
class LatencyResult:
    """Per-batch forward time in milliseconds; p10/p90 show how noisy the machine was."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    batch_size: int
    threads: int
    repeats: int


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    warmup: int = 5,
    repeats: int = 20,
    threads: int | None = None,
) -> LatencyResult:
    """Time ``repeats`` forward passes on a batch of ``input_shape`` samples after ``warmup`` untimed ones.

    Runs in eval mode under ``torch.inference_mode`` on the model's device (CUDA is synchronised around each run).
    ``threads`` sets ``torch.set_num_threads`` for the measurement only: CPU latencies compare only at equal threads.
    """
    for label, value, least in (("batch_size", batch_size, 1), ("warmup", warmup, 0), ("repeats", repeats, 1)):
        if value < least:
            raise ConfigError(f"latency {label} must be >= {least}, got {value}")
    device = model_device(model)
    x = torch.randn(batch_size, *input_shape, device=device)
    times = []
    with _num_threads(threads), evaluating(model), torch.inference_mode():
        for step in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            if step >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
        used_threads = torch.get_num_threads()
    p10, median, p90 = torch.tensor(times).quantile(torch.tensor([0.1, 0.5, 0.9])).tolist()
    return LatencyResult(median, p10, p90, batch_size, used_threads, repeats)


@contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    if threads is not None and threads < 1:
        raise ConfigError(f"latency threads must be >= 1, got {threads}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
