"""A teacher that stays frozen whatever Lightning or the user does to the module tree."""

from __future__ import annotations

from torch import nn


class FrozenTeacher(nn.Module):
    """Wraps a trained model: no gradients, and eval mode even when ``.train()`` is called on a parent.

    Lightning calls ``.train()`` on the whole LightningModule at the start of every epoch; without this guard the
    teacher's BatchNorm statistics and dropout would drift during distillation.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.model.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        return super().train(False)

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)
