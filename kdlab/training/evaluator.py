"""Testing one model on a data split: the same accuracy metrics as a distillation run, without optimiser or terms.

Used for teachers, ensemble members and born-again generations, which are tested but never trained here.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch.nn.functional as F
from torch import nn

from kdlab.instantiate import Node
from kdlab.terms.base import Batch
from kdlab.training.module import metric_collection
from kdlab.training.trainer import make_trainer


class ModelTester(pl.LightningModule):
    """A test-only Lightning module around ``model``: ``test/acc``, ``test/acc_top5`` and ``test/loss_ce``."""

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.test_metrics = metric_collection(num_classes, "test/")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        logits, y = self.model(batch["image"]), batch["target"]
        self.test_metrics.update(logits, y)
        self.log("test/loss_ce", F.cross_entropy(logits, y), on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log_dict(self.test_metrics, on_epoch=True)


def evaluate_model(model: nn.Module, datamodule: pl.LightningDataModule, trainer_cfg: Node) -> dict[str, float]:
    """Test ``model`` on ``datamodule``'s test split with the run's trainer limits, without logging."""
    trainer = make_trainer(trainer_cfg, Path("."), quiet=True, enable_progress_bar=False)
    tester = ModelTester(model, datamodule.num_classes)
    return trainer.test(tester, datamodule=datamodule, verbose=False)[0]
