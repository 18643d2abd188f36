"""A LightningDataModule over in-memory tensors, served in whole batches without worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from kdlab.data.augment import apply_augment, check_augment, sample_keys
from kdlab.data.base import ImageDataModule
from kdlab.data.mixing import BatchMixer
from kdlab.data.pairs import ClassPairedDataset
from kdlab.data.sampling import (
    EpochTaggedSampler,
    ResumableDataLoader,
    ResumableShuffleSampler,
    ShardSampler,
    private_generator,
    shuffle_seed,
)
from kdlab.data.tensors import InputTransform, Split, fingerprint
from kdlab.errors import ConfigError


class BatchedTensorDataset(Dataset):
    """Indexes a :class:`Split` a whole batch at a time (``__getitems__``) and yields dict batches with the index."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.__getitems__([i])

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"image": self.split.images[idx], "target": self.split.targets[idx], "index": idx}


def _already_collated(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return batch


def _check_classes(name: str, num_classes: int, train: Split) -> None:
    """A classifier needs two classes to tell apart, in the data and in what it trains on."""
    if num_classes < 2:
        raise ConfigError(
            f"data has a single class ({name}: num_classes={num_classes}): classification needs at least 2"
        )
    present = torch.unique(train.targets)
    if len(present) == 1:
        raise ConfigError(
            f"data has a single class in its training split ({name}: every training label is {int(present[0])} "
            f"of {num_classes} classes): classification needs at least 2"
        )


class InMemoryDataModule(ImageDataModule):
    """Train/val/test splits as (uint8) tensors; ``transform`` turns each batch into model inputs after it reaches the
    device, then augmentation runs on it. Outside Lightning, :meth:`model_batches` gives the same model inputs."""

    def __init__(
        self,
        name: str,
        train: Split,
        val: Split,
        test: Split,
        num_classes: int,
        batch_size: int = 64,
        augment: str = "none",
        transform: InputTransform | None = None,
        mixer: BatchMixer | None = None,
    ) -> None:
        super().__init__(name, num_classes, batch_size)
        _check_classes(name, num_classes, train)
        self.train, self.val, self.test = train, val, test
        self.augment = check_augment(augment)
        channels, size = int(train.images.shape[1]), int(train.images.shape[-1])
        self.transform = transform if transform is not None else InputTransform.identity(channels, size)
        self.mixer = mixer
        self.class_pairs = False  # CS-KD: each training batch holds its samples and a class-mate of each

    def pair_same_class(self) -> None:
        """Serve training batches as anchors + same-class partners (:mod:`kdlab.data.pairs`); a method that needs
        them (CS-KD) asks for it. Mixing would blend anchors with partners, so the two are refused together."""
        if self.mixer is not None:
            raise ConfigError(
                "data: class-paired batches (kd=cskd) cannot be mixed (mixup/cutmix); set data.mixup=0 data.cutmix=0"
            )
        self.class_pairs = True

    @property
    def in_chans(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        return self.transform.size

    def model_batches(
        self, split: str, order: Tensor | None = None, batch_size: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        """Model-ready batches (float, resized, standardised; never augmented) of ``split``, in ``order`` (default:
        the stored order), for everything that feeds a model outside Lightning (caches, reports, calibration)."""
        data: Split = getattr(self, split)
        order = torch.arange(len(data)) if order is None else torch.as_tensor(order, dtype=torch.long)
        for chunk in order.split(batch_size or self.batch_size):
            yield {"image": self.transform(data.images[chunk]), "target": data.targets[chunk], "index": chunk}

    def split_batches(self, split: str) -> list[dict[str, Tensor]]:
        """All model-ready batches of ``split``, held: a set that fits in memory is transformed once per report."""
        return list(self.model_batches(split))

    def _train_sampler(self, dataset: Dataset, world: int = 1, rank: int = 0) -> ResumableShuffleSampler:
        return ResumableShuffleSampler(dataset, world, rank, seed=shuffle_seed(), cycle=self.shuffle_cycle())

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        """Train: seeded per-epoch shuffle that resumes mid-epoch; eval: in order, unpadded shards under DDP."""
        dataset, (world, rank) = BatchedTensorDataset(split), self._ranks()
        if shuffle and self.class_pairs:
            dataset = ClassPairedDataset(split, shuffle_seed())
            sampler: ResumableShuffleSampler = EpochTaggedSampler(dataset, world, rank, seed=shuffle_seed())
        elif shuffle:
            sampler = self._train_sampler(dataset, world, rank)
        if shuffle:
            return ResumableDataLoader(
                dataset,
                self.batch_size,
                sampler=sampler,
                collate_fn=_already_collated,
                generator=private_generator(0),
                drop_last=self._drop_lone_last_sample(len(sampler), world),
            )
        sampler = ShardSampler(dataset, world, rank) if world > 1 else None
        return DataLoader(dataset, self.batch_size, sampler=sampler, collate_fn=_already_collated)

    def _drop_lone_last_sample(self, per_rank: int, world: int) -> bool:
        """True when each rank's last training batch would hold a single sample, which BatchNorm cannot train on
        (a variance of one value): that batch is dropped. Only a remainder of exactly one goes; the shuffle differs
        each epoch, so a different sample sits out each time; every rank holds the same count (the sampler pads),
        so under DDP all ranks drop alike; a resumed epoch skips whole batches, so it drops the same one."""
        if per_rank < 2:
            raise ConfigError(
                f"data: the training split ({len(self.train)} samples over {world} process(es)) gives each process "
                "a single sample: training needs at least 2 per batch"
            )
        return per_rank % self.batch_size == 1

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test, shuffle=False)

    def on_before_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        if self.mixer is not None and len(batch["index"]):
            batch = {**batch, "mix_key": int(batch["index"][0])}  # read on the CPU: no device sync
        return batch

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        training = self.trainer is not None and self.trainer.training
        if training:
            return self.train_inputs(batch, self.trainer.current_epoch)
        return {**batch, "image": self.transform(batch["image"])}

    def train_inputs(self, batch: dict[str, Any], epoch: int) -> dict[str, Any]:
        """A training batch as the student gets it at ``epoch``: transformed, augmented per sample from (seed, data
        epoch, index), then mixed per batch."""
        batch = {**batch, "image": self.transform(batch["image"])}
        seed, data_epoch = shuffle_seed(), self.data_epoch(epoch)
        if self.augment != "none":
            keys = sample_keys(seed, data_epoch, batch["index"])
            batch = {**batch, "image": apply_augment(self.augment, batch["image"], keys)}
        if self.mixer is not None and "mix_key" in batch:
            batch = self.mixer(batch, seed, data_epoch)
        return batch

    def replay_fingerprint(self) -> dict[str, Any]:
        t = self.transform
        return {
            "train_data": fingerprint([("images", self.train.images), ("targets", self.train.targets)]),
            "transform": {"scale": t.scale, "size": t.size, "mean": t.mean.tolist(), "std": t.std.tolist()},
        }

    def train_view_batches(self, view: int, device: torch.device | str = "cpu") -> Iterator[dict[str, Any]]:
        """Every training batch of data epoch ``view`` (one process), exactly as the student gets them: the same
        shuffle, batch boundaries, dropped last batch, augmentation and mixing. Replay runs the teacher on these."""
        dataset = BatchedTensorDataset(self.train)
        sampler = self._train_sampler(dataset)
        sampler.set_epoch(view)
        order = torch.as_tensor(list(sampler), dtype=torch.long)
        if self.mixer is not None and self._drop_lone_last_sample(len(order), 1):
            order = order[: len(order) - 1]  # mixed rows depend on the batch; unmixed ones cover every sample (DDP)
        for chunk in order.split(self.batch_size):
            batch = self.on_before_batch_transfer(dataset.__getitems__(chunk.tolist()), 0)
            batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            yield self.train_inputs(batch, view)
