"""A synthetic data set generated in memory: any class count, channel count and image size, nothing to download."""

from __future__ import annotations

import torch

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.tensors import Split
from kdlab.errors import ConfigError


def _split(prototypes: torch.Tensor, size: int, noise: float, generator: torch.Generator) -> Split:
    targets = torch.arange(size) % len(prototypes)
    targets = targets[torch.randperm(size, generator=generator)]
    images = prototypes[targets] + noise * torch.randn((size, *prototypes.shape[1:]), generator=generator)
    return Split(images, targets)


def synthetic_data(
    num_classes: int = 100,
    channels: int = 3,
    image_size: int = 32,
    num_train: int = 64,
    num_val: int = 16,
    num_test: int = 16,
    noise: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    augment: str = "none",
) -> InMemoryDataModule:
    """Each class is a fixed Gaussian image (its prototype) plus per-sample Gaussian ``noise``: learnable, so a smoke
    test can see accuracy move, and shaped like any real set (the defaults are CIFAR-100's) without its download."""
    sizes = dict(num_classes=num_classes, channels=channels, image_size=image_size, num_train=num_train)
    sizes.update(num_val=num_val, num_test=num_test)
    bad = {k: v for k, v in sizes.items() if not isinstance(v, int) or v < 1}
    if bad:
        raise ConfigError(f"data: {', '.join(f'{k}={v!r}' for k, v in bad.items())} must be integers >= 1")
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn((num_classes, channels, image_size, image_size), generator=generator)
    train, val, test = (_split(prototypes, n, noise, generator) for n in (num_train, num_val, num_test))
    return InMemoryDataModule("synthetic", train, val, test, num_classes, batch_size=batch_size, augment=augment)
