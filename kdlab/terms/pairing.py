"""The runtime facts of a teacher–student pair that terms are sized from, and the terms built from them."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from kdlab.errors import ConfigError
from kdlab.instantiate import Node, build
from kdlab.models import embedding_dim, has_distillation_token, stage_infos
from kdlab.terms.base import DistillationTerm, PairSpec


def describe_pair(
    student: nn.Module, teacher: nn.Module | None, datamodule, *, student_name: str, teacher_name: str
) -> PairSpec:
    """What the terms may know of the pair and the data: names, stages, embedding sizes, classes, train size, and
    whether the student has a distillation token (DeiT).
    With no teacher (``teacher=none``) the teacher has no stages and no embedding."""
    return PairSpec(
        student_name=student_name,
        teacher_name=teacher_name,
        student_stages=tuple(stage_infos(student)),
        teacher_stages=tuple(stage_infos(teacher)) if teacher is not None else (),
        student_embedding_dim=embedding_dim(student),
        teacher_embedding_dim=embedding_dim(teacher) if teacher is not None else None,
        num_classes=datamodule.num_classes,
        num_train_samples=datamodule.num_train,
        student_has_dist_token=has_distillation_token(student),
    )


def build_terms(
    nodes: Mapping[str, Node] | None,
    student: nn.Module,
    teacher: nn.Module | None,
    datamodule,
    *,
    student_name: str,
    teacher_name: str,
) -> dict[str, DistillationTerm]:
    """Finish each ``_partial_`` term node (``kd.terms``) with the runtime facts of the pair (channels, stages, data
    size), and ask the data for class-paired training batches when a term needs them (CS-KD)."""
    pair = describe_pair(student, teacher, datamodule, student_name=student_name, teacher_name=teacher_name)
    terms = {name: build(node, pair=pair) for name, node in (nodes or {}).items()}
    needing = sorted(name for name, term in terms.items() if term.needs_teacher)
    if teacher is None and needing:
        raise ConfigError(
            f"teacher=none: kd term(s) {needing} need a teacher; teacher=none works with kd=none and teacher-free "
            "methods (kd=tfkd, kd=cskd)"
        )
    pairing = sorted(name for name, term in terms.items() if term.needs_class_pairs)
    if pairing:
        if not hasattr(datamodule, "pair_same_class"):
            raise ConfigError(
                f"kd term(s) {pairing} need class-paired batches, which only in-memory data serves; "
                f"{type(datamodule).__name__} does not"
            )
        datamodule.pair_same_class()
    return terms
