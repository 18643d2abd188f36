"""Two CPU processes under Lightning DDP (gloo) train the same model as one process on the same global batch, with
random augmentation and the teacher's outputs replayed.

The two-process leg runs as the user runs it, ``python -m kdlab ... trainer.strategy=ddp``: Lightning starts each
rank as a fresh interpreter. Forking ranks from a pytest worker (``ddp_fork``) can deadlock once earlier tests in
that worker have started OpenMP or W&B threads, so the test never forks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FAST, REPO, compose_config

from kdlab.run import run

# A GroupNorm student: per-sample normalisation, so two half batches give exactly the full-batch gradient
# (BatchNorm would see half-batch statistics on CPU, where PyTorch has no SyncBatchNorm).
COMMON = [
    *[o for o in FAST if o != "logger=none"],
    "student.name=test_efficientnet_gn",
    "trainer.limit_train_batches=4",
    "trainer.max_epochs=2",
    "channels_last=false",  # like for like: DDP runs keep NCHW weights
    # SGD's update is linear in the gradient, so the rounding difference between one full-batch gradient and the
    # mean of two half-batch ones stays rounding-sized; Adam divides by sqrt(v) and magnifies it for weights whose
    # gradients are near zero (seen: 16 of 40k weights off by up to 1e-4 after 8 AdamW steps).
    "optim=sgd",
    "data.augment=crop_flip",  # random views: the teacher's outputs are replayed, each rank reading its samples' rows
]
SINGLE = ["data.batch_size=32", "logger=none"]
TWO_PROCESSES = [
    "data.batch_size=16",  # per process: the global batch stays 32
    "+trainer.strategy=ddp",
    "trainer.devices=2",
    "trainer.accelerator=cpu",
    "logger=wandb",  # offline (conftest): rank 0 alone may create the run
]


def test_two_process_ddp_matches_one_process_on_the_same_data(tmp_path: Path) -> None:
    one = run(compose_config(*COMMON, *SINGLE), tmp_path / "one")
    same_teacher = f"teacher.checkpoint={one['teacher/path']}"  # the cache key holds data.batch_size, which differs
    out = tmp_path / "two"
    command = [sys.executable, "-m", "kdlab", *COMMON, *TWO_PROCESSES, same_teacher, f"hydra.run.dir={out}"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    two = json.loads((out / "results.json").read_text())
    assert one["teacher/outputs_source"] == two["teacher/outputs_source"] == "replay"

    for key in ("student/test_acc", "student/best_val_acc", "student/test_agreement"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
    assert two["student/test_kl_to_teacher"] == pytest.approx(one["student/test_kl_to_teacher"], rel=1e-4)
    for key in ("student/train_loss", "student/val_loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-4), key
    ours = torch.load(out / "student.pt", weights_only=True)["state_dict"]
    theirs = torch.load(tmp_path / "one" / "student.pt", weights_only=True)["state_dict"]
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-4, atol=1e-5, msg=name)
    # only rank 0 writes: one results file, one W&B run, one summary table
    assert len(list(out.rglob("results.json"))) == 1
    assert len(list(out.rglob("*.wandb"))) == 1
    assert proc.stdout.count("kdlab · response") == 1
