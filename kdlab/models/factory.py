"""Build student and teacher networks from their config node: a timm name, or any ``nn.Module`` via ``_target_``."""

from __future__ import annotations

import difflib

import timm
from torch import nn

from kdlab.errors import ConfigError
from kdlab.instantiate import Node, build


def check_timm_name(name: str, role: str) -> None:
    """Fail early, with close matches, when ``name`` is not a timm model."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
    raise ConfigError(f"unknown {role} model '{name}': not a timm model name{hint}")


def build_model(model_cfg: Node, num_classes: int, in_chans: int, role: str) -> nn.Module:
    """Instantiate ``model_cfg`` (a ``_partial_`` node) with the data set's class and channel counts."""
    if model_cfg.get("_target_") == "timm.create_model":
        check_timm_name(str(model_cfg.model_name), role)
    try:
        model = build(model_cfg, num_classes=num_classes, in_chans=in_chans)
    except (OSError, RuntimeError) as exc:
        if not model_cfg.get("pretrained"):
            raise
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"could not load pretrained weights for {role} model {model_cfg.get('model_name')}: {first_line} "
            f"({role}.pretrained=true needs the model hub online, or its files in the local HF cache)"
        ) from exc
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"{role} model target {model_cfg.get('_target_')} returned {type(model).__name__}, not nn.Module"
        )
    return model
