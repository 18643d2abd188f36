"""Top-k accuracy over whatever batches the caller hands in (a DataLoader, a list, a generator)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from kdlab.errors import ConfigError
from kdlab.measure.inference import evaluating, model_device


def predict_logits(model: nn.Module, batches: Iterable[Mapping[str, Tensor]]) -> tuple[Tensor, Tensor]:
    """One pass in eval mode: the model's logits (float32, on CPU) and the targets, concatenated over ``batches``.

    Accuracy, inheritance and calibration are all computed from these, so a report runs each model once."""
    device = model_device(model)
    logits, targets = [], []
    with evaluating(model), torch.inference_mode():
        for batch in batches:
            logits.append(model(batch["image"].to(device)).float().cpu())
            targets.append(batch["target"].cpu())
    if not targets or sum(t.numel() for t in targets) == 0:
        raise ConfigError("accuracy needs at least one sample, but the batches were empty")
    return torch.cat(logits), torch.cat(targets)


def accuracy_from_logits(
    logits: Tensor, targets: Tensor, num_classes: int, top_k: Sequence[int] = (1, 5)
) -> dict[str, float | None]:
    """Micro-averaged top-k accuracy (``{"top1": …, "top5": …}``); a top-k with ``k >= num_classes`` is always 1,
    so it is reported as None (e.g. top-5 on a 5-class task)."""
    return {
        f"top{k}": float(MulticlassAccuracy(num_classes, top_k=k, average="micro")(logits, targets))
        if k < num_classes
        else None
        for k in top_k
    }


def evaluate_accuracy(
    model: nn.Module,
    batches: Iterable[Mapping[str, Tensor]],
    num_classes: int,
    top_k: Sequence[int] = (1, 5),
) -> dict[str, float | None]:
    """Micro-averaged top-k accuracy (``{"top1": …, "top5": …}``) over batches of ``{"image", "target"}``."""
    return accuracy_from_logits(*predict_logits(model, batches), num_classes, top_k)
