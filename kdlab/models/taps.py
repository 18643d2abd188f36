"""One forward pass that returns logits, chosen stage outputs and the pooled embedding, for any timm-style model.

timm models expose ``forward_intermediates`` / ``forward_head`` / ``feature_info``; a custom ``nn.Module`` that
implements the same three gets every feature method for free, and one that does not still works for logit methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.models.outputs import ModelOutputs


@dataclass(frozen=True)
class StageInfo:
    """Channels and stride of one tappable stage, read from ``feature_info`` without running the model."""

    index: int
    channels: int
    reduction: int
    module: str


def stage_infos(model: nn.Module) -> list[StageInfo]:
    """The stages a model exposes, from timm's ``feature_info`` (empty when the model has none)."""
    info = getattr(model, "feature_info", None)
    if not info or not hasattr(model, "forward_intermediates"):
        return []
    entries = info.info if hasattr(info, "info") else info
    return [
        StageInfo(i, int(e["num_chs"]), int(e["reduction"]), str(e.get("module", ""))) for i, e in enumerate(entries)
    ]


def resolve_stages(infos: Sequence[StageInfo], stages: Sequence[int], role: str, model_name: str) -> list[int]:
    """Map config stage indices (negative allowed) to ``feature_info`` indices, or fail with a clear message."""
    if not infos:
        raise ConfigError(
            f"{role} model {model_name} exposes no feature stages (no timm feature_info / forward_intermediates): "
            "feature distillation needs them; use a logit method (kd=response) or a timm model"
        )
    n = len(infos)
    resolved = []
    for s in stages:
        if not -n <= int(s) < n:
            raise ConfigError(
                f"stage {s} does not exist in {role} model {model_name}: it has {n} stages, valid indices are "
                f"0..{n - 1} or -{n}..-1 ({', '.join(i.module for i in infos)})"
            )
        resolved.append(int(s) % n)
    return resolved


def embedding_dim(model: nn.Module) -> int | None:
    """Width of the pooled vector the classifier reads, or None when the model cannot say."""
    get_classifier = getattr(model, "get_classifier", None)
    if get_classifier is None:
        return None
    head = get_classifier()
    return getattr(head, "in_features", None)


def has_distillation_token(model: nn.Module) -> bool:
    """Whether ``model`` carries DeiT's distillation token and its own head (timm's ``VisionTransformerDistilled``)."""
    return isinstance(getattr(model, "dist_token", None), nn.Parameter) and hasattr(model, "head_dist")


def token_head_logits(model: nn.Module, final: Tensor) -> tuple[Tensor, Tensor]:
    """The class-token head and the distillation-token head read apart, whatever the train/eval mode.

    timm's ``VisionTransformerDistilled.forward_head`` returns this pair only in training after
    ``set_distilled_training(True)``, and their mean otherwise; reading the heads here leaves the model's state alone.
    """
    head_drop = getattr(model, "head_drop", nn.Identity())
    return model.head(head_drop(final[:, 0])), model.head_dist(head_drop(final[:, 1]))


def forward_with_taps(
    model: nn.Module,
    x: Tensor,
    stages: Sequence[int] = (),
    need_embedding: bool = False,
    need_dist_token: bool = False,
) -> ModelOutputs:
    """Run ``model`` once and return its logits plus the requested stage maps and pooled embedding.

    ``stages`` are already-resolved ``feature_info`` indices; they are returned under those indices.
    ``need_dist_token``: return the class head as ``logits`` and the distillation-token head as ``dist_logits``
    (DeiT), instead of the model's own output (the mean of the two heads).
    """
    if need_dist_token and not has_distillation_token(model):
        raise ConfigError(f"{type(model).__name__} has no distillation token (DeiT's dist_token and head_dist)")
    if not stages and not need_embedding and not need_dist_token:
        return ModelOutputs(logits=model(x))
    if stages:
        order = sorted(set(stages))  # timm returns taps in forward order
        final, taps = model.forward_intermediates(x, indices=order)
        features = dict(zip(order, taps, strict=True))
    else:
        final, features = model.forward_features(x), {}
    if need_dist_token:
        logits, dist_logits = token_head_logits(model, final)
        embedding = model.forward_head(final, pre_logits=True) if need_embedding else None
        return ModelOutputs(logits=logits, features=features, embedding=embedding, dist_logits=dist_logits)
    if need_embedding:
        embedding = model.forward_head(final, pre_logits=True)
        logits = model.get_classifier()(embedding)
    else:
        embedding, logits = None, model.forward_head(final)
    return ModelOutputs(logits=logits, features=features, embedding=embedding)
