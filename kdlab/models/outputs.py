"""What one forward pass of a model hands to the distillation terms."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class ModelOutputs:
    """Logits plus whatever taps the terms asked for.

    ``features`` maps a stage index (as given in the config, e.g. ``-1``) to its feature map; ``embedding`` is the
    pooled penultimate vector that the classifier reads. ``dist_logits`` is the distillation-token head of a DeiT
    student (Touvron et al. 2021, arXiv:2012.12877), when a term asks for it; ``logits`` is then the class head alone.
    """

    logits: Tensor
    features: dict[int, Tensor] = field(default_factory=dict)
    embedding: Tensor | None = None
    dist_logits: Tensor | None = None
