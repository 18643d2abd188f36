"""The in-memory path stores uint8 and standardises per batch on the device: same model inputs, a quarter the bytes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from kdlab.data.digits import digits_data
from kdlab.data.tensors import Split, fit_input_transform


def _float_digits_the_old_way(image_size: int) -> torch.Tensor:
    """Every digit as float32, upsampled and standardised once with the train statistics (the former storage)."""
    data = digits_data(image_size=image_size)
    digits = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16.0
    full = F.interpolate(digits, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    train_rows = _rows_of(data.train.images, digits)
    mean = full[train_rows].mean(dim=(0, 2, 3), keepdim=True)
    std = full[train_rows].std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-6)
    return (full[_rows_of(data.test.images, digits)] - mean) / std


def _rows_of(stored: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
    """Where each stored uint8 digit sits in the original array (digits are unique up to a handful of duplicates)."""
    flat = (digits * 16).round().to(torch.uint8).flatten(1)
    return torch.tensor([int((flat == row).all(dim=1).nonzero()[0]) for row in stored.flatten(1)])


def test_digits_are_stored_as_8x8_uint8_and_batches_match_the_former_float_standardisation() -> None:
    data = digits_data(image_size=32)
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape[1:] == (1, 8, 8)
    assert data.input_shape == (1, 32, 32)
    inputs = torch.cat([batch["image"] for batch in data.model_batches("test")])
    torch.testing.assert_close(inputs, _float_digits_the_old_way(32), rtol=1e-5, atol=1e-5)


def test_the_lightning_hook_and_model_batches_give_the_same_inputs() -> None:
    data = digits_data(image_size=16, batch_size=50)
    loader_batch = next(iter(data.val_dataloader()))
    assert loader_batch["image"].dtype == torch.uint8  # what crosses to the device
    hooked = data.on_after_batch_transfer(loader_batch, 0)
    direct = next(data.model_batches("val", batch_size=50))
    assert torch.equal(hooked["image"], direct["image"]) and hooked["image"].dtype == torch.float32
    assert torch.equal(hooked["index"], direct["index"])


def test_chunked_statistics_agree_with_the_exact_ones(monkeypatch) -> None:
    images = torch.randint(0, 256, (300, 3, 10, 10), dtype=torch.uint8)
    split = Split(images, torch.zeros(300, dtype=torch.long))
    exact = fit_input_transform(split, 255.0, 12)
    monkeypatch.setattr("kdlab.data.tensors.EXACT_STATS_BYTES", 0)
    chunked = fit_input_transform(split, 255.0, 12, chunk=64)
    torch.testing.assert_close(chunked.mean, exact.mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked.std, exact.std, rtol=1e-5, atol=1e-6)
