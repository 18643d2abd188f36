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


def forward_with_taps(
    model: nn.Module, x: Tensor, stages: Sequence[int] = (), need_embedding: bool = False
) -> ModelOutputs:
    """Run ``model`` once and return its logits plus the requested stage maps and pooled embedding.

    ``stages`` are already-resolved ``feature_info`` indices; they are returned under those indices.
    """
    if not stages and not need_embedding:
        return ModelOutputs(logits=model(x))
    if stages:
        order = sorted(set(stages))  # timm returns taps in forward order
        final, taps = model.forward_intermediates(x, indices=order)
        features = dict(zip(order, taps, strict=True))
    else:
        final, features = model.forward_features(x), {}
    if need_embedding:
        embedding = model.forward_head(final, pre_logits=True)
        logits = model.get_classifier()(embedding)
    else:
        embedding, logits = None, model.forward_head(final)
    return ModelOutputs(logits=logits, features=features, embedding=embedding)
