"""What distillation bought: accuracy, size, MACs and latency of teacher, student and compressed students."""

from kdlab.evaluation.accuracy import evaluate_accuracy
from kdlab.evaluation.latency import LatencyResult, measure_latency
from kdlab.evaluation.macs import count_macs
from kdlab.evaluation.params import count_nonzero_parameters, count_parameters
from kdlab.evaluation.quantized import is_quantized
from kdlab.evaluation.report import ModelReport, add_ratios, compression_report, render_table, report_to_dict
from kdlab.evaluation.size import size_on_disk

__all__ = [
    "LatencyResult",
    "ModelReport",
    "add_ratios",
    "compression_report",
    "count_macs",
    "count_nonzero_parameters",
    "count_parameters",
    "evaluate_accuracy",
    "is_quantized",
    "measure_latency",
    "render_table",
    "report_to_dict",
    "size_on_disk",
]
