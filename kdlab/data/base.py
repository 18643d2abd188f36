"""What every kdlab data module shares, in memory or streamed: the batch-size check, the split sizes, the input
shape and the DDP ranks its samplers shard by."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytorch_lightning as pl

from kdlab.errors import ConfigError


class ImageDataModule(pl.LightningDataModule):
    """Base of :class:`~kdlab.data.datamodule.InMemoryDataModule` and
    :class:`~kdlab.data.streaming.StreamingDataModule`; subclasses set ``train`` and define ``in_chans`` and
    ``image_size``."""

    def __init__(self, name: str, num_classes: int, batch_size: int) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        self.name, self.num_classes, self.batch_size = name, num_classes, batch_size
        self.mixer: Any = None  # a kdlab.data.mixing.BatchMixer when Mixup/CutMix is on
        self.view_cycle = 0  # teacher-output replay (kdlab.teacher.replay): epoch e trains on view e mod view_cycle

    @property
    def in_chans(self) -> int:
        raise NotImplementedError

    @property
    def image_size(self) -> int:
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one model input."""
        return self.in_chans, self.image_size, self.image_size

    @property
    def num_train(self) -> int:
        return len(self.train)

    def data_epoch(self, epoch: int) -> int:
        """The epoch whose random draws (augmentation, erasing, mixing) epoch ``epoch`` uses: itself, or its replay
        view."""
        return epoch % self.view_cycle if self.view_cycle else epoch

    def shuffle_cycle(self) -> int:
        """With mixing under replay the batches themselves must repeat (a mixed image depends on its partner), so
        the shuffle cycles with the views; otherwise every epoch gets its own order."""
        return self.view_cycle if self.mixer is not None else 0

    def train_view_batches(self, view: int, device: Any = "cpu") -> Iterator[dict[str, Any]]:
        """Every training batch of data epoch ``view`` (one process), exactly as the student gets them: replay runs
        the teacher on these."""
        raise NotImplementedError

    def replay_fingerprint(self) -> dict[str, Any]:
        """What, besides seed, batching and recipe names, decides the training views' pixels: the training data's
        content and the input transform (keys the replayed teacher outputs)."""
        raise NotImplementedError

    def model_batches(self, split: str, order: Any = None, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def split_batches(self, split: str) -> Iterable[dict[str, Any]]:
        """Model-ready batches of ``split`` that can be iterated again and again (a report runs every model over the
        test set). Streamed sets decode anew each pass, so a 50k-image val set is never held whole; in-memory sets
        override this with a list."""
        return _Reiterable(self, split)

    def _ranks(self) -> tuple[int, int]:
        """(world size, rank) of the trainer this module feeds; (1, 0) outside one."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)


class _Reiterable:
    """``datamodule.model_batches(split)`` started afresh on every ``iter``."""

    def __init__(self, datamodule: ImageDataModule, split: str) -> None:
        self.datamodule, self.split = datamodule, split

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.datamodule.model_batches(self.split)
