"""The contract every distillation term follows, and the facts it is built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.models.outputs import ModelOutputs
from kdlab.models.taps import StageInfo, resolve_stages

Batch = dict[str, Tensor]


@dataclass(frozen=True)
class PairSpec:
    """What a term may know about the student/teacher pair and the data, without holding either model."""

    student_name: str
    teacher_name: str
    student_stages: tuple[StageInfo, ...]
    teacher_stages: tuple[StageInfo, ...]
    student_embedding_dim: int | None
    teacher_embedding_dim: int | None
    num_classes: int
    num_train_samples: int
    student_has_dist_token: bool = False  # DeiT's distillation token and head (timm VisionTransformerDistilled)

    def resolve(self, stages: Sequence[int]) -> tuple[list[int], list[int]]:
        """Resolve the same config stage list on both models (checks it is non-empty and both have it)."""
        if not stages:
            raise ConfigError("a feature term's `stages` must name at least one stage, got []")
        student = resolve_stages(self.student_stages, stages, "student", self.student_name)
        teacher = resolve_stages(self.teacher_stages, stages, "teacher", self.teacher_name)
        return student, teacher


class DistillationTerm(nn.Module):
    """A distillation signal: reads student and teacher outputs, returns named *unweighted* losses.

    Subclasses set which taps they need (``student_stages``/``teacher_stages`` as resolved ``feature_info`` indices,
    ``needs_embedding``) and the names of the losses they return (``loss_names``). They never run the models and
    never touch train/eval mode; weighting happens in :class:`kdlab.training.module.DistillationModule`, which also sets
    ``current_epoch`` (0-based) before each training step for terms whose definition depends on it (DKD warm-up).
    """

    loss_names: tuple[str, ...] = ()
    needs_teacher = True  # False: self-distillation from the student alone (Tf-KD); the term gets ``teacher=None``
    needs_class_pairs = False  # True: training batches hold anchors then a class-mate of each (CS-KD, kdlab.data.pairs)
    needs_dist_token = False  # True: the student's output carries ``dist_logits``, its distillation-token head (DeiT)

    def __init__(self) -> None:
        super().__init__()
        self.student_stages: list[int] = []
        self.teacher_stages: list[int] = []
        self.needs_embedding = False
        self.current_epoch = 0

    def forward(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError
