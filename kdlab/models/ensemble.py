"""Several trained networks answering as one teacher: their soft targets, averaged."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kdlab.errors import ConfigError

COMBINE = ("mean_probs", "mean_logits")


def normalised_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """Per-member weights scaled to sum to 1; None means equal weights."""
    if weights is None:
        return [1.0 / count] * count
    values = [float(w) for w in weights]
    if len(values) != count:
        raise ConfigError(f"teacher.weights has {len(values)} value(s) for {count} member(s); give one per member")
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ConfigError(f"teacher.weights must be finite, >= 0 and not all 0, got {values}")
    return [w / sum(values) for w in values]


class TeacherEnsemble(nn.Module):
    """Members' outputs combined into one set of logits, so every logit-based term reads an ensemble unchanged.

    ``mean_probs`` is Hinton et al. 2015's canonical form (arXiv:1503.02531, §4: one model distilled from a
    10-model ensemble's averaged predictions): the soft targets are averaged *at the distillation temperature* T,
    ``p̄ = Σ_m w_m softmax(z_m / T)``, and the returned logits are ``T·log p̄``, so ``softmax(logits / T) = p̄``
    exactly — a term at temperature T sees the averaged soft targets, and the argmax is the ensemble's vote at T.
    ``mean_logits`` returns ``Σ_m w_m z_m`` (the common variant; independent of T).
    """

    def __init__(
        self,
        members: Sequence[nn.Module],
        names: Sequence[str],
        combine: str = "mean_probs",
        weights: Sequence[float] | None = None,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if len(members) < 1 or len(members) != len(names):
            raise ConfigError(f"a teacher ensemble needs one name per member and at least one member, got {names}")
        if combine not in COMBINE:
            raise ConfigError(f"teacher.combine must be one of {', '.join(COMBINE)}, got '{combine}'")
        if not float(temperature) > 0:
            raise ConfigError(f"the ensemble temperature (kd.temperature) must be > 0, got {temperature}")
        self.members = nn.ModuleList(members)
        self.names = list(names)
        self.combine = combine
        self.temperature = float(temperature)
        self.register_buffer("weights", torch.tensor(normalised_weights(weights, len(members))), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        logits = torch.stack([member(x) for member in self.members])  # (members, batch, classes)
        weights = self.weights.to(logits.dtype).view(-1, 1, 1)
        if self.combine == "mean_logits":
            return (weights * logits).sum(dim=0)
        log_probs = torch.log_softmax(logits / self.temperature, dim=-1)
        return self.temperature * torch.logsumexp(log_probs + weights.log(), dim=0)
