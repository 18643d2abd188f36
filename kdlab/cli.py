"""``python -m kdlab``: Hydra composes the config tree in ``conf/`` and hands it to :func:`kdlab.pipeline.run`."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from kdlab.errors import ConfigError
from kdlab.io import write_json

log = logging.getLogger("kdlab")


def config_dir() -> str:
    """``conf/`` beside the package in a checkout, or the copy packed inside the wheel."""
    here = Path(__file__).resolve().parent
    packed = here / "conf"
    return str(packed if packed.is_dir() else here.parent / "conf")


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
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
            **_hydra_facts(),
            "config": OmegaConf.to_container(cfg, resolve=False),
        },
    )


def _hydra_facts() -> dict:
    """The job's command-line overrides and group choices, which a sweep report needs to place a failed job."""
    if not HydraConfig.initialized():
        return {"overrides": [], "choices": {}}
    hydra_cfg = HydraConfig.get()
    choices = {k: str(v) for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    return {"overrides": list(hydra_cfg.overrides.task), "choices": choices}


def in_multirun() -> bool:
    """True inside a job of ``python -m kdlab -m …``, where one job's failure must not end the sweep."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from kdlab.pipeline import run  # heavy imports after Hydra has parsed --help / --cfg

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    if not in_multirun() and HydraConfig.get().sweeper.get("params"):
        log.warning("hydra.sweeper.params (an hparams_search preset) only sweeps with -m; running one job")
    try:
        metrics = run(cfg, out_dir)
    except ConfigError as error:
        record_failure(out_dir, cfg, error)
        print(f"kdlab: error: {error}", file=sys.stderr)
        if in_multirun():  # the sweep goes on; kdlab.multirun.SweepReport sets the exit status at its end
            return float("nan")  # NaN, not None: optimising sweepers (Optuna) mark the trial failed and go on
        sys.exit(2)
    except Exception as error:
        record_failure(out_dir, cfg, error)
        log.error("run failed: %s\n%s", error, traceback.format_exc())
        if in_multirun():
            return float("nan")
        raise
    return metrics.get("student/test_acc")
