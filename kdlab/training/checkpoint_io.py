"""Lightning checkpoints written atomically on local disk and read back safely (``weights_only=True``).

Lightning's own ``_atomic_save`` goes through an fsspec transaction whose local temp file lives in the system temp
dir and is moved with ``shutil.move`` without fsync: across file systems that is a copy, which a kill can tear.
Here the temp file sits beside the target and is renamed over it (:func:`kdlab.io.atomic_write`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO
from typing_extensions import override

from kdlab.errors import ConfigError
from kdlab.io import UNREADABLE_FILE_ERRORS, atomic_write


def _first_sentence(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:160]


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(..., weights_only=True)`` on CPU; a missing, torn or foreign file becomes a one-line error."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"checkpoint {path} does not exist") from None
    except UNREADABLE_FILE_ERRORS as exc:
        raise ConfigError(
            f"checkpoint {path} is corrupt or not a Lightning checkpoint "
            f"({type(exc).__name__}: {_first_sentence(exc)}); delete it, or pass resume=false to start this run over"
        ) from exc


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning training checkpoint (weights, loops, optimiser), checked to be one."""
    checkpoint = read_checkpoint(path)
    if not isinstance(checkpoint, dict) or not {"state_dict", "loops", "optimizer_states"} <= set(checkpoint):
        raise ConfigError(
            f"checkpoint {path} is not a Lightning training checkpoint (no state_dict/loops/optimizer_states); "
            "delete it, or pass resume=false to start this run over"
        )
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with a write-then-rename save for local paths and a checked, weights-only load."""

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # remote (s3://, gs://): Lightning's fsspec transaction is the atomic primitive there
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_write(path, lambda handle: torch.save(checkpoint, handle))

    @override
    def load_checkpoint(
        self, path: Any, map_location: Callable | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return read_checkpoint(path)


def best_score(callback: ModelCheckpoint) -> float | None:
    """The best monitored value; after a spawn-based DDP fit Lightning returns only the path, so read the file."""
    if callback.best_model_score is not None:
        return float(callback.best_model_score)
    if not callback.best_model_path or not Path(callback.best_model_path).is_file():
        return None
    state = read_checkpoint(callback.best_model_path).get("callbacks", {}).get(callback.state_key, {})
    score = state.get("best_model_score")
    return float(score) if score is not None else None
