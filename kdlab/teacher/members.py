"""``teacher=ensemble``: members named by teacher config, each built, trained or loaded, and cached as a single teacher.

A member is the name of a file in ``conf/teacher/`` or a mapping ``{config: <name>, <key>: <value>, …}`` whose keys
(``checkpoint``, ``max_epochs``, ``seed``, ``optim``, ``pretrained``) override that file. The ensemble's
``max_epochs`` trains every member that does not set its own, and a member trains under the run's seed unless it
sets ``seed``. A member's cache key is built from exactly the node ``teacher=<name>`` composes, so an ensemble
reuses teachers cached by single-teacher runs, and the reverse.
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from kdlab.errors import ConfigError
from kdlab.models.ensemble import TeacherEnsemble
from kdlab.models.factory import build_model
from kdlab.paths import config_dir

MEMBER_KEYS = {"config", "checkpoint", "max_epochs", "seed", "pretrained", "optim"}


def _teacher_dir() -> Path:
    return Path(config_dir()) / "teacher"


def _load_member(entry: Any) -> tuple[DictConfig, dict[str, Any]]:
    overrides = OmegaConf.to_container(entry, resolve=True) if isinstance(entry, DictConfig) else entry
    if isinstance(overrides, str):
        overrides = {"config": overrides}
    if not isinstance(overrides, dict) or "config" not in overrides:
        raise ConfigError(f"teacher.members entries are teacher config names or {{config: <name>, …}}, got {entry!r}")
    unknown = set(overrides) - MEMBER_KEYS
    if unknown:
        allowed = ", ".join(sorted(MEMBER_KEYS))
        raise ConfigError(f"teacher.members entry {overrides} has unknown key(s) {sorted(unknown)}; allowed: {allowed}")
    name = str(overrides.pop("config"))
    path = _teacher_dir() / f"{name}.yaml"
    if name == "ensemble" or not path.is_file():
        choices = sorted(p.stem for p in _teacher_dir().glob("*.yaml") if p.stem != "ensemble")
        raise ConfigError(f"teacher.members: '{name}' is not a teacher config; choose from {', '.join(choices)}")
    return OmegaConf.load(path), overrides


def member_configs(members: Any, max_epochs: int | None = None) -> list[DictConfig]:
    """One full teacher node per member (as ``teacher=<name>`` composes it), overrides applied; ``seed`` kept aside."""
    if not isinstance(members, list | ListConfig) or not members:
        raise ConfigError(f"teacher.members must be a non-empty list of teacher configs, got {members!r}")
    nodes = []
    for entry in members:
        node, overrides = _load_member(entry)
        if max_epochs is not None:
            node.max_epochs = max_epochs
        nodes.append(OmegaConf.merge(node, overrides))
    return nodes


def member_labels(nodes: list[DictConfig]) -> list[str]:
    """Member names for the results; a repeated name gets its position (``resnet18.0``, ``resnet18.1``)."""
    counts = Counter(str(n.name) for n in nodes)
    return [str(n.name) if counts[str(n.name)] == 1 else f"{n.name}.{i}" for i, n in enumerate(nodes)]


def build_ensemble_teacher(
    members: Any,
    combine: str,
    weights: Any,
    temperature: float,
    num_classes: int,
    in_chans: int,
) -> TeacherEnsemble:
    """The ``_target_`` of ``conf/teacher/ensemble.yaml``: every member's architecture, untrained, in one module."""
    nodes = member_configs(members)
    models = [build_model(node.model, num_classes, in_chans, role="teacher member") for node in nodes]
    weights = list(weights) if weights is not None else None
    return TeacherEnsemble(models, member_labels(nodes), combine, weights, temperature)


def member_run_config(cfg: DictConfig, node: DictConfig) -> DictConfig:
    """The run config as ``teacher=<member>`` would give it, so the member is trained and cached as a single teacher."""
    run = copy.deepcopy(cfg)
    with open_dict(run):
        seed = node.pop("seed", None)
        run.teacher = node
        if seed is not None:
            run.seed = int(seed)
    return run


def reject_teacher_list() -> None:
    """``teacher=[a,b]`` is Hydra's list-of-options syntax: it merges both files into one teacher (the last wins)."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    listed = [o for o in hydra_cfg.overrides.task if o.split("=", 1)[0].lstrip("+~") == "teacher" and "[" in o]
    if listed and hydra_cfg.runtime.choices.get("teacher") is None:
        names = listed[0].split("=", 1)[1]
        raise ConfigError(
            f"{listed[0]} merges those teacher configs into one (Hydra's list-of-options syntax); "
            f"for an ensemble use: teacher=ensemble 'teacher.members={names}'"
        )
