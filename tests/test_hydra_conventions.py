"""The Hydra + Lightning conventions users of lightning-hydra-template expect: callbacks, paths and debug groups, run
folders that say what ran, the job name, and a sweeper that optimises validation accuracy (Optuna preset)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, REPO, WHOLE_TEACHER, compose_config
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

from kdlab.errors import ConfigError
from kdlab.training.callbacks import build_callbacks

TINY = [o for o in FAST if not o.startswith("logger=")]


def kdlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kdlab", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_a_default_run_folder_says_what_ran_with_lr_curve_and_own_cache(tmp_path: Path) -> None:
    """No hydra.run.dir: the run lands in <paths.output_dir>/<kd>-<teacher>-<student>/<time>, logs kdlab.log, caches
    its teacher under paths.cache_dir, and the LR monitor (callbacks=default) writes the learning rate."""
    out, mine = f"paths.output_dir={tmp_path / 'out'}", f"paths.cache_dir={tmp_path / 'mine'}"
    proc = kdlab(*TINY, *WHOLE_TEACHER, "logger=csv", out, mine)  # a whole-epoch teacher: the cache takes it
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "out" / "response-tiny-tiny").iterdir()
    assert json.loads((run_dir / "results.json").read_text())["status"] == "completed"
    assert (run_dir / "kdlab.log").is_file()
    output = proc.stdout + proc.stderr
    assert "Tip:" not in output and "TPU available" not in output and "LeafSpec" not in output  # quiet by default
    assert list((tmp_path / "mine" / "teachers").glob("*.pt"))
    (metrics_csv,) = run_dir.rglob("metrics.csv")
    header = next(csv.reader(metrics_csv.open()))
    assert any(column.startswith("lr-") for column in header), header


def test_debug_fdr_runs_the_pipeline_with_a_private_teacher_cache(tmp_path: Path) -> None:
    """debug=fdr: one batch per split, no W&B, and the few-batch teacher never reaches the user's cache."""
    users_cache = Path(os.environ["KDLAB_CACHE"])
    proc = kdlab(*TINY, "logger=wandb", "debug=fdr", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "completed" and results["config"]["trainer"]["fast_dev_run"] is True
    assert (tmp_path / "run" / "teacher.pt").is_file()  # a fast_dev_run teacher is kept in the run, never cached
    assert not users_cache.exists() or not list(users_cache.rglob("*.pt"))
    assert not list((tmp_path / "run").rglob("*.wandb"))


@pytest.mark.parametrize("mode", ["overfit", "limit", "profiler"])
def test_every_debug_mode_composes_onto_the_trainer(mode: str) -> None:
    with pytest.raises(ValueError, match="HydraConfig was not set"):  # the cache is in the Hydra run dir: CLI only
        OmegaConf.to_container(compose_config(f"debug={mode}").paths, resolve=True)
    trainer = compose_config(f"debug={mode}").trainer
    assert trainer.accelerator == "cpu" and trainer.detect_anomaly is True
    assert {"overfit": "overfit_batches", "limit": "limit_train_batches", "profiler": "profiler"}[mode] in trainer


def test_callbacks_come_from_yaml(tmp_path: Path) -> None:
    best, others = build_callbacks(compose_config("callbacks=default").callbacks, tmp_path, has_logger=True)
    assert isinstance(best, ModelCheckpoint) and best.dirpath == str(tmp_path) and best.monitor == "val/acc"
    assert [type(c) for c in others] == [LearningRateMonitor]
    assert build_callbacks(compose_config("callbacks=default").callbacks, tmp_path, has_logger=False)[1] == []
    assert build_callbacks(compose_config("callbacks=none").callbacks, tmp_path, has_logger=True)[1] == []
    bad = compose_config("callbacks.model_checkpoint._target_=builtins.dict")
    with pytest.raises(ConfigError, match=r"callbacks\.model_checkpoint must build a ModelCheckpoint"):
        build_callbacks(bad.callbacks, tmp_path, has_logger=True)


def test_optuna_preset_maximises_best_validation_accuracy(tmp_path: Path) -> None:
    """Each trial's value, as Optuna stored it, is that job's student/best_val_acc (what main returns to Hydra)."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sweep = tmp_path / "sweep"
    proc = kdlab(
        "-m", "hparams_search=kd_optuna", *TINY, "logger=none", "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = optuna.load_study(study_name="kd_optuna", storage=storage).trials
    jobs = [json.loads((sweep / str(t.number) / "results.json").read_text()) for t in trials]
    assert len(trials) == 2
    for trial, job in zip(trials, jobs, strict=True):
        assert trial.value == pytest.approx(job["student/best_val_acc"])
        assert job["config"]["kd"]["temperature"] == pytest.approx(trial.params["kd.temperature"])
