"""Torchvision's CIFAR-10/100 and MNIST, downloaded when online, read from ``data.root`` when already there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision import datasets

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.tensors import Split, fit_input_transform, stratified_split
from kdlab.errors import ConfigError

DATASETS = {"cifar10": (datasets.CIFAR10, 10), "cifar100": (datasets.CIFAR100, 100), "mnist": (datasets.MNIST, 10)}


def _open(name: str, root: Path, train: bool, download: bool):
    cls = DATASETS[name][0]
    try:
        return cls(str(root), train=train, download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
        raise ConfigError(
            f"{name} not found under {root} ({exc}); pass data.download=true when online, "
            f"or data.root=<folder that holds {cls.__name__}'s files>"
        ) from exc
    except OSError as exc:  # URLError and friends: no network
        raise ConfigError(f"could not download {name} to {root} (offline?): {exc}") from exc


def _as_split(dataset) -> Split:
    data = dataset.data
    images = torch.as_tensor(np.asarray(data))
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    return Split(images.to(torch.uint8), torch.as_tensor(np.asarray(dataset.targets), dtype=torch.long))


def torchvision_data(
    name: str,
    root: str = "data",
    download: bool = True,
    image_size: int = 32,
    batch_size: int = 64,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    augment: str = "none",
    train_subset: int | None = None,
) -> InMemoryDataModule:
    """The official train/test split, a stratified val split carved from train, held in memory as uint8 at the
    source resolution; resized and standardised per batch on the device."""
    if name not in DATASETS:
        raise ConfigError(f"data.name must be one of {', '.join(DATASETS)}, got '{name}'")
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"data.val_fraction must be in (0, 1) (val is carved from train), got {val_fraction}")
    if train_subset is not None and int(train_subset) < 1:  # checked before any file is read
        raise ConfigError(f"data.train_subset must be a sample count >= 1 or null, got {train_subset}")
    base = Path(root).expanduser()
    train = _as_split(_open(name, base, True, download))
    test = _as_split(_open(name, base, False, download))
    if train_subset is not None:
        if not 0 < int(train_subset) <= len(train):
            raise ConfigError(f"data.train_subset must be in 1..{len(train)} or null, got {train_subset}")
        if int(train_subset) < len(train):
            train, _ = stratified_split(train, len(train) - int(train_subset), split_seed)
    train, val = stratified_split(train, val_fraction, split_seed)
    transform = fit_input_transform(train, scale=255.0, size=image_size)
    classes = DATASETS[name][1]
    return InMemoryDataModule(
        name, train, val, test, classes, batch_size=batch_size, augment=augment, transform=transform
    )
