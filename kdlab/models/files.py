"""kdlab's model files: a plain dict of tensors and primitives, saved atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdlab.errors import ConfigError
from kdlab.io import atomic_write

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
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
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


def load_into(model: nn.Module, path: str | Path, name: str, num_classes: int, in_chans: int) -> dict[str, Any]:
    """Load a kdlab model file into ``model`` after checking architecture, class count and input channels."""
    payload = load_model_file(path)
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
