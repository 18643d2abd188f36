"""Any ``root/train/<class>/*`` + ``root/test/<class>/*`` tree of image files: held in memory (uint8) when small,
streamed from disk (:mod:`kdlab.data.streaming`) when not."""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.mixing import BatchMixer, check_mixing
from kdlab.data.streaming import (
    CHANNEL_MODES,
    DECODE_ERRORS,
    LEGACY_AUGMENTATIONS,
    FileSplit,
    StreamingDataModule,
    TransformSpec,
    build_transform,
    check_augment_name,
    estimate_mean_std,
    is_timm_augment,
    open_image,
    unreadable_message,
)
from kdlab.data.tensors import Split, fit_input_transform, stratified_split
from kdlab.errors import ConfigError

log = logging.getLogger(__name__)


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


def _decode(path: str, channels: int, image_size: int) -> torch.Tensor | str:
    """One file as a (C, S, S) uint8 tensor, or why it cannot be decoded."""
    try:
        pixels = np.asarray(open_image(path, channels).resize((image_size, image_size)), dtype=np.uint8)
    except DECODE_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return torch.from_numpy(pixels.copy()).reshape(image_size, image_size, channels).permute(2, 0, 1)


def _load(folder: ImageFolder, channels: int, image_size: int, class_index: dict[str, int], skip: bool) -> Split:
    images, targets, skipped = [], [], 0
    for path, target in folder.samples:
        pixels = _decode(path, channels, image_size)
        if isinstance(pixels, str):
            if not skip:
                raise ConfigError(unreadable_message(path, pixels))
            skipped += 1
            log.warning("skipping unreadable image %s (%s)", path, pixels)
            continue
        images.append(pixels)
        targets.append(class_index[folder.classes[target]])
    if skipped:
        log.warning("%d unreadable image(s) skipped under %s", skipped, folder.root)
    return Split(torch.stack(images), torch.tensor(targets, dtype=torch.long))


def _files(folder: ImageFolder, class_index: dict[str, int]) -> FileSplit:
    return FileSplit([(path, class_index[folder.classes[t]]) for path, t in folder.samples])


def _check_classes(base: Path, train: ImageFolder, other: ImageFolder, name: str) -> None:
    """``other``'s classes must be train's; the message names what differs."""
    if other.classes == train.classes:
        return
    extra = sorted(set(other.classes) - set(train.classes))
    lacking = sorted(set(train.classes) - set(other.classes))
    detail = f"class folder(s) {extra} in {name}/ are not in train/" if extra else f"{name}/ lacks {lacking}"
    raise ConfigError(f"train/ and {name}/ under {base} have different class folders: {detail}")


def decoded_bytes(folders: list[ImageFolder], channels: int, image_size: int) -> int:
    """What the in-memory path would hold: every image as uint8 at ``image_size``."""
    return sum(len(f.samples) for f in folders) * channels * image_size * image_size


