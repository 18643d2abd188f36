"""Shared fixtures: every test runs offline, with its own teacher cache, on the embedded data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
FAST = ["teacher=tiny", "student=tiny", "trainer=fast", "teacher.max_epochs=1", "logger=none"]
FAST += ["post.latency.repeats=2", "post.latency.warmup=1"]  # the end-of-run report times models: keep it short
# trainer=fast trains a partial teacher, which is kept in the run directory and never cached: tests of teacher-cache
# reuse add these, so the teacher trains on whole epochs (teacher.max_epochs=1 of the small data keeps it quick).
WHOLE_TEACHER = ["trainer.limit_train_batches=null", "trainer.limit_val_batches=null"]

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# pytest-xdist runs one worker per core (-n 2 on 2 cores). More torch threads than that oversubscribe the CPU, and
# OpenMP's spin-waiting makes it ~3x slower (six end-to-end tests at -n 2: 117 s with 2 threads each, 37 s with 1).
# Subprocesses the tests start (CLI, DDP ranks) inherit the variable.
_THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
os.environ["OMP_NUM_THREADS"] = str(_THREADS)  # set, not defaulted: workers inherit the master's value


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh teacher cache per test, never the user's own."""
    cache = tmp_path / "kdlab-cache"
    monkeypatch.setenv("KDLAB_CACHE", str(cache))
    return cache


def compose_config(*overrides: str) -> DictConfig:
    """The config `python -m kdlab <overrides>` would run, composed with Hydra's own API."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.json from the current code instead of comparing against it",
    )
