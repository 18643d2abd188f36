"""Test-only distillation terms, plugged in through ``_target_`` like any user term: one paces training so a test
can kill it mid-epoch, one turns non-finite at a chosen step."""

from __future__ import annotations

import time

from torch import Tensor

from kdlab.terms.base import Batch, DistillationTerm, PairSpec


class Pace(DistillationTerm):
    """Sleeps ``seconds`` per training step and returns a zero loss (give it weight 0)."""

    loss_names = ("pace",)

    def __init__(self, pair: PairSpec, seconds: float = 0.1) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, student, teacher, batch: Batch) -> dict[str, Tensor]:
        time.sleep(self.seconds)
        return {"pace": student.logits.new_zeros(())}


class NanAfter(DistillationTerm):
    """A finite loss until it has been called ``calls`` times, then NaN (or +Inf with ``value=inf``)."""

    loss_names = ("blowup",)

    def __init__(self, pair: PairSpec, calls: int = 3, value: str = "nan") -> None:
        super().__init__()
        self.calls, self.value, self.seen = calls, float(value), 0

    def forward(self, student, teacher, batch: Batch) -> dict[str, Tensor]:
        self.seen += 1
        loss = (student.logits - teacher.logits).pow(2).mean()
        return {"blowup": loss * self.value if self.seen > self.calls else loss}
