"""scikit-learn's ``load_digits``: 1,797 real handwritten 8×8 digits that ship inside the package."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.tensors import Split, fit_input_transform, stratified_split


def digits_data(
    image_size: int = 32,
    batch_size: int = 64,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    augment: str = "none",
) -> InMemoryDataModule:
    """Stratified train/val/test splits fixed by ``split_seed``; stored as the 8×8 uint8 grey levels (0–16), upsampled
    to ``image_size`` and standardised per batch on the device."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.uint8).unsqueeze(1)
    full = Split(images, torch.tensor(digits.target, dtype=torch.long))
    rest, test = stratified_split(full, test_fraction, split_seed)
    train, val = stratified_split(rest, val_fraction / (1 - test_fraction), split_seed)
    transform = fit_input_transform(train, scale=16.0, size=image_size)
    return InMemoryDataModule(
        "digits", train, val, test, num_classes=10, batch_size=batch_size, augment=augment, transform=transform
    )