def default_memory_budget() -> int:
    """A quarter of the machine's physical memory: room for the models, the workers and everything else."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def choose_in_memory(
    in_memory: bool | str, augment: str, needed: int, budget_gb: float | None, erasing: float = 0.0
) -> bool:
    """``auto`` holds the set in memory when it fits the budget and the recipe runs on tensors (timm's per-image
    recipes and random erasing belong to the streamed path)."""
    if in_memory not in ("auto", True, False):
        raise ConfigError(f"data.in_memory must be auto, true or false, got {in_memory!r}")
    if in_memory is True and is_timm_augment(augment):
        raise ConfigError(
            f"data.augment={augment} transforms each decoded image: it needs data.in_memory=false (or auto); "
            f"in memory: {', '.join(LEGACY_AUGMENTATIONS)}"
        )
    if in_memory is True and erasing:
        raise ConfigError("data.random_erasing erases per decoded image: it needs data.in_memory=false (or auto)")
    if in_memory != "auto":
        return bool(in_memory)
    budget = default_memory_budget() if budget_gb is None else float(budget_gb) * 1024**3
    return needed <= budget and not is_timm_augment(augment) and not erasing


def imagefolder_data(
    root: str,
    image_size: int = 32,
    channels: int | str = "auto",
    batch_size: int = 64,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    augment: str = "none",
    in_memory: bool | str = "auto",
    memory_budget_gb: float | None = None,
    num_workers: int | str = "auto",
    mixup: float = 0.0,
    cutmix: float = 0.0,
    random_erasing: float = 0.0,
    interpolation: str = "bilinear",
    crop_pct: float | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    skip_bad_files: bool = False,
    val_folder: str = "val",
    test_folder: str = "test",
) -> InMemoryDataModule | StreamingDataModule:
    """Greyscale or RGB images at ``image_size``; a ``val/`` folder is used when present, else carved from train.

    Held in memory as uint8 when small (``in_memory=auto``: when the decoded set fits ``memory_budget_gb``, default
    a quarter of RAM), else streamed from disk by ``num_workers`` processes with timm's transforms.
    """
    if not root:
        raise ConfigError("data.root is not set: pass data.root=/path/with/train/and/test")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise ConfigError(f"data.root {base} does not exist")
    check_augment_name(augment)
    check_mixing(mixup, cutmix, batch_size)
    if isinstance(random_erasing, bool) or not isinstance(random_erasing, int | float) or not 0 <= random_erasing <= 1:
        raise ConfigError(f"data.random_erasing is a probability in [0, 1], got {random_erasing!r}")
    train_folder, test_images = _folder(base, "train", True), _folder(base, test_folder, True)
    _check_classes(base, train_folder, test_images, test_folder)
    val_images = _folder(base, val_folder, False)
    if val_images is not None:
        _check_classes(base, train_folder, val_images, val_folder)
    if channels == "auto":
        channels = _detect_channels(train_folder)
    if channels not in CHANNEL_MODES:
        raise ConfigError(f"data.channels must be auto, 1 or 3, got {channels}")
    class_index = {name: i for i, name in enumerate(train_folder.classes)}
    folders = [f for f in (train_folder, val_images, test_images) if f is not None]
    name, classes = f"imagefolder:{base.name}", len(class_index)
    mixer = BatchMixer(mixup, cutmix, classes) if (mixup or cutmix) else None
    needed = decoded_bytes(folders, channels, image_size)
    if choose_in_memory(in_memory, augment, needed, memory_budget_gb, random_erasing):
        load = partial(_load, channels=channels, image_size=image_size, class_index=class_index, skip=skip_bad_files)
        train, test = load(train_folder), load(test_images)
        if val_images is not None:
            val = load(val_images)
        else:
            train, val = stratified_split(train, val_fraction, split_seed)
        transform = fit_input_transform(train, scale=255.0, size=image_size)
        return InMemoryDataModule(
            name, train, val, test, classes, batch_size=batch_size, augment=augment, transform=transform, mixer=mixer
        )
    train_files, test_files = _files(train_folder, class_index), _files(test_images, class_index)
    if val_images is not None:
        val_files = _files(val_images, class_index)
    else:
        train_files, val_files = _carve_files(train_files, val_fraction, split_seed)
    if mean is None or std is None:
        mean, std = estimate_mean_std(train_files, channels, image_size)
    spec = TransformSpec(
        image_size, channels, tuple(mean), tuple(std), augment, interpolation, crop_pct, float(random_erasing)
    )
    build_transform(spec, train=True)  # a bad recipe fails here, not in a worker
    return StreamingDataModule(
        name, train_files, val_files, test_files, classes, spec, batch_size, num_workers, skip_bad_files, mixer
    )


def _carve_files(files: FileSplit, fraction: float, seed: int) -> tuple[FileSplit, FileSplit]:
    """The same stratified cut as the in-memory path, on the file list."""
    keep, carved = stratified_split(Split(torch.arange(len(files)), files.targets), fraction, seed)
    return (files.subset(part.images.tolist()) for part in (keep, carved))
