"""Class-paired training batches for CS-KD (Yun et al. CVPR 2020, arXiv:2003.13964): each sample with a class-mate.

A batch of B sampled indices becomes 2B rows: the B anchors, then one partner per anchor drawn uniformly from the
training samples of the anchor's class (possibly the anchor itself), as the authors' ``PairBatchSampler`` does.
The partner is a pure function of (seed, epoch, anchor index), so the batches do not depend on workers, devices or
where a run resumed; the anchors come from the usual resumable shuffle, whose position counts anchors.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from kdlab.data.augment import sample_keys
from kdlab.data.tensors import Split

PARTNER_SEED_OFFSET = 0x5EED_0C5D  # partner draws use their own key stream, independent of the augmentation keys
PARTNER_KEY = "partner"  # batch key: a bool row mask, True on the partner half


class ClassPairedDataset(Dataset):
    """Indexes a :class:`Split` by ``(epoch, index)`` keys (from ``EpochTaggedSampler``) a batch at a time and
    returns anchors followed by their class-mates, with ``batch["partner"]`` marking the second half."""

    def __init__(self, split: Split, seed: int) -> None:
        self.split, self.seed = split, seed
        targets = split.targets.long()
        self.by_class = torch.argsort(targets, stable=True)  # sample indices grouped by class
        counts = torch.bincount(targets)
        self.class_count = counts
        self.class_start = torch.cumsum(counts, 0) - counts

    def __len__(self) -> int:
        return len(self.split)

    def partners(self, index: Tensor, epoch: int) -> Tensor:
        """One uniformly drawn same-class sample per index, fixed by (seed, epoch, index)."""
        keys = sample_keys(self.seed + PARTNER_SEED_OFFSET, epoch, index)
        classes = self.split.targets[index].long()
        offset = keys % self.class_count[classes]
        return self.by_class[self.class_start[classes] + offset]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Tensor]:
        return self.__getitems__([key])

    def __getitems__(self, keys: list[tuple[int, int]]) -> dict[str, Tensor]:
        epoch = int(keys[0][0])  # a batch never spans two epochs
        anchors = torch.as_tensor([index for _, index in keys], dtype=torch.long)
        rows = torch.cat([anchors, self.partners(anchors, epoch)])
        partner = torch.arange(len(rows)) >= len(anchors)
        return {"image": self.split.images[rows], "target": self.split.targets[rows], "index": rows, "partner": partner}
