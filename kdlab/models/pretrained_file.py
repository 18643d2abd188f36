"""Start a model from weights in a local file (``teacher.pretrained_file=PATH``), for clusters without internet.

Reads a timm or torchvision state dict (``.pth``/``.pt``, loaded with ``weights_only=True``) or a ``.safetensors``
file, unwraps the usual checkpoint wrappers, and replaces the classifier when the file's class count differs: the
head is left as the model initialised it, everything else must match.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.io import UNREADABLE_FILE_ERRORS

log = logging.getLogger(__name__)

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema")
PREFIXES = ("module.", "model.", "_orig_mod.")  # DDP, Lightning-style wrappers, torch.compile


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors in ``path``: safetensors, or a torch file read with ``weights_only=True``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"teacher.pretrained_file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            payload: Any = load_file(str(path), device="cpu")
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except UNREADABLE_FILE_ERRORS as exc:
        raise ConfigError(
            f"teacher.pretrained_file {path} is not a readable state dict ({type(exc).__name__})"
        ) from exc
    return _unwrap(payload, path)


def _unwrap(payload: Any, path: Path) -> dict[str, Tensor]:
    for key in WRAPPER_KEYS:
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            payload = payload[key]
            break
    if not isinstance(payload, dict) or not all(isinstance(v, Tensor) for v in payload.values()):
        raise ConfigError(f"teacher.pretrained_file {path} holds no state dict (a mapping of names to tensors)")
    for prefix in PREFIXES:
        if payload and all(k.startswith(prefix) for k in payload):
            payload = {k[len(prefix) :]: v for k, v in payload.items()}
    return payload


def head_parameter_names(model: nn.Module) -> set[str]:
    """Names of the classifier's parameters and buffers (timm's ``get_classifier``, else the last Linear)."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(head, nn.Module) or not list(head.parameters()):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        head = linears[-1] if linears else None
    if head is None:
        return set()
    owned = {id(t) for t in [*head.parameters(), *head.buffers()]}
    return {name for name, t in [*model.named_parameters(), *model.named_buffers()] if id(t) in owned}


def load_pretrained_file(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load ``path`` into ``model``; a head of another class count is skipped (kept as initialised). Returns what
    was done, for the run's results; any other missing, unexpected or misshapen tensor is a ConfigError."""
    state, own = read_state_dict(path), model.state_dict()
    head = head_parameter_names(model)
    replaced = sorted(k for k in head if k in state and state[k].shape != own[k].shape)
    state = {k: v for k, v in state.items() if k not in replaced}
    misshapen = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
    missing = sorted(set(own) - set(state) - set(replaced))
    unexpected = sorted(set(state) - set(own))
    if misshapen or missing or unexpected:
        examples = "; ".join(
            f"{what}: {keys[:3]}{' …' if len(keys) > 3 else ''}"
            for what, keys in (("misshapen", misshapen), ("missing", missing), ("unexpected", unexpected))
            if keys
        )
        raise ConfigError(f"teacher.pretrained_file {path} does not fit {type(model).__name__} ({examples})")
    model.load_state_dict(state, strict=False)
    if replaced:
        log.info("pretrained file %s: classifier %s replaced (other class count)", path, replaced)
    return {"teacher/pretrained_file": str(path), "teacher/head_replaced": bool(replaced)}
