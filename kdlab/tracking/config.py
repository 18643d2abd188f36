"""What a W&B run is called and holds: its name, job type and tags, and its config as flat, sweep-safe keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from kdlab.paths import config_dir

JOB_TYPES = ("teacher", "distill", "baseline", "evaluate", "sweep-report")
IDENTITY_GROUPS = ("kd", "teacher", "student")  # always in a run's name, in this order
UNNAMED_GROUPS = ("logger", "hparams_search")  # how a run is logged or swept is not what it is


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The resolved config as dotted keys (``kd.temperature``, ``optim.optimizer.lr``): the same keys a Hydra
    override and a W&B sweep parameter use, so a sweep's values and kdlab's never sit side by side as two keys."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):  # an empty mapping holds no value: nothing to log
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run_config(config: Mapping[str, Any], choices: Mapping[str, str]) -> dict[str, Any]:
    """Flat config plus each group's choice under the group's name (``kd: dkd``), so dashboards group by method."""
    chosen = {group: name for group, name in choices.items() if name not in (None, "None")}
    return {**flat_config(config), **chosen}


def log_config(run: Any, config: Mapping[str, Any]) -> None:
    """Add ``config`` to the run, leaving out the keys a W&B sweep has set and locked: they already hold the swept
    value (kdlab ran with it), and W&B would only warn that it ignored the update."""
    locked = set(getattr(run.config, "_locked", {}))
    run.config.update({k: v for k, v in config.items() if k not in locked}, allow_val_change=True)


def default_choices() -> dict[str, str]:
    """Each group's default file, from the primary config's defaults list (``kd: response`` …)."""
    defaults = OmegaConf.load(Path(config_dir()) / "config.yaml").get("defaults", [])
    return {str(k): str(v) for entry in defaults if not isinstance(entry, str) for k, v in entry.items()}


def run_name(choices: Mapping[str, str], seed: int, defaults: Mapping[str, str] | None = None) -> str:
    """``<kd>-<teacher>-<student>``, then every other choice that differs from the defaults, then the seed:
    ``dkd-resnet32x4-resnet8x4-s1``, ``response-tiny-tiny-fast-s0``."""
    defaults = default_choices() if defaults is None else defaults
    parts = [str(choices[group]) for group in IDENTITY_GROUPS if group in choices]
    for group in sorted(set(choices) - set(IDENTITY_GROUPS) - set(UNNAMED_GROUPS)):
        if choices[group] not in (None, "None", defaults.get(group)):
            parts.append(str(choices[group]))
    return "-".join([*parts, f"s{seed}"])


def run_tags(user_tags: Sequence[str] | None, families: Sequence[str]) -> list[str]:
    """The user's ``tags=[…]`` and the kd families the run's terms come from (``response``, ``feature`` …)."""
    return list(dict.fromkeys([*(str(t) for t in user_tags or ()), *families]))
