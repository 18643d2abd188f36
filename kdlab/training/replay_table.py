"""Replayed teacher outputs: the teacher's logits (and, when a term reads it, its pooled embedding) for ``V``
augmented views of every training sample, memory-mapped.

Written by :mod:`kdlab.teacher.replay`; a student at epoch ``e`` trains on view ``e mod V`` (the data module draws
that view's augmentation and mixing), so looking up ``(e mod V, index)`` gives the outputs the teacher produced on
exactly the student's input. Only the rows a batch needs are read from disk (the page cache shares them between
the jobs of a sweep on one machine).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from kdlab.models.outputs import ModelOutputs

REPLAY_FORMAT = "kdlab.teacher_replay/1"
LOGITS_FILE, VALUES_FILE, INDICES_FILE, REST_FILE, EMBEDDING_FILE, META_FILE = (
    "logits.f16",
    "topk_values.f16",
    "topk_indices.i32",
    "rest_lse.f32",
    "embedding.f16",
    "meta.json",
)


def topk_with_rest(logits: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` largest logits, their class indices, and ``log Σ_{j ∉ top-k} exp(z_j)`` (the rest's mass)."""
    values, indices = logits.float().topk(k, dim=-1)
    rest = logits.float().scatter(-1, indices, float("-inf")).logsumexp(dim=-1)
    return values, indices, rest


def reconstruct_logits(values: Tensor, indices: Tensor, rest: Tensor, num_classes: int) -> Tensor:
    """Full logits from top-K + the rest's log-sum-exp: each of the ``C − K`` other classes gets
    ``rest − log(C − K)``. An approximation: at T = 1 the top-K probabilities and the rest's total probability are
    exact, but the rest is spread evenly; at other temperatures the rest's shape (not only its split) is lost."""
    others = num_classes - values.shape[-1]
    fill = rest - math.log(others) if others > 0 else torch.full_like(rest, float("-inf"))
    full = fill[..., None].expand(*values.shape[:-1], num_classes).clone()
    return full.scatter(-1, indices.long(), values.float())


def open_arrays(directory: Path, mode: str, v: int, n: int, c: int, k: int, d: int) -> dict[str, np.memmap]:
    """The replay directory's memory-mapped arrays (``mode`` "w+" to write them, "r" to read): fp16 logits
    ``(V, N, C)`` or the top-K values, indices and rest, plus the fp16 embedding ``(V, N, D)`` when ``d`` > 0."""
    layout = {"logits": (LOGITS_FILE, np.float16, (v, n, c))} if not k else {
        "values": (VALUES_FILE, np.float16, (v, n, k)),
        "indices": (INDICES_FILE, np.int32, (v, n, k)),
        "rest": (REST_FILE, np.float32, (v, n)),
    }  # fmt: skip
    if d:
        layout["embedding"] = (EMBEDDING_FILE, np.float16, (v, n, d))
    return {
        name: np.memmap(directory / file, dtype, mode, shape=shape) for name, (file, dtype, shape) in layout.items()
    }


class ReplayTable:
    """Reads a replay directory: ``meta.json`` plus fp16 logits ``(V, N, C)`` (or top-K values, indices, rest) and,
    when ``meta["embedding_dim"]`` is set, the fp16 pooled embedding ``(V, N, D)``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.meta = json.loads((self.directory / META_FILE).read_text())
        self.views, self.num_samples, self.num_classes = (int(x) for x in self.meta["shape"])
        self.topk = int(self.meta.get("topk") or 0)
        self.embedding_dim = int(self.meta.get("embedding_dim") or 0)
        self._arrays = self._open()

    def _open(self) -> dict[str, np.memmap]:
        return open_arrays(
            self.directory, "r", self.views, self.num_samples, self.num_classes, self.topk, self.embedding_dim
        )

    def covers(self, split: str, stages: Sequence[int] = (), embedding: bool = False) -> bool:
        """Training outputs only: evaluation is not augmented (the teacher runs on it online); terms that read stage
        maps run the teacher online; the embedding only when it was stored."""
        return split == "train" and not stages and (not embedding or bool(self.embedding_dim))

    def view_of(self, epoch: int) -> int:
        return epoch % self.views

    def logits(self, index: Tensor, epoch: int) -> Tensor:
        """The teacher's float32 logits for samples ``index`` of view ``epoch mod V``, on ``index``'s device."""
        rows = index.detach().cpu().numpy()
        view = self.view_of(epoch)
        if not self.topk:
            out = self._rows("logits", view, rows).float()
        else:
            values, indices, rest = (self._rows(name, view, rows) for name in ("values", "indices", "rest"))
            out = reconstruct_logits(values.float(), indices, rest, self.num_classes)
        return out.to(index.device, non_blocking=True)

    def _rows(self, name: str, view: int, rows: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(self._arrays[name][view, rows]))

    def lookup(
        self, index: Tensor, split: str, stages: Sequence[int] = (), embedding: bool = False, epoch: int = 0
    ) -> ModelOutputs:
        if not self.covers(split, stages, embedding):
            raise KeyError(f"replayed teacher outputs hold train logits (and embedding), not {split} {list(stages)}")
        pooled = None
        if embedding:
            pooled = self._rows("embedding", self.view_of(epoch), index.detach().cpu().numpy()).float()
            pooled = pooled.to(index.device, non_blocking=True)
        return ModelOutputs(logits=self.logits(index, epoch), features={}, embedding=pooled)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    def size(self, split: str) -> int:
        return self.num_samples if split == "train" else 0
