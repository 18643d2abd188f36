"""Mixup / CutMix on the batch after it reaches the device (timm's ``Mixup``), so the teacher and the student see the
same mixed images, with every random draw a function of (seed, epoch, batch)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from timm.data import Mixup
from torch import Tensor

from kdlab.errors import ConfigError


def derived_seed(*parts: int) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (unlike ``hash``, stable across processes and runs)."""
    digest = hashlib.blake2b("/".join(str(int(p)) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


@contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Python's, NumPy's and torch's (CPU) global generators seeded with ``seed`` inside the block, as they were
    afterwards: timm's and torchvision's transforms draw from the globals, and the training run's draws must not
    depend on how many images were decoded in this process."""
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


def check_mixing(mixup: float, cutmix: float, batch_size: int) -> None:
    for key, value in (("data.mixup", mixup), ("data.cutmix", cutmix)):
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{key} must be a Beta(alpha, alpha) alpha >= 0 (0 = off), got {value!r}")
    if (mixup or cutmix) and batch_size % 2:
        raise ConfigError(
            f"data.mixup/data.cutmix pair each image with another: data.batch_size must be even, got {batch_size}"
        )


class BatchMixer:
    """timm's ``Mixup`` (mixup alpha, cutmix alpha, switching between them per batch when both are on), seeded per
    batch; adds ``soft_target`` (the mixed one-hot labels) and keeps ``target`` (the hard labels, for accuracy)."""

    def __init__(self, mixup: float, cutmix: float, num_classes: int) -> None:
        self.mixup = Mixup(
            mixup_alpha=float(mixup), cutmix_alpha=float(cutmix), label_smoothing=0.0, num_classes=num_classes
        )

    def __call__(self, batch: dict[str, Tensor], seed: int, epoch: int) -> dict[str, Tensor]:
        images, target = batch["image"], batch["target"]
        if len(images) % 2:  # timm pairs image i with image n-1-i; an odd last batch passes unmixed
            soft = torch.nn.functional.one_hot(target, self.mixup.num_classes).to(images.dtype)
            return {**batch, "soft_target": soft}
        with seeded_rngs(derived_seed(seed, epoch, int(batch["mix_key"]))):
            images = images.clone()  # Mixup works in place
            soft = self.mixup(images, target)[1]
        return {**batch, "image": images, "soft_target": soft}
