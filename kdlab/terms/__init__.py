"""Distillation terms: small modules that turn student/teacher outputs into named, unweighted losses."""

from kdlab.terms.base import Batch, DistillationTerm, PairSpec
from kdlab.terms.feature import Connector, FitNetHints
from kdlab.terms.relation import RKD
from kdlab.terms.response import SoftTargets

__all__ = ["RKD", "Batch", "Connector", "DistillationTerm", "FitNetHints", "PairSpec", "SoftTargets"]
