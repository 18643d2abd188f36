"""Image tensors held in memory: splitting, resizing and normalising them deterministically."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import Tensor

from kdlab.errors import ConfigError


@dataclass
class Split:
    """One split of a data set: float images (N, C, H, W) and int64 labels (N,)."""

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


def normalise(train: Split, *others: Split) -> tuple[Tensor, Tensor]:
    """Standardise every split in place with the training split's per-channel mean and std; return them."""
    mean = train.images.mean(dim=(0, 2, 3), keepdim=True)
    std = train.images.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-6)
    for split in (train, *others):
        split.images = (split.images - mean) / std
    return mean.flatten(), std.flatten()
