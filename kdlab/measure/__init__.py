"""Measuring a model: accuracy, parameters, MACs, size on disk and latency. Knows nothing of runs or reports."""

from kdlab.measure.accuracy import evaluate_accuracy
from kdlab.measure.latency import LatencyResult, measure_latency
from kdlab.measure.macs import count_macs
from kdlab.measure.params import count_nonzero_parameters, count_parameters
from kdlab.measure.quantized import is_quantized
from kdlab.measure.size import size_on_disk

__all__ = [
    "LatencyResult",
    "count_macs",
    "count_nonzero_parameters",
    "count_parameters",
    "evaluate_accuracy",
    "is_quantized",
    "measure_latency",
    "size_on_disk",
]
