"""kdlab's model files: a plain dict of tensors and primitives, saved atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdlab.errors import ConfigError
from kdlab.io import UNREADABLE_FILE_ERRORS, atomic_write

FORMAT = "kdlab.model/1"


def save_model(path: str | Path, model: nn.Module, name: str, num_classes: int, in_chans: int, **meta: Any) -> Path:
    """Write ``model``'s weights with what is needed to check them against an architecture on load."""
    payload = {
        "format": FORMAT,
        "name": name,
        "num_classes": int(num_classes),
        "in_chans": int(in_chans),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def load_model_file(path: str | Path) -> dict[str, Any]:
    """Read a kdlab model file safely, or explain what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except UNREADABLE_FILE_ERRORS as exc:
        raise ConfigError(
            f"checkpoint {path} is corrupt or not a kdlab model file ({type(exc).__name__}); "
            "delete it (a cached teacher is retrained on the next run) or point to another file"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ConfigError(
            f"checkpoint {path} is not a kdlab model file (expected format {FORMAT}); point to a file kdlab wrote "
            "(a run's student.pt or a cached teacher)"
        )
    return payload


def load_into(
    model: nn.Module, path: str | Path, name: str, num_classes: int, in_chans: int, data: str | None = None
) -> dict[str, Any]:
    """Load a kdlab model file into ``model`` after checking architecture, class count, input channels and, when
    ``data`` is given and the file records it, the data set it was trained on."""
    payload = load_model_file(path)
    check_data(payload, path, data)
    expected = {"name": name, "num_classes": num_classes, "in_chans": in_chans}
    found = {k: payload[k] for k in expected}
    if found != expected:
        diff = ", ".join(f"{k}={found[k]} (this run needs {v})" for k, v in expected.items() if found[k] != v)
        raise ConfigError(f"checkpoint {path} does not match this run: {diff}")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ConfigError(f"checkpoint {path} does not fit model {name}: {str(exc).splitlines()[0]}") from exc
    return payload


def check_data(payload: dict[str, Any], path: str | Path, data: str | None) -> None:
    """Refuse a model trained on another data set: same class count and channels do not make the same classes.
    Files without ``meta.data`` (written before it was recorded, or a run's student.pt) are not checked."""
    meta = payload.get("meta")
    trained_on = meta.get("data") if isinstance(meta, dict) else None
    if data is not None and trained_on is not None and trained_on != data:
        raise ConfigError(
            f"checkpoint {path} was trained on data '{trained_on}' (this run uses '{data}'); point "
            f"teacher.checkpoint to a model trained on '{data}', or set teacher.checkpoint=null to train one"
        )
