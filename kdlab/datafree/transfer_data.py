"""The data-free student's data: synthetic training batches from a trained generator, real val/test for evaluation.

The student's data module has no training split at all: its ``train`` is a :class:`SealedTrainSplit`, which holds no
images and raises :class:`TrainingSplitRead` on any read, so anything that would reach for real training images
(a loader, calibration, a fine-tune) fails loudly instead of quietly using them. Every consumer of training batches
(``train_dataloader``, ``model_batches("train")``) gets generated images instead, labelled with the teacher's argmax
(the labels only feed ``train/acc``: kd=dafl gives cross-entropy weight 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from kdlab.data.datamodule import InMemoryDataModule


class TrainingSplitRead(RuntimeError):
    """Something tried to read real training images or labels in a data-free run."""


class SealedTrainSplit:
    """Stands where the training split was: a length (the synthetic samples per epoch) and nothing to read."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def _sealed(self, what: str) -> TrainingSplitRead:
        return TrainingSplitRead(f"data-free run (kd.transfer=generator): the training split's {what} were read")

    @property
    def images(self) -> Tensor:
        raise self._sealed("images")

    @property
    def targets(self) -> Tensor:
        raise self._sealed("labels")

    def subset(self, indices) -> SealedTrainSplit:
        raise self._sealed("samples")


class _SampleIds(Dataset):
    """Only the ids of one synthetic epoch's samples; the images are generated on the device per batch."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        return {"index": torch.as_tensor(indices, dtype=torch.long)}


def _ids_only(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return batch


class GeneratedDataModule(InMemoryDataModule):
    """``real``'s val/test splits and input transform; training batches from ``generator`` (frozen weights)."""

    def __init__(
        self, real: InMemoryDataModule, generator: nn.Module, teacher: nn.Module, steps_per_epoch: int, seed: int
    ) -> None:
        pl.LightningDataModule.__init__(self)
        self.name, self.num_classes, self.batch_size = real.name, real.num_classes, real.batch_size
        self.val, self.test, self.transform = real.val, real.test, real.transform
        self.train = SealedTrainSplit(steps_per_epoch * real.batch_size)
        self.augment, self.mixer, self.view_cycle = "none", None, 0
        self._in_chans = int(real.val.images.shape[1])  # never from the training split
        self.generator, self.teacher, self.seed = generator, teacher, seed
        for p in generator.parameters():
            p.requires_grad_(False)

    @property
    def in_chans(self) -> int:
        return self._in_chans

    def synthesise(self, index: Tensor, epoch: int, device: torch.device | str) -> dict[str, Tensor]:
        """Generated images for sample ids ``index`` of ``epoch`` (the same ids and epoch give the same noise),
        labelled with the teacher's argmax."""
        first = int(index[0]) if len(index) else 0
        noise = torch.Generator().manual_seed(hash((self.seed, epoch, first)) % 2**63)
        z = torch.randn(len(index), self.generator.latent_dim, generator=noise).to(device)
        self.generator.to(device)
        with torch.no_grad():
            images = self.generator(z)
            targets = self.teacher.to(device)(images).argmax(dim=1)
        return {"image": images, "target": targets, "index": index.to(device)}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_SampleIds(len(self.train)), self.batch_size, shuffle=False, collate_fn=_ids_only)

    def on_before_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        return batch

    def train_inputs(self, batch: dict[str, Any], epoch: int) -> dict[str, Any]:
        return self.synthesise(batch["index"], epoch, batch["index"].device)

    def model_batches(
        self, split: str, order: Tensor | None = None, batch_size: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        """As :meth:`InMemoryDataModule.model_batches`; for ``train``, generated batches (int8 calibration, pruning
        fine-tunes and reports never see a real training image)."""
        if split != "train":
            yield from super().model_batches(split, order, batch_size)
            return
        order = torch.arange(len(self.train)) if order is None else torch.as_tensor(order, dtype=torch.long)
        for chunk in order.split(batch_size or self.batch_size):
            yield {k: v.cpu() for k, v in self.synthesise(chunk, 0, "cpu").items()}

    def train_view_batches(self, view: int, device: torch.device | str = "cpu") -> Iterator[dict[str, Any]]:
        raise TrainingSplitRead("data-free run (kd.transfer=generator): teacher-output replay reads the training split")
