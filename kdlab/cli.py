"""``python -m kdlab``: Hydra composes the config tree in ``conf/`` and hands it to :func:`kdlab.pipeline.run`."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
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
    """A failed job still leaves a readable results.json, so a sweep report can show it."""
    write_json(
        out_dir / "results.json",
        {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "config": OmegaConf.to_container(cfg, resolve=False),
        },
    )


@hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from kdlab.pipeline import run  # heavy imports after Hydra has parsed --help / --cfg

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        metrics = run(cfg, out_dir)
    except ConfigError as error:
        record_failure(out_dir, cfg, error)
        print(f"kdlab: error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        record_failure(out_dir, cfg, error)
        log.error("run failed: %s\n%s", error, traceback.format_exc())
        raise
    return metrics.get("student/test_acc")
