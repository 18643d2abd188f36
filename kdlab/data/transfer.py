"""A transfer set that differs from the teacher's training set: the student's training split without some classes.

Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network" (arXiv:1503.02531), §3: a student
distilled on MNIST with every 3 removed from the transfer set still recognises most test 3s, because the teacher's
soft targets on other digits say how "3-like" they are ("dark knowledge"); raising the 3's output bias afterwards
recovers most of the rest. ``data.transfer_exclude_classes`` drops classes, ``data.transfer_include_classes`` keeps
only the listed ones; both touch the student's training split only — the teacher trains on everything, and the
validation and test splits keep every class (the bias fix is chosen on validation).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.errors import ConfigError

TRANSFER_KEYS = ("transfer_exclude_classes", "transfer_include_classes")


def data_source_config(data: DictConfig) -> DictConfig:
    """The data config without the transfer keys: what builds the data module and keys the teacher's cache."""
    plain = OmegaConf.to_container(data, resolve=True)
    return OmegaConf.create({k: v for k, v in plain.items() if k not in TRANSFER_KEYS})


def omitted_classes(data: DictConfig, num_classes: int) -> list[int]:
    """The classes the student's transfer set leaves out (sorted), checked against ``num_classes``; [] for none."""
    exclude, include = (data.get(key) for key in TRANSFER_KEYS)
    if exclude is not None and include is not None:
        raise ConfigError(
            f"set one of data.transfer_exclude_classes ({list(exclude)}) and data.transfer_include_classes "
            f"({list(include)}), not both"
        )
    if exclude is None and include is None:
        return []
    key = TRANSFER_KEYS[0] if exclude is not None else TRANSFER_KEYS[1]
    listed = _class_list(exclude if exclude is not None else include, key, num_classes)
    omitted = sorted(listed) if exclude is not None else sorted(set(range(num_classes)) - set(listed))
    if num_classes - len(omitted) < 2:
        raise ConfigError(
            f"data.{key}={listed} leaves {num_classes - len(omitted)} of {num_classes} classes in the transfer set: "
            "the student needs at least 2 to train on"
        )
    return omitted


def _class_list(value, key: str, num_classes: int) -> list[int]:
    values = list(value) if OmegaConf.is_list(value) or isinstance(value, list | tuple) else [value]
    bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < num_classes]
    if bad or not values:
        raise ConfigError(f"data.{key} must be a non-empty list of class indices in [0, {num_classes}), got {values}")
    return sorted(set(values))


def restrict_transfer_set(datamodule: InMemoryDataModule, omitted: list[int]) -> None:
    """Drop the ``omitted`` classes' images and labels from the training split (call it after the teacher trained)."""
    if not omitted:
        return
    targets = datamodule.train.targets
    keep = ~torch.isin(targets, torch.as_tensor(omitted, dtype=targets.dtype))
    datamodule.train = datamodule.train.subset(keep.nonzero().flatten())
