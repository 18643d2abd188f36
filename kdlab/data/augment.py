"""Batch-level augmentation on tensors already in memory (or on the GPU): no per-sample Python work."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kdlab.errors import ConfigError

AUGMENTATIONS = ("none", "crop_flip", "jitter")


def random_translate(images: Tensor, max_shift: int, pad_mode: str = "constant") -> Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y; the uncovered border is zero-filled
    (``pad_mode="constant"``) or continues the image's own edge (``"replicate"``)."""
    n, _, h, w = images.shape
    padded = F.pad(images, [max_shift] * 4, mode=pad_mode)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), device=images.device)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=images.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channels = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


def random_crop_flip(images: Tensor, padding: int = 4) -> Tensor:
    """The CIFAR recipe: random crop after ``padding``-pixel zero padding, then random horizontal flip."""
    shifted = random_translate(images, padding)
    flip = torch.rand(len(images), device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], shifted.flip(-1), shifted)


def check_augment(name: str, key: str = "data.augment") -> str:
    if name not in AUGMENTATIONS:
        raise ConfigError(f"{key} must be one of {', '.join(AUGMENTATIONS)}, got '{name}'")
    return name


def apply_augment(name: str, images: Tensor) -> Tensor:
    if name == "crop_flip":
        return random_crop_flip(images)
    if name == "jitter":
        # Hinton et al. 2015's jitter, up to 2 px. The images are already standardised, so a zero fill would paint a
        # mid-grey frame round an MNIST digit; replicating the edge keeps the border background-coloured.
        return random_translate(images, 2, pad_mode="replicate")
    return images
