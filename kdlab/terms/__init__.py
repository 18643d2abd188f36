"""Distillation terms: small modules that turn student/teacher outputs into named, unweighted losses."""

from kdlab.terms.base import Batch, DistillationTerm, PairSpec
from kdlab.terms.feature import NST, AttentionTransfer, Connector, FitNetHints, PatientKD, ReviewKD
from kdlab.terms.relation import CRD, PKT, RKD, CorrelationCongruence, SimilarityPreserving
from kdlab.terms.response import (
    DIST,
    DKD,
    ClassWiseSelfKD,
    CurriculumTemperatureKD,
    DeiTDistillation,
    SoftTargets,
    TeacherFreeKD,
)

__all__ = [
    "CRD",
    "DIST",
    "DKD",
    "NST",
    "PKT",
    "RKD",
    "AttentionTransfer",
    "Batch",
    "ClassWiseSelfKD",
    "Connector",
    "CorrelationCongruence",
    "CurriculumTemperatureKD",
    "DeiTDistillation",
    "DistillationTerm",
    "FitNetHints",
    "PairSpec",
    "PatientKD",
    "ReviewKD",
    "SimilarityPreserving",
    "SoftTargets",
    "TeacherFreeKD",
]
