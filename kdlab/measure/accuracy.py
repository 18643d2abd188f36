"""Top-k accuracy over whatever batches the caller hands in (a DataLoader, a list, a generator)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from kdlab.errors import ConfigError
from kdlab.measure.inference import evaluating, model_device


def evaluate_accuracy(
    model: nn.Module,
    batches: Iterable[Mapping[str, Tensor]],
    num_classes: int,
    top_k: Sequence[int] = (1, 5),
) -> dict[str, float | None]:
    """Micro-averaged top-k accuracy (``{"top1": …, "top5": …}``) over batches of ``{"image", "target"}``.

    A top-k with ``k >= num_classes`` is always 1, so it is reported as None (e.g. top-5 on a 5-class task).
    """
    device = model_device(model)
    metrics = {
        k: MulticlassAccuracy(num_classes, top_k=k, average="micro").to(device) for k in top_k if k < num_classes
    }
    seen = 0
    with evaluating(model), torch.inference_mode():
        for batch in batches:
            logits = model(batch["image"].to(device))
            target = batch["target"].to(device)
            for metric in metrics.values():
                metric.update(logits, target)
            seen += target.numel()
    if seen == 0:
        raise ConfigError("accuracy needs at least one sample, but the batches were empty")
    return {f"top{k}": float(metrics[k].compute()) if k in metrics else None for k in top_k}
