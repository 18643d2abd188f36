"""``hydra/launcher=slurm`` composes into submitit's SLURM launcher with kdlab's defaults; no cluster needed."""

from __future__ import annotations

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the `launchers` extra")


def _hydra_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_slurm_launcher_composes_with_one_task_per_ddp_device() -> None:
    cfg = _hydra_config("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "hydra.launcher.partition=gpu")
    HydraConfig.instance().set_config(cfg)  # the launcher's ${hydra.sweep.dir} and ${hydra.job.name} resolve
    try:
        launcher = instantiate(cfg.hydra.launcher)
    finally:
        HydraConfig.instance().cfg = None  # leave no Hydra run state behind for other tests
    assert type(launcher).__name__ == "SlurmLauncher"
    params = launcher.params
    assert (params["tasks_per_node"], params["gpus_per_node"], params["nodes"]) == (4, 4, 1)
    assert params["partition"] == "gpu"
    assert params["max_num_timeout"] > 0  # a timed-out job is resubmitted and resumes from last.ckpt
    assert params["submitit_folder"].endswith("/.submitit/%j")


def test_single_device_runs_ask_for_one_task() -> None:
    cfg = _hydra_config("hydra/launcher=slurm")
    assert (cfg.hydra.launcher.tasks_per_node, cfg.hydra.launcher.gpus_per_node) == (1, 1)
