"""Measure candidate students and keep the ones within budget, fastest first."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from torch import nn

from kdlab.errors import ConfigError
from kdlab.measure import count_macs, count_parameters, measure_latency, size_on_disk


@dataclass(frozen=True)
class Candidate:
    """One model measured at the data's input shape; latencies are medians in ms per batch."""

    name: str
    params: int
    macs: int
    size_bytes: int
    latency_b1_ms: float
    latency_batch_ms: float
    batch_size: int
    threads: int
    device: str


@dataclass(frozen=True)
class Budget:
    """Upper limits a student must meet; None = no limit. ``latency_ms`` applies to the batch-1 median."""

    latency_ms: float | None = None
    params: int | None = None

    def __post_init__(self) -> None:
        for label, value in (("budget.latency_ms", self.latency_ms), ("budget.params", self.params)):
            if value is not None and not value > 0:
                raise ConfigError(f"{label} must be a positive number or null, got {value}")

    def why_over(self, candidate: Candidate) -> str | None:
        """The first limit the candidate breaks, in words, or None when it fits."""
        if self.latency_ms is not None and candidate.latency_b1_ms > self.latency_ms:
            return f"latency {candidate.latency_b1_ms:.2f} ms > {self.latency_ms:g} ms"
        if self.params is not None and candidate.params > self.params:
            return f"params {candidate.params:,} > {self.params:,}"
        return None


@dataclass(frozen=True)
class SearchResult:
    """``kept``: within budget, fastest at batch 1 first; ``dropped``: (candidate, reason) pairs."""

    kept: list[Candidate]
    dropped: list[tuple[Candidate, str]]


def rank_within_budget(candidates: Iterable[Candidate], budget: Budget) -> SearchResult:
    """Drop candidates over budget; rank the rest by batch-1 latency, then by the larger batch's, then by name."""
    kept, dropped = [], []
    for candidate in candidates:
        reason = budget.why_over(candidate)
        if reason is None:
            kept.append(candidate)
        else:
            dropped.append((candidate, reason))
    kept.sort(key=lambda c: (c.latency_b1_ms, c.latency_batch_ms, c.name))
    return SearchResult(kept, dropped)


def measure_candidate(
    name: str,
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int,
    threads: int | None = None,
    warmup: int = 5,
    repeats: int = 20,
) -> Candidate:
    """Params, MACs, size and latency at batch 1 and ``batch_size``, timed exactly as the compression report times
    its rows (``kdlab.measure.measure_latency``: median after warm-up, on the model's device)."""
    b1, large = (
        measure_latency(model, input_shape, batch, warmup=warmup, repeats=repeats, threads=threads)
        for batch in (1, batch_size)
    )
    device = next(model.parameters()).device
    return Candidate(
        name=name,
        params=count_parameters(model),
        macs=count_macs(model, input_shape),
        size_bytes=size_on_disk(model),
        latency_b1_ms=b1.median_ms,
        latency_batch_ms=large.median_ms,
        batch_size=batch_size,
        threads=b1.threads,
        device=str(device),
    )


def measure_all(names: Sequence[str], measure: Callable[[str], Candidate]) -> list[Candidate]:
    """``measure`` injected, so the budget filter and ranking can be tested on fake timings."""
    return [measure(name) for name in names]
