"""What one forward pass of a model hands to the distillation terms."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class ModelOutputs:
    """Logits plus whatever taps the terms asked for.

    ``features`` maps a stage index (as given in the config, e.g. ``-1``) to its feature map; ``embedding`` is the
    pooled penultimate vector that the classifier reads.
    """

    logits: Tensor
    features: dict[int, Tensor] = field(default_factory=dict)
    embedding: Tensor | None = None
