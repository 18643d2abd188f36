"""Response terms: distil from the teacher's logits."""

from __future__ import annotations

from torch import Tensor

from kdlab.errors import ConfigError
from kdlab.losses import kd_kl
from kdlab.models.outputs import ModelOutputs
from kdlab.terms.base import Batch, DistillationTerm, PairSpec


def check_temperature(temperature: float) -> float:
    if not float(temperature) > 0:
        raise ConfigError(f"kd.temperature must be > 0, got {temperature}")
    return float(temperature)


class SoftTargets(DistillationTerm):
    """Hinton et al. 2015 soft targets (arXiv:1503.02531): ``loss_kd = T²·KL(p_t^T ‖ p_s^T)``."""

    loss_names = ("kd",)

    def __init__(self, pair: PairSpec, temperature: float = 4.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        return {"kd": kd_kl(student.logits, teacher.logits, self.temperature)}
