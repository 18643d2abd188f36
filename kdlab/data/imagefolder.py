"""Any ``root/train/<class>/*`` + ``root/test/<class>/*`` tree of image files, loaded once into memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.tensors import Split, normalise, resize, stratified_split
from kdlab.errors import ConfigError

CHANNEL_MODES = {1: "L", 3: "RGB"}


def _folder(root: Path, split: str, required: bool) -> ImageFolder | None:
    path = root / split
    if not path.is_dir():
        if required:
            raise ConfigError(f"data.root {root} has no '{split}/' folder: expected {root}/{split}/<class>/<images>")
        return None
    try:
        return ImageFolder(str(path))
    except (FileNotFoundError, RuntimeError) as exc:
        raise ConfigError(f"cannot read images under {path}: {exc}") from exc


def _detect_channels(folder: ImageFolder, sample: int = 64) -> int:
    """1 when every sampled image is greyscale, else 3."""
    for path, _ in folder.samples[:: max(1, len(folder.samples) // sample)]:
        with Image.open(path) as img:
            if img.mode not in ("L", "1", "I", "I;16", "F", "LA"):
                return 3
    return 1


def _flatten(img: Image.Image, mode: str) -> Image.Image:
    """``img`` in ``mode`` ("L" or "RGB"), transparency composited onto white as an image viewer shows it.

    PIL's plain ``convert`` drops alpha and keeps whatever colour transparent pixels happen to store (icons and
    cut-outs often hide black or a flat grey there), which would erase the shape the alpha channel draws.
    """
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert(mode)


def _load(folder: ImageFolder, channels: int, image_size: int, class_index: dict[str, int]) -> Split:
    images, targets = [], []
    for path, target in folder.samples:
        with Image.open(path) as img:
            pixels = np.asarray(_flatten(img, CHANNEL_MODES[channels]).resize((image_size, image_size)), dtype=np.uint8)
        images.append(torch.from_numpy(pixels.copy()).reshape(image_size, image_size, channels).permute(2, 0, 1))
        targets.append(class_index[folder.classes[target]])
    stacked = torch.stack(images).float() / 255.0
    return Split(resize(stacked, image_size), torch.tensor(targets, dtype=torch.long))


def imagefolder_data(
    root: str,
    image_size: int = 32,
    channels: int | str = "auto",
    batch_size: int = 64,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    augment: str = "none",
) -> InMemoryDataModule:
    """Greyscale or RGB images resized to ``image_size``; a ``val/`` folder is used when present, else carved."""
    if not root:
        raise ConfigError("data.root is not set: pass data.root=/path/with/train/and/test")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise ConfigError(f"data.root {base} does not exist")
    train_folder, test_folder = _folder(base, "train", True), _folder(base, "test", True)
    if train_folder.classes != test_folder.classes:
        raise ConfigError(f"train/ and test/ under {base} have different class folders")
    if channels == "auto":
        channels = _detect_channels(train_folder)
    if channels not in CHANNEL_MODES:
        raise ConfigError(f"data.channels must be auto, 1 or 3, got {channels}")
    class_index = {name: i for i, name in enumerate(train_folder.classes)}
    train = _load(train_folder, channels, image_size, class_index)
    test = _load(test_folder, channels, image_size, class_index)
    val_folder = _folder(base, "val", False)
    if val_folder is not None:
        val = _load(val_folder, channels, image_size, class_index)
    else:
        train, val = stratified_split(train, val_fraction, split_seed)
    normalise(train, val, test)
    return InMemoryDataModule(
        f"imagefolder:{base.name}", train, val, test, len(class_index), batch_size=batch_size, augment=augment
    )
