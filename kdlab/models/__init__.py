"""Models: built through timm (or any ``_target_``), tapped through timm's feature API."""

from kdlab.models import cifar  # noqa: F401  (registers the cifar_* models with timm)
from kdlab.models.factory import build_model
from kdlab.models.frozen import FrozenTeacher
from kdlab.models.outputs import ModelOutputs
from kdlab.models.taps import (
    StageInfo,
    embedding_dim,
    forward_with_taps,
    has_distillation_token,
    resolve_stages,
    stage_infos,
)

__all__ = [
    "FrozenTeacher",
    "ModelOutputs",
    "StageInfo",
    "build_model",
    "embedding_dim",
    "forward_with_taps",
    "has_distillation_token",
    "resolve_stages",
    "stage_infos",
]
