"""Response terms: distil from the teacher's logits."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from kdlab.data.pairs import PARTNER_KEY
from kdlab.errors import ConfigError
from kdlab.losses import (
    cs_kd,
    deit_hard_distillation,
    deit_soft_distillation,
    dist,
    dkd_nckd,
    dkd_tckd,
    kd_kl,
    standardize_logits,
    tf_kd_virtual_teacher,
)
from kdlab.losses.response import DIVERGENCES
from kdlab.models.outputs import ModelOutputs
from kdlab.terms.base import Batch, DistillationTerm, PairSpec


def check_temperature(temperature: float) -> float:
    if not float(temperature) > 0:
        raise ConfigError(f"kd.temperature must be > 0, got {temperature}")
    return float(temperature)


def check_switch(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"kd.{key} must be true or false, got {value!r}")
    return value


def check_divergence(divergence: str) -> str:
    if divergence not in DIVERGENCES:
        raise ConfigError(f"kd.divergence must be one of {sorted(DIVERGENCES)}, got {divergence!r}")
    return divergence


def response_logits(student: ModelOutputs, teacher: ModelOutputs, standardize: bool) -> tuple[Tensor, Tensor]:
    """The logits a response loss sees: z-scored per sample and model when logit standardization is on (Sun et al.
    2024, arXiv:2403.01427), so the temperature acts on each model's logits relative to their own spread."""
    if not standardize:
        return student.logits, teacher.logits
    return standardize_logits(student.logits), standardize_logits(teacher.logits)


