"""Response terms: distil from the teacher's logits."""

from __future__ import annotations

from torch import Tensor

from kdlab.errors import ConfigError
from kdlab.losses import dist, dkd_nckd, dkd_tckd, kd_kl
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


class DKD(DistillationTerm):
    """Decoupled KD (Zhao et al. 2022, arXiv:2203.08679): returns ``dkd_tckd`` and ``dkd_nckd``, each × warm-up.

    DKD's α and β are the config weights of the two losses. The warm-up ``min((current_epoch + 1) / warmup_epochs,
    1)`` is the one exception to "unweighted": it is part of the method's definition and changes with the epoch,
    which a static config weight cannot. ``current_epoch`` is 0-based (Lightning), mdistiller's epochs start at 1,
    hence the ``+ 1``: the first epoch gets 1/W, epoch W and later get the full loss.
    """

    loss_names = ("dkd_tckd", "dkd_nckd")

    def __init__(self, pair: PairSpec, temperature: float = 4.0, warmup_epochs: int = 20) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        if warmup_epochs < 0:
            raise ConfigError(f"DKD warmup_epochs must be ≥ 0, got {warmup_epochs}")
        self.warmup_epochs = int(warmup_epochs)

    def warmup_factor(self) -> float:
        if self.warmup_epochs == 0:
            return 1.0
        return min((self.current_epoch + 1) / self.warmup_epochs, 1.0)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        target, factor = batch["target"], self.warmup_factor()
        return {
            "dkd_tckd": factor * dkd_tckd(student.logits, teacher.logits, target, self.temperature),
            "dkd_nckd": factor * dkd_nckd(student.logits, teacher.logits, target, self.temperature),
        }


class DIST(DistillationTerm):
    """DIST (Huang et al. 2022, arXiv:2205.10536): ``loss_dist = T²(β·inter + γ·intra)`` Pearson relations."""

    loss_names = ("dist",)

    def __init__(self, pair: PairSpec, temperature: float = 4.0, beta: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.beta, self.gamma = float(beta), float(gamma)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        return {"dist": dist(student.logits, teacher.logits, self.temperature, self.beta, self.gamma)}
