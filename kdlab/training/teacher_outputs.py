"""Where the teacher's outputs come from in a distillation step: the frozen teacher run on the batch, or a table.

With deterministic inputs (no random augmentation) the teacher maps each training sample to the same logits every
epoch, so they can be computed once and looked up by ``batch["index"]``: a KD step then costs what training the
student alone costs. :class:`TeacherOutputTable` holds such outputs; :func:`run_teacher` is the online path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kdlab.models.outputs import ModelOutputs
from kdlab.models.taps import forward_with_taps

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TeacherTaps:
    """What the distillation terms read from the teacher besides its logits: stage maps and the pooled embedding."""

    stages: tuple[int, ...] = ()
    embedding: bool = False

    @classmethod
    def of(cls, terms: Iterable) -> TeacherTaps:
        """The union of what every term asks for (``teacher_stages`` are resolved ``feature_info`` indices)."""
        terms = list(terms)
        stages = sorted({int(s) for t in terms for s in t.teacher_stages})
        return cls(tuple(stages), any(t.needs_embedding for t in terms))


def run_teacher(model: nn.Module, x: Tensor, stages: Sequence[int] = (), embedding: bool = False) -> ModelOutputs:
    """The teacher's outputs on ``x`` under ``inference_mode``, returned as ordinary tensors.

    Inference tensors cannot be saved for backward (an MSE hint against a teacher map would fail), so the outputs
    are cloned out of inference mode; the copy is of the outputs only, small next to the forward pass itself.
    """
    with torch.inference_mode():
        out = forward_with_taps(model, x, stages, embedding)
    return ModelOutputs(
        logits=out.logits.clone(),
        features={k: v.clone() for k, v in out.features.items()},
        embedding=None if out.embedding is None else out.embedding.clone(),
    )


class TeacherOutputTable:
    """The teacher's outputs for every sample of each split: logits for every split, stage maps and the pooled
    embedding for ``train`` only.

    A plain object rather than module buffers, so the table stays out of checkpoints and DDP never broadcasts it;
    it moves itself to the device of the first index it is asked for.
    """

    def __init__(self, logits: Mapping[str, Tensor], features: Mapping[int, Tensor], embedding: Tensor | None) -> None:
        self.splits = tuple(s for s in SPLITS if s in logits)
        self.stages = tuple(sorted(int(k) for k in features))
        self._tensors = {f"logits_{s}": logits[s] for s in self.splits}
        self._tensors.update({f"features_{s}": features[s] for s in self.stages})
        if embedding is not None:
            self._tensors["embedding"] = embedding

    @property
    def has_embedding(self) -> bool:
        return "embedding" in self._tensors

    def covers(self, split: str, stages: Sequence[int] = (), embedding: bool = False) -> bool:
        """Whether a lookup for ``split`` can serve these taps (taps are cached for ``train`` only)."""
        if split not in self.splits:
            return False
        if not stages and not embedding:
            return True
        return split == "train" and set(stages) <= set(self.stages) and (self.has_embedding or not embedding)

    def lookup(
        self, index: Tensor, split: str, stages: Sequence[int] = (), embedding: bool = False, epoch: int = 0
    ) -> ModelOutputs:
        """The rows ``index`` of ``split``: what :func:`run_teacher` would return for those samples (the inputs are
        the same every epoch, so ``epoch`` does not matter here; see :class:`~kdlab.training.replay_table.ReplayTable`
        for the table where it does)."""
        if not self.covers(split, stages, embedding):
            raise KeyError(f"teacher output table has no {split} outputs for stages {list(stages)}, {embedding=}")
        table = self._on(index.device)
        return ModelOutputs(
            logits=table[f"logits_{split}"][index],
            features={s: table[f"features_{s}"][index] for s in stages},
            embedding=table["embedding"][index] if embedding else None,
        )

    def _on(self, device: torch.device) -> dict[str, Tensor]:
        if any(t.device != device for t in self._tensors.values()):
            self._tensors = {k: t.to(device) for k, t in self._tensors.items()}
        return self._tensors

    def size(self, split: str) -> int:
        key = f"logits_{split}"
        return len(self._tensors[key]) if key in self._tensors else 0

    def tensors(self) -> dict[str, Tensor]:
        """Flat name → tensor dict on the CPU, the form written to disk."""
        return {k: t.cpu() for k, t in self._tensors.items()}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor]) -> TeacherOutputTable:
        logits = {k.removeprefix("logits_"): v for k, v in tensors.items() if k.startswith("logits_")}
        features = {int(k.removeprefix("features_")): v for k, v in tensors.items() if k.startswith("features_")}
        return cls(logits, features, tensors.get("embedding"))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._tensors.values())