class SoftTargets(DistillationTerm):
    """Hinton et al. 2015 soft targets (arXiv:1503.02531): ``loss_kd = T²·D(p_t^T, p_s^T)``.

    ``divergence``: ``forward_kl`` (Hinton's KL(p_t ‖ p_s)), ``reverse_kl`` (KL(p_s ‖ p_t)) or ``js``;
    ``logit_standardization`` z-scores both models' logits before the temperature (Sun et al. 2024).
    """

    loss_names = ("kd",)

    def __init__(
        self,
        pair: PairSpec,
        temperature: float = 4.0,
        divergence: str = "forward_kl",
        logit_standardization: bool = False,
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.divergence = check_divergence(divergence)
        self.standardize = check_switch(logit_standardization, "logit_standardization")

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        s, t = response_logits(student, teacher, self.standardize)
        return {"kd": DIVERGENCES[self.divergence](s, t, self.temperature)}


class DKD(DistillationTerm):
    """Decoupled KD (Zhao et al. 2022, arXiv:2203.08679): returns ``dkd_tckd`` and ``dkd_nckd``, each × warm-up.

    DKD's α and β are the config weights of the two losses. The warm-up ``min((current_epoch + 1) / warmup_epochs,
    1)`` is the one exception to "unweighted": it is part of the method's definition and changes with the epoch,
    which a static config weight cannot. ``current_epoch`` is 0-based (Lightning), mdistiller's epochs start at 1,
    hence the ``+ 1``: the first epoch gets 1/W, epoch W and later get the full loss.
    """

    loss_names = ("dkd_tckd", "dkd_nckd")

    def __init__(
        self, pair: PairSpec, temperature: float = 4.0, warmup_epochs: int = 20, logit_standardization: bool = False
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.standardize = check_switch(logit_standardization, "logit_standardization")
        if warmup_epochs < 0:
            raise ConfigError(f"DKD warmup_epochs must be ≥ 0, got {warmup_epochs}")
        self.warmup_epochs = int(warmup_epochs)

    def warmup_factor(self) -> float:
        if self.warmup_epochs == 0:
            return 1.0
        return min((self.current_epoch + 1) / self.warmup_epochs, 1.0)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        target, factor = batch["target"], self.warmup_factor()
        s, t = response_logits(student, teacher, self.standardize)  # before the target masking, as the LS code does
        return {
            "dkd_tckd": factor * dkd_tckd(s, t, target, self.temperature),
            "dkd_nckd": factor * dkd_nckd(s, t, target, self.temperature),
        }


class DIST(DistillationTerm):
    """DIST (Huang et al. 2022, arXiv:2205.10536): ``loss_dist = T²(β·inter + γ·intra)`` Pearson relations."""

    loss_names = ("dist",)

    def __init__(
        self,
        pair: PairSpec,
        temperature: float = 4.0,
        beta: float = 1.0,
        gamma: float = 1.0,
        logit_standardization: bool = False,
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.beta, self.gamma = float(beta), float(gamma)
        self.standardize = check_switch(logit_standardization, "logit_standardization")

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        s, t = response_logits(student, teacher, self.standardize)
        return {"dist": dist(s, t, self.temperature, self.beta, self.gamma)}


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by ``scale`` (negative: gradient reversal)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def cosine_reversal_scale(epoch: int, loops: int = 10, scale_max: float = 0.0, scale_min: float = -1.0) -> float:
    """CTKD's curriculum λ(e) = max + (min − max)·½(1 − cos(π·min(e, E)/E)), epochs from 1 (the code's CosineDecay).

    With the defaults: −0.024 at epoch 1, −0.5 at epoch 5, −1 from epoch 10 on: the temperature is pushed ever
    harder towards *raising* the distillation loss.
    """
    progress = min(epoch, loops) / loops
    return scale_max + (scale_min - scale_max) * 0.5 * (1.0 - math.cos(math.pi * progress))


class CurriculumTemperatureKD(DistillationTerm):
    """CTKD, Li et al., "Curriculum Temperature for Knowledge Distillation" (AAAI 2023, arXiv:2211.16231).

    Soft targets at a learned global temperature ``τ = t_start + t_range·sigmoid(θ)`` (θ₀ = 1, so τ₀ ≈ 15.6).
    θ is a parameter of this term, trained by the student's optimiser through a gradient-reversal layer whose
    scale follows :func:`cosine_reversal_scale`: the student descends ``τ²·KL(p_t^τ ‖ p_s^τ)`` while θ ascends it.
    """

    loss_names = ("kd",)

    def __init__(
        self,
        pair: PairSpec,
        t_start: float = 1.0,
        t_range: float = 20.0,
        decay_loops: int = 10,
        logit_standardization: bool = False,
    ) -> None:
        super().__init__()
        check_temperature(t_start)
        if not float(t_range) >= 0 or int(decay_loops) < 1:
            raise ConfigError(f"CTKD needs t_range ≥ 0 and decay_loops ≥ 1, got {t_range}, {decay_loops}")
        self.t_start, self.t_range, self.decay_loops = float(t_start), float(t_range), int(decay_loops)
        self.standardize = check_switch(logit_standardization, "logit_standardization")
        self.theta = nn.Parameter(torch.ones(()))

    def temperature(self) -> Tensor:
        scale = cosine_reversal_scale(self.current_epoch + 1, self.decay_loops)
        theta = _ScaleGradient.apply(self.theta, scale)
        return self.t_start + self.t_range * torch.sigmoid(theta)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        s, t = response_logits(student, teacher, self.standardize)
        return {"kd": kd_kl(s, t, self.temperature())}


class TeacherFreeKD(DistillationTerm):
    """Tf-KD_reg (Yuan et al. 2020, arXiv:1909.11723): ``loss_tfkd = KL(softmax(p^d/T) ‖ softmax(s))`` against a
    hand-made "virtual teacher" ``p^d`` (see :func:`kdlab.losses.tf_kd_virtual_teacher`); needs no teacher."""

    loss_names = ("tfkd",)
    needs_teacher = False

    def __init__(self, pair: PairSpec, temperature: float = 20.0, correct_prob: float = 0.99) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        if not 0.0 < float(correct_prob) < 1.0:
            raise ConfigError(f"Tf-KD correct_prob must be in (0, 1), got {correct_prob}")
        self.correct_prob = float(correct_prob)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: Batch) -> dict[str, Tensor]:
        return {"tfkd": tf_kd_virtual_teacher(student.logits, batch["target"], self.temperature, self.correct_prob)}


class ClassWiseSelfKD(DistillationTerm):
    """CS-KD (Yun et al. CVPR 2020, arXiv:2003.13964): ``loss_cskd = T²·KL(p(x'; T) ‖ p(x; T))`` between each anchor
    and a class-mate x' from the same batch, the class-mate's side detached; needs no teacher, and asks the data for
    class-paired batches (:mod:`kdlab.data.pairs`: B anchors then B partners, CE on the anchors only)."""

    loss_names = ("cskd",)
    needs_teacher = False
    needs_class_pairs = True

    def __init__(self, pair: PairSpec, temperature: float = 4.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: Batch) -> dict[str, Tensor]:
        partner = batch.get(PARTNER_KEY)
        if partner is None:
            raise ConfigError("CS-KD needs class-paired batches (batch['partner']); build the terms with build_terms")
        return {"cskd": cs_kd(student.logits[~partner], student.logits[partner], self.temperature)}


DEIT_MODES = ("hard", "soft")


class DeiTDistillation(DistillationTerm):
    """DeiT's distillation token, Touvron et al., "Training data-efficient image transformers & distillation through
    attention" (ICML 2021, arXiv:2012.12877): ``loss_deit`` trains the student's distillation-token head ``z_dist``
    on the teacher — ``hard``: ``CE(z_dist, argmax z_t)``; ``soft``: ``T²·KL(p_t^T ‖ p_dist^T) / (B·C)``.

    The cross-entropy reads the class head alone (``student.logits``); evaluation reads the model's own output, the
    mean of both heads, as DeiT reports. Needs a student with a distillation token (timm's ``deit_*_distilled_*``).
    """

    loss_names = ("deit",)
    needs_dist_token = True

    def __init__(self, pair: PairSpec, mode: str = "hard", temperature: float = 1.0) -> None:
        super().__init__()
        if mode not in DEIT_MODES:
            raise ConfigError(f"kd.deit_mode must be one of {list(DEIT_MODES)}, got {mode!r}")
        if not pair.student_has_dist_token:
            raise ConfigError(
                f"kd=deit needs a student with a distillation token (timm deit_*_distilled_*, e.g. "
                f"student=deit_tiny_distilled); student {pair.student_name} has none"
            )
        self.mode = mode
        self.temperature = check_temperature(temperature)

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, batch: Batch) -> dict[str, Tensor]:
        if student.dist_logits is None:
            raise ConfigError("DeiT needs the student's dist_logits: run it through forward_with_taps(need_dist_token)")
        if self.mode == "hard":
            return {"deit": deit_hard_distillation(student.dist_logits, teacher.logits)}
        return {"deit": deit_soft_distillation(student.dist_logits, teacher.logits, self.temperature)}
