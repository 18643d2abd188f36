"""Lightning callbacks from the ``callbacks`` config group (lightning-hydra-template's ``instantiate_callbacks``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint

from kdlab.errors import ConfigError
from kdlab.instantiate import Node, build

BEST_CHECKPOINT = "model_checkpoint"  # the key whose checkpoint is "best" (tested at the end) and "last" (resumed)
DEFAULT_BEST = {
    "_target_": "pytorch_lightning.callbacks.ModelCheckpoint",
    "monitor": "val/acc",
    "mode": "max",
    "save_last": True,
    "enable_version_counter": False,
}


def build_callbacks(
    callbacks_cfg: Node | None, checkpoint_dir: Path, has_logger: bool
) -> tuple[ModelCheckpoint, list[Callback]]:
    """The run's best/last checkpoint (written to ``checkpoint_dir``, where resume looks) and the other callbacks.

    A ``LearningRateMonitor`` is left out when the run has no logger: Lightning refuses it there.
    """
    nodes: dict[str, Any] = dict(callbacks_cfg or {})
    node = nodes.pop(BEST_CHECKPOINT, None) or DEFAULT_BEST
    best = build(OmegaConf.merge(OmegaConf.create(DEFAULT_BEST), node, {"dirpath": str(checkpoint_dir)}))
    if not isinstance(best, ModelCheckpoint):
        raise ConfigError(f"callbacks.{BEST_CHECKPOINT} must build a ModelCheckpoint, got {type(best).__name__}")
    others = {name: build(n) for name, n in nodes.items() if n and n.get("_target_")}
    for name, made in others.items():
        if not isinstance(made, Callback):
            raise ConfigError(f"callbacks.{name} must build a Lightning Callback, got {type(made).__name__}")
    return best, [c for c in others.values() if has_logger or not isinstance(c, LearningRateMonitor)]
