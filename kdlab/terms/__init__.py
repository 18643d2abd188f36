"""Distillation terms: small modules that turn student/teacher outputs into named, unweighted losses."""

from kdlab.terms.base import Batch, DistillationTerm, PairSpec
from kdlab.terms.feature import NST, AttentionTransfer, Connector, FitNetHints, PatientKD
from kdlab.terms.relation import CRD, PKT, RKD, CorrelationCongruence, SimilarityPreserving
from kdlab.terms.response import DIST, DKD, CurriculumTemperatureKD, SoftTargets, TeacherFreeKD

__all__ = [
    "CRD",
    "DIST",
    "DKD",
    "NST",
    "PKT",
    "RKD",
    "AttentionTransfer",
    "Batch",
    "Connector",
    "CorrelationCongruence",
    "CurriculumTemperatureKD",
    "DistillationTerm",
    "FitNetHints",
    "PairSpec",
    "PatientKD",
    "SimilarityPreserving",
    "SoftTargets",
    "TeacherFreeKD",
]
