"""Teacher weights saved by other projects, mapped onto kdlab's models and loaded with ``weights_only=True``.

Layouts (``teacher.checkpoint_format``; ``auto`` detects them):

- ``repdistiller`` / ``mdistiller``: ``{"model": state_dict, "epoch", "best_acc", "optimizer"}`` (their released
  CIFAR-100 teachers); kdlab's CIFAR zoo keeps RepDistiller's module names, so the keys map one to one;
- ``timm``: a bare state dict (hub weights) or ``{"state_dict": ..., "state_dict_ema": ...}`` (``train.py``);
- ``torchvision``: a bare state dict; torchvision's ResNets and timm's ``resnet*`` share every key name;
- ``kdlab``: a file kdlab wrote (:mod:`kdlab.models.files`).

DataParallel's ``module.`` prefix is dropped. Anything else fails with one line naming the keys that did not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.io import UNREADABLE_FILE_ERRORS
from kdlab.models.files import FORMAT as KDLAB_FORMAT

FORMATS = ("auto", "kdlab", "repdistiller", "mdistiller", "timm", "torchvision")
WRAPPER_KEYS = {"repdistiller": "model", "mdistiller": "model", "timm": "state_dict"}


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(weights_only=True)``: a file that needs pickled objects (argparse args, numpy) is refused."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except UNREADABLE_FILE_ERRORS as exc:
        raise ConfigError(
            f"checkpoint {path} cannot be read with weights_only=True ({type(exc).__name__}); re-save just its "
            "state dict (torch.save(ckpt['model'] or ckpt['state_dict'], path)) and pass that"
        ) from exc


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(isinstance(v, Tensor) for v in value.values())


def detect_format(payload: Any) -> str:
    """The layout of a loaded checkpoint: kdlab, repdistiller (= mdistiller's), timm or a bare state dict."""
    if isinstance(payload, Mapping) and payload.get("format") == KDLAB_FORMAT:
        return "kdlab"
    if isinstance(payload, Mapping) and _is_state_dict(payload.get("model")):
        return "repdistiller"
    if isinstance(payload, Mapping) and _is_state_dict(payload.get("state_dict")):
        return "timm"
    if _is_state_dict(payload):
        return "torchvision"  # a bare state dict: torchvision's and timm's hub files look the same
    raise ConfigError(
        "checkpoint layout not recognised: expected a state dict, {'model': state_dict} (RepDistiller, mdistiller), "
        "{'state_dict': ...} (timm train.py) or a kdlab model file"
    )


def foreign_state_dict(payload: Any, checkpoint_format: str) -> dict[str, Tensor]:
    """The model weights inside ``payload``, unwrapped and without DataParallel's ``module.`` prefix."""
    if checkpoint_format not in FORMATS:
        raise ConfigError(f"teacher.checkpoint_format must be one of {list(FORMATS)}, got {checkpoint_format!r}")
    layout = detect_format(payload) if checkpoint_format == "auto" else checkpoint_format
    if layout == "kdlab":
        state = payload["state_dict"]
    elif layout in WRAPPER_KEYS and not _is_state_dict(payload):
        state = payload.get(WRAPPER_KEYS[layout])
    else:
        state = payload
    if not _is_state_dict(state):
        raise ConfigError(f"checkpoint is not in the {layout} layout (no state dict where that project puts it)")
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_foreign(model: nn.Module, path: str | Path, checkpoint_format: str = "auto") -> str:
    """Load a foreign (or kdlab) checkpoint into ``model``; returns the layout found. Every key must fit."""
    payload = read_checkpoint(path)
    layout = detect_format(payload) if checkpoint_format == "auto" else checkpoint_format
    state = foreign_state_dict(payload, layout)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise ConfigError(f"checkpoint {path} ({layout}) does not fit {type(model).__name__}: {first}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise ConfigError(
            f"checkpoint {path} ({layout}) does not fit {type(model).__name__}: missing "
            f"{result.missing_keys[:4]}{' …' if len(result.missing_keys) > 4 else ''}, unexpected "
            f"{result.unexpected_keys[:4]}{' …' if len(result.unexpected_keys) > 4 else ''}"
        )
    return layout
