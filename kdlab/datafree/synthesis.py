"""Training DAFL's generator against the frozen teacher (Chen et al. ICCV 2019, arXiv:1904.01186, Alg. 1, G step).

The generator alone is optimised (Adam), with ``L_G = w_oh·L_oh + w_a·L_a + w_ie·L_ie`` on the teacher's logits and
pre-classifier features of each generated batch; the teacher stays frozen in eval mode. The student then distils on
fresh samples of the trained generator (:mod:`kdlab.datafree.transfer_data`). DAFL alternates the two steps; they
are sequential here because DAFL's generator loss never reads the student, so the generator trains the same either
way, and a finished generator can be kept (``generator.pt``) for a resumed or repeated student run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from kdlab.datafree.settings import GeneratorSettings
from kdlab.losses.data_free import dafl_activation_loss, dafl_information_entropy_loss, dafl_one_hot_loss

log = logging.getLogger(__name__)

LOSS_NAMES = ("one_hot", "activation", "information_entropy")


@dataclass
class SynthesisHistory:
    """The generator's losses by name every ``log_every`` steps: ``generator/loss_<name>`` and ``generator/loss``."""

    rows: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def last(self) -> dict[str, float]:
        return dict(self.rows[-1]) if self.rows else {}


def teacher_logits_and_features(teacher: nn.Module, images: Tensor) -> tuple[Tensor, Tensor]:
    """Logits and the vector the classifier reads (DAFL's activation feature: pooled/flattened, pre-logits), in one
    teacher pass through timm's head API (``forward_features`` → ``forward_head(pre_logits=True)`` → classifier)."""
    features = teacher.forward_head(teacher.forward_features(images), pre_logits=True)
    return teacher.get_classifier()(features), features.flatten(1)


def generator_losses(teacher: nn.Module, images: Tensor) -> dict[str, Tensor]:
    """DAFL's three unweighted losses of a generated batch, by name."""
    logits, features = teacher_logits_and_features(teacher, images)
    return {
        "one_hot": dafl_one_hot_loss(logits),
        "activation": dafl_activation_loss(features),
        "information_entropy": dafl_information_entropy_loss(logits),
    }


def weighted_total(losses: dict[str, Tensor], settings: GeneratorSettings) -> Tensor:
    """``L_G``: the weights are applied here only."""
    return sum(getattr(settings, f"weight_{name}") * losses[name] for name in LOSS_NAMES)


def train_generator(
    generator: nn.Module, teacher: nn.Module, settings: GeneratorSettings, seed: int, device: torch.device
) -> SynthesisHistory:
    """Optimise ``generator`` for ``settings.steps`` steps against the frozen ``teacher``; returns the loss history."""
    teacher.eval().to(device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    generator.train().to(device)
    optimizer = torch.optim.Adam(generator.parameters(), lr=settings.lr)
    noise = torch.Generator().manual_seed(seed)
    history, started = SynthesisHistory(), time.perf_counter()
    for step in range(1, settings.steps + 1):
        z = torch.randn(settings.batch_size, generator.latent_dim, generator=noise).to(device)
        losses = generator_losses(teacher, generator(z))
        total = weighted_total(losses, settings)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if step % settings.log_every == 0 or step == settings.steps:
            row = {"generator/step": float(step), "generator/loss": float(total.detach())}
            row.update({f"generator/loss_{name}": float(value.detach()) for name, value in losses.items()})
            history.rows.append(row)
            log.info("generator step %d/%d: %s", step, settings.steps, _fmt(row))
    history.seconds = time.perf_counter() - started
    return history


def _fmt(row: dict[str, float]) -> str:
    return ", ".join(f"{k.split('/')[-1]}={v:.4f}" for k, v in row.items() if k != "generator/step")
