"""A deliberately biased teacher training set (``teacher.bias``): how much of a known bias does a student take on?

Two skews, either or both; the student's data is untouched:

- ``drop: {3: 0.9}`` removes that fraction of a class's training images (under-represented class);
- ``relabel: {source: 4, target: 9, fraction: 0.3}`` gives that fraction of the source class's training images the
  target label (systematic label noise: the teacher learns to call some 4s 9s).

The chosen images follow ``seed`` (default 0), so a cached biased teacher is reproducible; ``teacher.bias`` is part of
the teacher's cache key because it is part of the teacher config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from kdlab.data.tensors import Split
from kdlab.errors import ConfigError

BIAS_KEYS = ("drop", "relabel", "seed")
RELABEL_KEYS = ("source", "target", "fraction")


def check_bias(bias: Any, num_classes: int) -> dict[str, Any]:
    """``teacher.bias`` as a plain dict, every value checked; a ConfigError names the first bad one."""
    plain = OmegaConf.to_container(bias, resolve=True) if isinstance(bias, DictConfig) else bias
    if not isinstance(plain, Mapping) or not plain or set(plain) - set(BIAS_KEYS):
        raise ConfigError(f"teacher.bias must be a mapping with keys from {list(BIAS_KEYS)}, got {plain!r}")
    for label, fraction in (plain.get("drop") or {}).items():
        _check_class(label, num_classes, f"teacher.bias.drop key {label!r}")
        _check_fraction(fraction, f"teacher.bias.drop.{label}")
    relabel = plain.get("relabel")
    if relabel is not None:
        if not isinstance(relabel, Mapping) or set(relabel) != set(RELABEL_KEYS):
            raise ConfigError(f"teacher.bias.relabel must have exactly the keys {list(RELABEL_KEYS)}, got {relabel!r}")
        _check_class(relabel["source"], num_classes, "teacher.bias.relabel.source")
        _check_class(relabel["target"], num_classes, "teacher.bias.relabel.target")
        if relabel["source"] == relabel["target"]:
            raise ConfigError(f"teacher.bias.relabel.source and target must differ, both are {relabel['source']}")
        _check_fraction(relabel["fraction"], "teacher.bias.relabel.fraction")
    return plain


def _check_class(label: Any, num_classes: int, where: str) -> None:
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < num_classes:
        raise ConfigError(f"{where} must be a class index in [0, {num_classes}), got {label!r}")


def _check_fraction(value: Any, where: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
        raise ConfigError(f"{where} must be a fraction in (0, 1], got {value!r}")


def biased_split(split: Split, bias: Mapping[str, Any]) -> Split:
    """A copy of ``split`` with the skews of a checked ``bias`` applied (drop first, then relabel)."""
    generator = torch.Generator().manual_seed(int(bias.get("seed", 0)))
    keep = torch.ones(len(split), dtype=torch.bool)
    for label, fraction in (bias.get("drop") or {}).items():
        keep[_chosen(split.targets == int(label), float(fraction), generator)] = False
    result = split.subset(keep.nonzero().flatten())
    relabel = bias.get("relabel")
    if relabel is not None:
        targets = result.targets.clone()
        targets[_chosen(targets == relabel["source"], float(relabel["fraction"]), generator)] = relabel["target"]
        result = Split(result.images, targets)
    return result


def _chosen(mask: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """A random ``fraction`` (rounded) of the indices where ``mask`` holds."""
    where = mask.nonzero().flatten()
    count = round(fraction * len(where))
    return where[torch.randperm(len(where), generator=generator)[:count]]
