"""Choosing a student by measurement (``python -m kdlab.students``, ``kdlab-students``): hardware-aware student search.

A student is only worth distilling if it is fast *on the device it will run on, at the data's resolution*: MACs do
not say that (MobileNetV3's many small depthwise and SE layers cost more per call at 32 px than ResNet-18's few
convolutions). ``search`` times every candidate with the compression report's own measuring code
(``kdlab.measure``), drops those over the latency / parameter budget and ranks the rest; ``outputs`` writes the
table and the latency-vs-MACs plot; ``distil`` runs a kdlab multirun over the fastest N and draws accuracy against
latency with its Pareto front.
"""

from kdlab.students.distil import DistilledStudent, best_choice, pareto_front
from kdlab.students.search import Budget, Candidate, SearchResult, measure_candidate, rank_within_budget

__all__ = [
    "Budget",
    "Candidate",
    "DistilledStudent",
    "SearchResult",
    "best_choice",
    "measure_candidate",
    "pareto_front",
    "rank_within_budget",
]
