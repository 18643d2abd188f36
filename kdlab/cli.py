"""``python -m kdlab``: Hydra composes the config tree in ``conf/`` and hands it to :func:`kdlab.run.run`."""

from __future__ import annotations

import logging
import re
import sys
import traceback
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from kdlab import result_keys
from kdlab.errors import ConfigError
from kdlab.paths import config_dir

log = logging.getLogger("kdlab")


# Third-party lines a default run does not need, silenced once here, where every run (and every DDP rank) starts.
# Lightning prints its banners (GPU/TPU available, a "litlogger" tip, "limit_*_batches was configured") once per
# Trainer, and a run builds several (teacher, student, best-checkpoint test); its warnings still show.
# Lightning's per-Trainer banners (every helper Trainer prints them again) are dropped; its other lines stay.
LIGHTNING_BANNERS = re.compile(r"(GPU|TPU|HPU) available|💡 Tip|litlogger|`Trainer\(limit_\w+_batches")
# Deprecations inside the libraries themselves, not in kdlab's calls: nothing a user can act on.
THIRD_PARTY_DEPRECATIONS = (r".*LeafSpec.*is deprecated",)  # Lightning's pytree helper on torch >= 2.10


def _not_a_banner(record: logging.LogRecord) -> bool:
    return not LIGHTNING_BANNERS.search(record.getMessage())


def quiet_third_party() -> None:
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_not_a_banner)
    for message in THIRD_PARTY_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message)


def in_multirun() -> bool:
    """True inside a job of ``python -m kdlab -m …``, where one job's failure must not end the sweep."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    # imported here, not at the top, only so that --help and --cfg answer before torch and Lightning load
    from kdlab.run import record_failure, run

    quiet_third_party()
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    if not in_multirun() and HydraConfig.get().sweeper.get("params"):
        log.warning("hydra.sweeper.params (an hparams_search preset) only sweeps with -m; running one job")
    try:
        metrics = run(cfg, out_dir)
    except ConfigError as error:
        record_failure(out_dir, cfg, error)
        print(f"kdlab: error: {error}", file=sys.stderr)
        if in_multirun():  # the sweep goes on; kdlab.sweeps.callback.SweepReport sets the exit status at its end
            return float("nan")  # NaN, not None: optimising sweepers (Optuna) mark the trial failed and go on
        sys.exit(2)
    except Exception as error:
        record_failure(out_dir, cfg, error)
        log.error("run failed: %s\n%s", error, traceback.format_exc())
        if in_multirun():
            return float("nan")
        raise
    # what a sweeper (Optuna) optimises: the best validation accuracy, never a test number (that would tune on test)
    return metrics.get(result_keys.STUDENT_BEST_VAL_ACC)
