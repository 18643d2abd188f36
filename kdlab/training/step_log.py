"""Training-loss logging that costs next to nothing per step.

Each ``LightningModule.log`` call costs Lightning about a millisecond of Python (moving its result record to the
value's device, metadata checks), five of them per step were a few per cent of a CPU KD step. The losses are
summed on their device instead; Lightning gets the step values only on the steps its logger writes
(``trainer.log_every_n_steps``) and the epoch means once per epoch, under the names it would have given them
(``train/loss_kd_step``, ``train/loss_kd_epoch``, …). No ``.item()``: nothing waits for the GPU.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


class RunningLosses:
    """Batch-size-weighted running sums of named scalar losses, kept as one tensor on the losses' device."""

    def __init__(self) -> None:
        self.names: tuple[str, ...] = ()
        self.sums: Tensor | None = None
        self.count = 0
        self.last: Tensor | None = None

    def add(self, losses: Mapping[str, Tensor], batch_size: int) -> None:
        self.last = torch.stack([v.detach().float() for v in losses.values()])
        if self.sums is None or tuple(losses) != self.names:
            self.names, self.sums, self.count = tuple(losses), torch.zeros_like(self.last), 0
        elif self.sums.device != self.last.device:  # restored from a checkpoint onto the CPU
            self.sums = self.sums.to(self.last.device)
        self.sums += self.last * batch_size
        self.count += batch_size

    def state_dict(self) -> dict:
        """Saved in checkpoints, so a run resumed mid-epoch reports the mean over the whole epoch."""
        sums = None if self.sums is None else self.sums.cpu()
        return {"names": list(self.names), "sums": sums, "count": self.count}

    def load_state_dict(self, state: Mapping) -> None:
        self.names, self.sums, self.count = tuple(state["names"]), state["sums"], int(state["count"])
        self.last = None

    def step_values(self) -> dict[str, Tensor]:
        return {f"{name}_step": value for name, value in zip(self.names, self.last, strict=True)}

    def pop_epoch_means(self) -> dict[str, Tensor]:
        """The epoch means (empty if nothing was added), then start over."""
        if self.sums is None or not self.count:
            return {}
        means = {f"{name}_epoch": value for name, value in zip(self.names, self.sums / self.count, strict=True)}
        self.sums, self.count = None, 0
        return means
