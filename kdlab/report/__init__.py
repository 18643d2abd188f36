"""One run's compression report: teacher, student, baseline and compressed students measured side by side.

``run_report`` builds it at the end of a run (and ``evaluate`` rebuilds it for a finished run); ``table`` holds
the rows and their ratios, ``plots`` draws accuracy against size and latency, ``baseline`` finds the sweep's
``kd=none`` job.
"""

from kdlab.report.run_report import build_report, finish_report, is_report_key
from kdlab.report.table import ModelReport, add_ratios, compression_report, render_table, report_to_dict

__all__ = [
    "ModelReport",
    "add_ratios",
    "build_report",
    "compression_report",
    "finish_report",
    "is_report_key",
    "render_table",
    "report_to_dict",
]
