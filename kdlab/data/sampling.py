"""Samplers that make a run resumable mid-epoch and shard it across DDP ranks, using Lightning's own hooks.

Lightning calls ``set_epoch`` on a :class:`~torch.utils.data.DistributedSampler` at each epoch start, keeps a
``DistributedSampler`` it finds instead of injecting its own, and saves/loads the ``state_dict`` of a train loader
that has one ("resumable dataloader"). So the shuffle order is a pure function of (seed, epoch) and a restored
loader skips exactly the batches the killed run had already trained on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def shuffle_seed() -> int:
    """The run's seed as Lightning publishes it (``PL_GLOBAL_SEED``, set by ``seed_everything``); 0 if unset."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


class ResumableShuffleSampler(DistributedSampler):
    """Shuffles with a generator seeded by ``seed + epoch`` (never the global RNG); remembers how far it got.

    ``state_dict`` holds the epoch and how many indices this rank has handed out in it; after ``load_state_dict``
    the next pass over the same epoch skips those, so a resumed run sees the batches the killed run had not.
    With ``num_replicas > 1`` each rank takes every ``num_replicas``-th index, as ``DistributedSampler`` does.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0, cycle: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.yielded = 0
        self._skip: dict[str, int] | None = None
        self.cycle = cycle  # > 0: epoch e shuffles as epoch e mod cycle (teacher-output replay with mixing)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch % self.cycle if self.cycle else epoch)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start = 0
        if self._skip is not None and self._skip["epoch"] == self.epoch:
            start = min(self._skip["yielded"], len(indices))
        self._skip = None
        self.yielded = start
        for index in indices[start:]:
            self.yielded += 1
            yield index

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.epoch), "yielded": int(self.yielded), "seed": int(self.seed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = {"epoch": int(state["epoch"]), "yielded": int(state["yielded"])}

    def resume_offset(self) -> int:
        """Where the next pass over ``self.epoch`` starts: the restored position, else 0."""
        if self._skip is not None and self._skip["epoch"] == self.epoch:
            return min(self._skip["yielded"], self.num_samples)
        return 0


class EpochTaggedSampler(ResumableShuffleSampler):
    """Yields ``(epoch, index)``: a dataset that draws random augmentations per sample seeds them from the pair, so
    they do not depend on which worker process (or which copy of the dataset) decodes the sample. ``tag_cycle`` > 0
    tags epoch e as e mod tag_cycle (teacher-output replay: epoch e draws view e mod V's augmentations)."""

    def __init__(self, *args: Any, tag_cycle: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag_cycle, self.tag = tag_cycle, 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.tag = epoch % self.tag_cycle if self.tag_cycle else epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        tag = int(self.tag)
        for index in super().__iter__():
            yield tag, index


class ShardSampler(DistributedSampler):
    """Evaluation shards without padding: rank ``r`` takes indices ``r, r + n, …`` so every sample counts once.

    Lightning's own choice for evaluation (a padded ``DistributedSampler``) repeats samples to even the ranks out,
    which biases accuracy; torchmetrics sums the per-rank counts, so uneven shards give the exact global value.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))  # type: ignore[arg-type]
        self.total_size = len(dataset)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples


class ResumableDataLoader(DataLoader):
    """A DataLoader whose sampler state rides in Lightning's checkpoint (it has ``state_dict``/``load_state_dict``).

    The saved position counts the batches this loader has *delivered* (times the batch size), not the indices the
    sampler has handed out: with worker processes the sampler runs ``num_workers × prefetch_factor`` batches ahead,
    and those prefetched batches have not been trained on.
    """

    _delivered: int | None = None  # sampler positions consumed by delivered batches in the current pass

    def __iter__(self) -> Iterator[Any]:
        self._delivered = self.sampler.resume_offset()  # type: ignore[union-attr]
        for batch in super().__iter__():
            self._delivered = min(self._delivered + self.batch_size, len(self.sampler))  # type: ignore[arg-type]
            yield batch

    def state_dict(self) -> dict[str, Any]:
        state = self.sampler.state_dict()  # type: ignore[union-attr]
        if self._delivered is not None:
            state["yielded"] = int(self._delivered)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)  # type: ignore[union-attr]


def private_generator(seed: int) -> torch.Generator:
    """A generator for the DataLoader's worker base seed, so creating an iterator never draws from the global RNG."""
    return torch.Generator().manual_seed(seed)
