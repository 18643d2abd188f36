"""Batch-level augmentation on tensors already in memory (or on the GPU): no per-sample Python work."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kdlab.data.mixing import derived_seed
from kdlab.errors import ConfigError

AUGMENTATIONS = ("none", "crop_flip", "jitter")


MASK32 = 0xFFFFFFFF


def _mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (two xor-shift-multiply rounds) in int64 arithmetic that never overflows, so it gives
    the same bits on every device."""
    for _ in range(2):
        x = (((x >> 16) ^ x) * 0x45D9F3B) & MASK32
    return (x >> 16) ^ x


def sample_keys(seed: int, epoch: int, index: Tensor) -> Tensor:
    """One 32-bit key per sample, a pure function of (seed, epoch, sample index): a sample's random augmentation
    does not depend on its batch, its position, the device or where a run resumed (teacher-output replay relies
    on it to recompute exactly the view the student gets)."""
    base = derived_seed(seed, epoch) & MASK32
    return _mix32(_mix32(index.long() & MASK32) ^ base)


def _draw(keys: Tensor, stream: int, high: int) -> Tensor:
    """A per-sample integer in [0, high) from the sample's key and a stream number (one stream per random choice)."""
    return _mix32(keys ^ _mix32(torch.full_like(keys, stream))) % high


def random_translate(images: Tensor, max_shift: int, pad_mode: str = "constant", keys: Tensor | None = None) -> Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y; the uncovered border is zero-filled
    (``pad_mode="constant"``) or continues the image's own edge (``"replicate"``). With ``keys`` (see
    :func:`sample_keys`) the shifts are a function of them, else of the global generator."""
    n, _, h, w = images.shape
    padded = F.pad(images, [max_shift] * 4, mode=pad_mode)
    if keys is None:
        dx = torch.randint(0, 2 * max_shift + 1, (n,), device=images.device)
        dy = torch.randint(0, 2 * max_shift + 1, (n,), device=images.device)
    else:
        dx, dy = (_draw(keys.to(images.device), s, 2 * max_shift + 1) for s in (1, 2))
    rows = (dy[:, None] + torch.arange(h, device=images.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=images.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channels = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


def random_crop_flip(images: Tensor, padding: int = 4, keys: Tensor | None = None) -> Tensor:
    """The CIFAR recipe: random crop after ``padding``-pixel zero padding, then random horizontal flip."""
    shifted = random_translate(images, padding, keys=keys)
    if keys is None:
        flip = torch.rand(len(images), device=images.device) < 0.5
    else:
        flip = _draw(keys.to(images.device), 3, 2) == 1
    return torch.where(flip[:, None, None, None], shifted.flip(-1), shifted)


def check_augment(name: str, key: str = "data.augment") -> str:
    if name not in AUGMENTATIONS:
        raise ConfigError(f"{key} must be one of {', '.join(AUGMENTATIONS)}, got '{name}'")
    return name


def apply_augment(name: str, images: Tensor, keys: Tensor | None = None) -> Tensor:
    """``name`` applied to a batch; ``keys`` (one per sample, :func:`sample_keys`) make every draw per-sample
    deterministic."""
    if name == "crop_flip":
        return random_crop_flip(images, keys=keys)
    if name == "jitter":
        # Hinton et al. 2015's jitter, up to 2 px. The images are already standardised, so a zero fill would paint a
        # mid-grey frame round an MNIST digit; replicating the edge keeps the border background-coloured.
        return random_translate(images, 2, pad_mode="replicate", keys=keys)
    return images
