"""Image tensors held in memory: splitting, resizing and normalising them deterministically.

Splits hold the images as they were read (uint8, at the source resolution where a resize can wait); an
:class:`InputTransform` turns a batch of them into model inputs (float, resized, standardised) on the device, so the
set takes a quarter of the memory float32 would and every batch is transformed where the model runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import Tensor

from kdlab.errors import ConfigError


@dataclass
class Split:
    """One split of a data set: images (N, C, H, W; uint8 as read, or float) and int64 labels (N,)."""

    images: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices) -> Split:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return Split(self.images[idx], self.targets[idx])


def stratified_split(split: Split, fraction: float | int, seed: int) -> tuple[Split, Split]:
    """Carve ``fraction`` of ``split`` (an int: that many samples) off as a second split, stratified by label; the
    same seed gives the same cut."""
    indices = torch.arange(len(split)).numpy()
    try:
        keep, carved = train_test_split(
            indices, test_size=fraction, random_state=seed, stratify=split.targets.numpy(), shuffle=True
        )
    except ValueError as exc:  # sklearn: fraction outside (0, 1), or fewer carved samples than classes
        raise ConfigError(
            f"cannot carve a split of {fraction!r} from {len(split)} samples stratified by class: {exc}"
        ) from exc
    return split.subset(sorted(keep)), split.subset(sorted(carved))


def resize(images: Tensor, size: int) -> Tensor:
    """Resize a batch of images to ``size``×``size`` (antialiased when shrinking)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


@dataclass
class InputTransform:
    """Stored images -> model inputs: ``x / scale``, resized to ``size``, standardised by the train ``mean``/``std``.

    Applied per batch, on whatever device the batch is on; the same arithmetic as transforming the whole set once.
    """

    scale: float
    size: int
    mean: Tensor
    std: Tensor

    def __call__(self, images: Tensor) -> Tensor:
        x = resize(images.float() / self.scale, self.size)
        return (x - self.mean.to(x.device)[None, :, None, None]) / self.std.to(x.device)[None, :, None, None]

    @classmethod
    def identity(cls, channels: int, size: int) -> InputTransform:
        """For images that are already model inputs (the synthetic set)."""
        return cls(1.0, size, torch.zeros(channels), torch.ones(channels))


EXACT_STATS_BYTES = 1024**3  # below this the statistics come from one float copy of the split, as they always did


def _scaled_chunks(images: Tensor, scale: float, size: int, chunk: int) -> Iterator[Tensor]:
    for start in range(0, len(images), chunk):
        yield resize(images[start : start + chunk].float() / scale, size)


def fit_input_transform(train: Split, scale: float, size: int, chunk: int = 512) -> InputTransform:
    """The per-channel mean and std of the scaled, resized training images (std unbiased, floored at 1e-6).

    Small sets are reduced in one float copy (bit-identical to standardising the float set); large ones in chunks
    with float64 sums, so the float copy never exists.
    """
    n, c = len(train.images), train.images.shape[1]
    if n * c * size * size * 4 <= EXACT_STATS_BYTES:
        x = resize(train.images.float() / scale, size)
        mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    else:
        total, squares = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)
        for x in _scaled_chunks(train.images, scale, size, chunk):
            total += x.double().sum(dim=(0, 2, 3))
            squares += x.double().pow(2).sum(dim=(0, 2, 3))
        count = n * size * size
        mean = total / count
        std = ((squares - count * mean.pow(2)) / max(count - 1, 1)).clamp(min=0).sqrt()
        mean, std = mean.float(), std.float()
    return InputTransform(float(scale), int(size), mean, std.clamp(min=1e-6))


def fingerprint(named: Iterable[tuple[str, Tensor]]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes of tensors: equal iff the contents are equal."""
    digest = hashlib.sha256()
    for name, tensor in named:
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy())  # the buffer itself, no copy
    return digest.hexdigest()
