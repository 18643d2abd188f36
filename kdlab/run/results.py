"""What a run leaves behind in its folder: ``results.json`` for a completed run and for a failed one, with the Hydra
facts (group choices, overrides) a sweep report needs to place it."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from kdlab import result_keys
from kdlab.io import write_json


def hydra_choices() -> dict[str, str]:
    """Which file of each config group this run composed (``kd: response`` …), when run through Hydra."""
    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}


def hydra_overrides() -> list[str]:
    """The job's command-line overrides (``kd.temperature=8`` …), when run through Hydra."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def write_results(cfg: DictConfig, out_dir: Path, metrics: dict[str, Any]) -> None:
    """``results.json``: the flat metrics plus status, the group choices, the overrides and the resolved config."""
    results = {
        **metrics,
        result_keys.STATUS: "completed",
        "choices": hydra_choices(),
        "overrides": hydra_overrides(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json(out_dir / "results.json", results)


def record_failure(out_dir: Path, cfg: DictConfig, error: BaseException) -> None:
    """A failed job still leaves a readable results.json, so a sweep report can show it.

    A completed run's results are never replaced: a failed rerun in its directory writes ``results.failed.json``.
    """
    path = out_dir / "results.json"
    if path.is_file() and '"status": "completed"' in path.read_text(errors="replace"):
        path = out_dir / "results.failed.json"
    write_json(
        path,
        {
            result_keys.STATUS: "failed",
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
            "overrides": hydra_overrides(),
            "choices": hydra_choices(),
            "config": OmegaConf.to_container(cfg, resolve=False),
        },
    )
