"""Reference computations the tests compare kdlab's reported numbers against, written without kdlab's evaluators."""

from __future__ import annotations

import timm
import torch

from kdlab.models.files import load_into


def file_test_logits(path: str, data, count: int, name: str = "test_resnet") -> torch.Tensor:
    """Logits of the timm model saved at ``path`` on the first ``count`` (model-ready) test images of ``data``."""
    model = timm.create_model(name, num_classes=data.num_classes, in_chans=data.in_chans)
    load_into(model, path, name, data.num_classes, data.in_chans)
    with torch.no_grad():
        return model.eval()(next(data.model_batches("test", batch_size=count))["image"])


def accuracy(scores: torch.Tensor, targets: torch.Tensor) -> float:
    return float((scores.argmax(dim=-1) == targets).float().mean())
