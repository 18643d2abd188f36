"""Image files streamed from disk: decoded and augmented (timm's transforms) in DataLoader worker processes.

Workers send uint8 images (a quarter of float32's bytes through shared memory, collation and pinning); they are
standardised, and randomly erased, where the model runs, as timm's prefetcher does. Memory stays bounded by what is in
flight (``num_workers × prefetch_factor`` batches), whatever the folder's size. Every random choice for a training
sample (crop box, flip, RandAugment ops, erasing) is seeded by (seed, epoch, sample index), so a batch does not depend
on the worker count, on prefetching, or on where a run resumed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from timm.data import create_transform
from timm.data.random_erasing import RandomErasing
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset, default_collate
from torchvision import transforms

from kdlab.data.base import ImageDataModule
from kdlab.data.mixing import BatchMixer, derived_seed, seeded_rngs
from kdlab.data.sampling import EpochTaggedSampler, ResumableDataLoader, ShardSampler, private_generator, shuffle_seed
from kdlab.data.tensors import InputTransform
from kdlab.errors import ConfigError

log = logging.getLogger(__name__)

LEGACY_AUGMENTATIONS = ("none", "crop_flip", "jitter")
AUTO_AUGMENT_PREFIXES = ("rand-", "augmix", "original", "v0", "3a")  # timm's auto_augment vocabulary
DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)
CHANNEL_MODES = {1: "L", 3: "RGB"}
ERASING_STREAM = 1  # random erasing draws from (seed, epoch, index, ERASING_STREAM): not the decode-side draws


def is_timm_augment(name: str) -> bool:
    return name == "rrc_flip" or name.startswith(AUTO_AUGMENT_PREFIXES)


@dataclass(frozen=True)
class TransformSpec:
    """How images become model inputs: size, normalisation and, for training, the augmentation recipe."""

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"
    interpolation: str = "bilinear"
    crop_pct: float | None = None
    random_erasing: float = 0.0


def _eval_transform(spec: TransformSpec) -> Any:
    """Resize the short side to ``size / crop_pct`` and centre-crop ``size`` (timm's eval transform), as uint8."""
    return create_transform(
        spec.size,
        is_training=False,
        interpolation=spec.interpolation,
        crop_pct=spec.crop_pct if spec.crop_pct is not None else 0.875,
        use_prefetcher=True,  # timm's name for "stop at a uint8 tensor, standardise on the device"
    )


def _shift_transform(spec: TransformSpec, padding: int, padding_mode: str) -> Any:
    """The in-memory recipes on decoded images: resize to ``size``, random ``padding``-px shift (and flip)."""
    steps = [
        transforms.Resize((spec.size, spec.size), interpolation=_interp(spec.interpolation)),
        transforms.RandomCrop(spec.size, padding=padding, padding_mode=padding_mode),
    ]
    if spec.augment == "crop_flip":
        steps.append(transforms.RandomHorizontalFlip())
    steps.append(transforms.PILToTensor())
    return transforms.Compose(steps)


def _interp(name: str) -> transforms.InterpolationMode:
    try:
        return transforms.InterpolationMode(name)
    except ValueError as exc:
        raise ConfigError(f"data.interpolation must be bilinear, bicubic or nearest, got '{name}'") from exc


def build_transform(spec: TransformSpec, train: bool) -> Any:
    """A PIL image -> a uint8 (C, H, W) tensor. Eval: resize + centre crop. Train: ``none`` as eval;
    ``crop_flip``/``jitter`` as in memory; ``rrc_flip``: RandomResizedCrop + flip; a timm auto-augment string
    (``rand-m9-mstd0.5-inc1``, ``augmix-m5-w4-d2`` …): the same plus that policy. Standardising and random erasing
    come later, on the device (:class:`DeviceInputs`)."""
    _interp(spec.interpolation)
    if not train or spec.augment == "none":
        return _eval_transform(spec)
    if spec.augment == "crop_flip":
        return _shift_transform(spec, max(1, spec.size // 8), "constant")
    if spec.augment == "jitter":
        return _shift_transform(spec, 2, "edge")
    try:
        return create_transform(
            spec.size,
            is_training=True,
            auto_augment=None if spec.augment == "rrc_flip" else spec.augment,
            color_jitter=None,
            interpolation=spec.interpolation,
            use_prefetcher=True,
        )
    except (AssertionError, KeyError, ValueError, IndexError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"data.augment={spec.augment} is not a timm augmentation ({reason})") from exc


def check_augment_name(name: str, key: str = "data.augment") -> str:
    """Today's names or timm's: ``rrc_flip``, ``rand-…``, ``augmix-…``, ``original``, ``v0``, ``3a``."""
    if name in LEGACY_AUGMENTATIONS:
        return name
    if is_timm_augment(name):
        build_transform(TransformSpec(32, 3, (0.5,) * 3, (0.5,) * 3, augment=name), train=True)  # parses it
        return name
    raise ConfigError(
        f"{key} must be one of {', '.join(LEGACY_AUGMENTATIONS)}, rrc_flip or a timm auto-augment string "
        f"(rand-m9-mstd0.5-inc1, augmix-m5-w4-d2, …), got '{name}'"
    )


def _flatten(img: Image.Image, mode: str) -> Image.Image:
    """``img`` in ``mode`` ("L" or "RGB"), transparency composited onto white as an image viewer shows it.

    PIL's plain ``convert`` drops alpha and keeps whatever colour transparent pixels happen to store (icons and
    cut-outs often hide black or a flat grey there), which would erase the shape the alpha channel draws.
    """
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert(mode)


def open_image(path: str, channels: int) -> Image.Image:
    """The decoded image in "L" (1 channel) or "RGB" (3), transparency composited onto white."""
    with Image.open(path) as img:
        img.load()
        return _flatten(img, CHANNEL_MODES[channels])


def unreadable_message(path: str, reason: str) -> str:
    return f"cannot read image {path} ({reason}); fix or remove it, or pass data.skip_bad_files=true"


class FileSplit:
    """One split of an image folder: the file paths in one NumPy byte-string array and the labels in a tensor.

    Not a list of Python tuples: every worker process touching such a list writes reference counts into its pages,
    so each worker ends up with a private copy (hundreds of MB per worker for ImageNet's 1.28M files).
    """

    def __init__(self, samples: Sequence[tuple[str, int]]) -> None:
        self.paths = np.array([os.fsencode(p) for p, _ in samples], dtype=np.bytes_)
        self.targets = torch.tensor([t for _, t in samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return os.fsdecode(self.paths[index]), int(self.targets[index])

    def subset(self, indices: Sequence[int]) -> FileSplit:
        return FileSplit([self[i] for i in indices])

    def manifest(self) -> str:
        """SHA-256 over every file's path, label, size and modification time: replacing, touching, adding or
        relabelling a file changes it (one ``stat`` per file, no decoding)."""
        digest = hashlib.sha256()
        for raw, target in zip(self.paths, self.targets.tolist(), strict=True):
            try:
                stat = os.stat(raw)
                facts = f"{stat.st_size}|{stat.st_mtime_ns}"
            except OSError:
                facts = "missing"
            digest.update(raw + f"|{target}|{facts}\n".encode())
        return digest.hexdigest()


class ImageFileDataset(Dataset):
    """Decodes one file per item. A key is an index or ``(epoch, index)`` (from :class:`EpochTaggedSampler`); the
    transform's random draws are seeded by (seed, epoch, index). An unreadable file gives a ``bad`` record instead
    of an exception, so the main process can name it (or skip it) instead of a worker dying with a traceback."""

    def __init__(self, split: FileSplit, transform: Any, channels: int, seed: int = 0) -> None:
        self.split, self.transform, self.channels, self.seed = split, transform, channels, seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        path, target = self.split[index]
        try:
            image = open_image(path, self.channels)
        except DECODE_ERRORS as exc:
            return {"bad": (path, f"{type(exc).__name__}: {exc}")}
        with seeded_rngs(derived_seed(self.seed, epoch, index)):
            pixels = self.transform(image)
        return {"image": pixels, "target": target, "index": index}


class DeviceInputs:
    """uint8 batches from the workers -> model inputs where the batch is: float, standardised by the train mean/std;
    training images then randomly erased (timm's ``RandomErasing``, constant fill, as its prefetcher does), each with
    draws seeded by (seed, epoch, sample index) so the erased box does not depend on batching or devices."""

    def __init__(self, spec: TransformSpec) -> None:
        mean, std = torch.tensor(spec.mean), torch.tensor(spec.std)
        self.standardise = InputTransform(255.0, spec.size, mean, std)
        self.erasing = float(spec.random_erasing)

    def __call__(self, images: Tensor) -> Tensor:
        return self.standardise(images)

    def train(self, images: Tensor, seed: int, epoch: int, indices: Sequence[int]) -> Tensor:
        images = self.standardise(images)
        if not self.erasing:
            return images
        eraser = RandomErasing(self.erasing, mode="const", device=images.device)
        state = random.getstate()  # timm draws from Python's global generator; leave it as it was
        try:
            for image, index in zip(images, indices, strict=True):
                random.seed(derived_seed(seed, epoch, index, ERASING_STREAM))
                eraser(image)
        finally:
            random.setstate(state)
        return images


def collate_samples(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Default collation of the readable samples; the unreadable ones listed under ``bad_files``."""
    good = [s for s in samples if "bad" not in s]
    bad = [s["bad"] for s in samples if "bad" in s]
    batch = default_collate(good) if good else {"image": torch.empty(0), "target": torch.empty(0, dtype=torch.long)}
    batch.setdefault("index", torch.empty(0, dtype=torch.long))
    batch["bad_files"] = bad
    return batch


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_num_workers(num_workers: int | str) -> int:
    """``auto``: one per core (at most 8); more than the cores is allowed but warned about (they only contend)."""
    cores = usable_cores()
    if num_workers == "auto":
        return min(8, cores)
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ConfigError(f"data.num_workers must be auto or an integer >= 0, got {num_workers!r}")
    if num_workers > cores:
        warnings.warn(
            f"data.num_workers={num_workers} is more than this machine's {cores} cores: the workers will contend",
            UserWarning,
            stacklevel=2,
        )
    return num_workers


class StreamingDataModule(ImageDataModule):
    """Train/val/test image files decoded in ``num_workers`` processes into ``{image, target, index}`` batches of
    uint8 images, pinned when a GPU is present; after the transfer they become model inputs on the device
    (:class:`DeviceInputs`), then Mixup/CutMix run there too (see :mod:`mixing`)."""

    streaming = True

    def __init__(
        self,
        name: str,
        train: FileSplit,
        val: FileSplit,
        test: FileSplit,
        num_classes: int,
        spec: TransformSpec,
        batch_size: int = 64,
        num_workers: int | str = "auto",
        skip_bad_files: bool = False,
        mixer: BatchMixer | None = None,
        prefetch_factor: int = 2,
    ) -> None:
        super().__init__(name, num_classes, batch_size)
        self.train, self.val, self.test = train, val, test
        self.spec, self.augment = spec, spec.augment
        self.num_workers = resolve_num_workers(num_workers)
        self.prefetch_factor = prefetch_factor
        self.skip_bad_files, self.skipped_files = skip_bad_files, set()
        self.mixer = mixer
        self.inputs = DeviceInputs(spec)

    @property
    def in_chans(self) -> int:
        return self.spec.channels

    @property
    def image_size(self) -> int:
        return self.spec.size

    def _dataset(self, split: FileSplit, train: bool) -> ImageFileDataset:
        spec = self.spec if self.augment == self.spec.augment else _with_augment(self.spec, self.augment)
        return ImageFileDataset(split, build_transform(spec, train), spec.channels, seed=shuffle_seed())

    def _loader_options(self) -> dict[str, Any]:
        workers = self.num_workers
        options: dict[str, Any] = {"num_workers": workers, "collate_fn": collate_samples}
        options["pin_memory"] = torch.cuda.is_available()
        if workers:
            options.update(prefetch_factor=self.prefetch_factor, persistent_workers=False)
        return options

    def train_dataloader(self) -> DataLoader:
        """Seeded per-epoch shuffle, resumable mid-epoch by delivered batches; ``(epoch, index)`` keys."""
        dataset, (world, rank) = self._dataset(self.train, train=True), self._ranks()
        sampler = self._train_sampler(dataset, world, rank)
        return ResumableDataLoader(
            dataset,
            self.batch_size,
            sampler=sampler,
            drop_last=self.mixer is not None,  # mixing pairs images: no odd last batch
            generator=private_generator(0),
            **self._loader_options(),
        )

    def _train_sampler(self, dataset: Dataset, world: int = 1, rank: int = 0) -> EpochTaggedSampler:
        """Tags each index with its data epoch (its replay view), shuffles by epoch (cycling with the views when
        mixing)."""
        seed, cycle = shuffle_seed(), self.shuffle_cycle()
        return EpochTaggedSampler(dataset, world, rank, seed=seed, cycle=cycle, tag_cycle=self.view_cycle)

    def train_view_batches(self, view: int, device: torch.device | str = "cpu") -> Iterator[dict[str, Any]]:
        """Every training batch of data epoch ``view`` (one process), decoded by the workers and made into inputs
        exactly as the student gets them: the same shuffle, batch boundaries, crops, erasing and mixing."""
        dataset = self._dataset(self.train, train=True)
        sampler = self._train_sampler(dataset)
        sampler.set_epoch(view)
        loader = DataLoader(
            dataset, self.batch_size, sampler=sampler, drop_last=self.mixer is not None, **self._loader_options()
        )
        for batch in loader:
            batch = self.on_before_batch_transfer(batch, 0)
            if not len(batch["index"]):
                continue
            batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            yield self.train_inputs(batch, view)

    def replay_fingerprint(self) -> dict[str, Any]:
        return {"train_files": self.train.manifest(), "transform": {**self.spec.__dict__, "augment": self.augment}}

    def _eval_loader(self, split: FileSplit, order: Tensor | None = None, batch_size: int | None = None) -> DataLoader:
        dataset: Dataset = self._dataset(split, train=False)
        (world, rank), sampler = self._ranks(), None
        if order is not None:
            dataset = Subset(dataset, [int(i) for i in order])
        elif world > 1:
            sampler = ShardSampler(dataset, world, rank)
        return DataLoader(dataset, batch_size or self.batch_size, sampler=sampler, **self._loader_options())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test)

    def model_batches(
        self, split: str, order: Tensor | None = None, batch_size: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        """Model-ready batches of ``split`` (eval transform, never augmented) in ``order``, decoded by the workers."""
        for batch in self._eval_loader(getattr(self, split), order, batch_size):
            batch = self.drop_bad_files(batch)
            yield {**batch, "image": self.inputs(batch["image"])}

    def drop_bad_files(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Name the first unreadable file (a ConfigError), or with ``skip_bad_files`` count and log each once."""
        bad = batch.pop("bad_files", [])
        for path, reason in bad:
            if not self.skip_bad_files:
                raise ConfigError(unreadable_message(path, reason))
            if path not in self.skipped_files:
                self.skipped_files.add(path)
                count = len(self.skipped_files)
                log.warning("skipping unreadable image %s (%s); %d skipped so far", path, reason, count)
        return batch

    def on_before_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        batch = self.drop_bad_files(batch)
        if self.inputs.erasing:
            batch["sample_keys"] = batch["index"].tolist()  # read on the CPU: no device sync per sample
        if self.mixer is not None and len(batch["index"]):
            batch["mix_key"] = int(batch["index"][0])
        return batch

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        trainer = self.trainer
        if trainer is None or not trainer.training:
            batch.pop("sample_keys", None)
            return {**batch, "image": self.inputs(batch["image"])}
        return self.train_inputs(batch, trainer.current_epoch)

    def train_inputs(self, batch: dict[str, Any], epoch: int) -> dict[str, Any]:
        """A decoded training batch (on its device) as the student gets it at ``epoch``: standardised, erased per
        sample from (seed, data epoch, index), then mixed per batch."""
        keys = batch.pop("sample_keys", None)
        if keys is None and self.inputs.erasing:
            keys = batch["index"].tolist()
        seed, data_epoch = shuffle_seed(), self.data_epoch(epoch)
        batch = {**batch, "image": self.inputs.train(batch["image"], seed, data_epoch, keys or [])}
        if self.mixer is not None and "mix_key" in batch:
            batch = self.mixer(batch, seed, data_epoch)
        return batch


def _with_augment(spec: TransformSpec, augment: str) -> TransformSpec:
    return TransformSpec(**{**spec.__dict__, "augment": check_augment_name(augment)})


def estimate_mean_std(split: FileSplit, channels: int, size: int, count: int = 256) -> tuple[tuple, tuple]:
    """Per-channel mean and std of up to ``count`` evenly spaced training images (resized, in [0, 1]): a streaming
    set is never decoded whole, and a few hundred images pin the statistics down to a per cent or so."""
    step = max(1, len(split) // count)
    to_tensor = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])
    images = []
    for path, _ in (split[i] for i in range(0, len(split), step)[:count]):
        try:
            images.append(to_tensor(open_image(path, channels)))
        except DECODE_ERRORS:
            continue  # reported, with its path, when a loader reaches it
    if not images:
        raise ConfigError("no readable training image to compute data.mean/data.std from; set them explicitly")
    stacked = torch.stack(images)
    mean, std = stacked.mean(dim=(0, 2, 3)), stacked.std(dim=(0, 2, 3)).clamp(min=1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())
