"""One row per model (teacher, student, baseline, compressed students) and the ratios that say what KD bought."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from rich.table import Table
from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.measure.accuracy import accuracy_from_logits, predict_logits
from kdlab.measure.latency import measure_latency
from kdlab.measure.macs import count_macs
from kdlab.measure.params import count_nonzero_parameters, count_parameters
from kdlab.measure.quantized import is_quantized
from kdlab.measure.size import size_on_disk

LARGE_BATCH = 32


@dataclass(frozen=True)
class ModelReport:
    """Measurements of one model; params and MACs are None for int8 models (see ``is_quantized``).

    The ratio fields stay None until ``add_ratios`` compares the row with a reference row: ``retention`` is
    top-1 / reference top-1, the others say how many times smaller or faster than the reference the row is.
    """

    role: str
    name: str
    top1: float
    top5: float | None
    params: int | None
    nonzero_params: int | None
    macs: int | None
    size_bytes: int
    latency_b1_ms: float
    latency_b32_ms: float
    threads: int
    retention: float | None = None
    params_reduction: float | None = None
    size_reduction: float | None = None
    speedup_b1: float | None = None
    speedup_b32: float | None = None


def compression_report(
    models: Mapping[str, tuple[nn.Module, str]],
    batches: Iterable[Mapping[str, Tensor]],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    threads: int | None = None,
    warmup: int = 5,
    repeats: int = 20,
    logits: Mapping[str, tuple[Tensor, Tensor]] | None = None,
) -> list[ModelReport]:
    """Measure every ``role -> (model, name)`` on the same batches, input shape and thread count.

    ``logits`` maps a role to its ``(logits, targets)`` on these batches when the caller already ran the model
    (``predict_logits``); those roles are not run again for their accuracy.

    ``batches`` is iterated once per model, so it must be re-iterable (a list or a DataLoader, not a generator).
    ``input_shape`` is one sample without the batch dimension; latency is timed at batch 1 and batch 32.
    """
    if iter(batches) is batches:
        raise ConfigError("compression_report iterates the batches once per model: pass a list or a DataLoader")
    return [
        _measure(
            role, model, name, batches, input_shape, num_classes, threads, warmup, repeats, (logits or {}).get(role)
        )
        for role, (model, name) in models.items()
    ]


def _measure(
    role: str,
    model: nn.Module,
    name: str,
    batches: Iterable[Mapping[str, Tensor]],
    input_shape: Sequence[int],
    num_classes: int,
    threads: int | None,
    warmup: int,
    repeats: int,
    known: tuple[Tensor, Tensor] | None = None,
) -> ModelReport:
    accuracy = accuracy_from_logits(*(known or predict_logits(model, batches)), num_classes)
    b1, large = (
        measure_latency(model, input_shape, batch, warmup=warmup, repeats=repeats, threads=threads)
        for batch in (1, LARGE_BATCH)
    )
    countable = not is_quantized(model)
    return ModelReport(
        role=role,
        name=name,
        top1=accuracy["top1"],
        top5=accuracy["top5"],
        params=count_parameters(model) if countable else None,
        nonzero_params=count_nonzero_parameters(model) if countable else None,
        macs=count_macs(model, input_shape) if countable else None,
        size_bytes=size_on_disk(model),
        latency_b1_ms=b1.median_ms,
        latency_b32_ms=large.median_ms,
        threads=b1.threads,
    )


def add_ratios(reports: Sequence[ModelReport], reference_role: str = "teacher") -> list[ModelReport]:
    """Copies of ``reports`` with retention, reduction and speed-up against the ``reference_role`` row."""
    reference = next((r for r in reports if r.role == reference_role), None)
    if reference is None:
        roles = ", ".join(r.role for r in reports)
        raise ConfigError(f"reference role '{reference_role}' is not in the report (roles: {roles})")
    return [
        replace(
            row,
            retention=_ratio(row.top1, reference.top1),
            params_reduction=_ratio(reference.params, row.params),
            size_reduction=_ratio(reference.size_bytes, row.size_bytes),
            speedup_b1=_ratio(reference.latency_b1_ms, row.latency_b1_ms),
            speedup_b32=_ratio(reference.latency_b32_ms, row.latency_b32_ms),
        )
        for row in reports
    ]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def report_to_dict(reports: Iterable[ModelReport]) -> dict[str, str | int | float]:
    """Flat ``"<role>/<field>"`` keys for JSON and W&B summaries; fields without a value are left out."""
    return {
        f"{row.role}/{key}": value
        for row in reports
        for key, value in asdict(row).items()
        if key != "role" and value is not None
    }


def render_table(reports: Sequence[ModelReport]) -> Table:
    """A terminal table of the report; the thread count goes in the caption, since latencies depend on it."""
    threads = sorted({r.threads for r in reports})
    table = Table(
        title="compression report",
        caption=f"latency: median ms per batch on {'/'.join(map(str, threads))} CPU thread(s); MACs per sample",
    )
    for header in ("role", "model", "top-1 %", "top-5 %", "retention %", "params", "non-zero", "MACs", "size MB"):
        table.add_column(header, justify="left" if header in ("role", "model") else "right")
    for header in ("latency ms b1 / b32", "size ×", "speed-up × b1 / b32"):
        table.add_column(header, justify="right")
    for r in reports:
        table.add_row(*_cells(r))
    return table


def _cells(r: ModelReport) -> Iterator[str]:
    yield from (r.role, r.name, _percent(r.top1), _percent(r.top5), _percent(r.retention))
    yield from (_count(r.params), _count(r.nonzero_params), _count(r.macs), f"{r.size_bytes / 1e6:.2f}")
    yield f"{r.latency_b1_ms:.2f} / {r.latency_b32_ms:.2f}"
    yield _times(r.size_reduction)
    yield f"{_times(r.speedup_b1)} / {_times(r.speedup_b32)}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def _count(value: int | None) -> str:
    if value is None:
        return "—"
    scale, unit = next(((s, u) for s, u in ((1e9, "G"), (1e6, "M"), (1e3, "K")) if value >= s), (1, ""))
    return f"{value / scale:.2f}{unit}"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
