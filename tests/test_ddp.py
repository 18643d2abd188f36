"""Two CPU processes under Lightning DDP (gloo) train the same model as one process on the same global batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config

from kdlab.pipeline import run

# A GroupNorm student: per-sample normalisation, so two half batches give exactly the full-batch gradient
# (BatchNorm would see half-batch statistics on CPU, where PyTorch has no SyncBatchNorm).
COMMON = [
    *FAST,
    "student.name=test_efficientnet_gn",
    "trainer.limit_train_batches=4",
    "trainer.max_epochs=2",
    "channels_last=false",  # like for like: DDP runs keep NCHW weights
]
SINGLE = ["data.batch_size=32"]
TWO_PROCESSES = [
    "data.batch_size=16",  # per process: the global batch stays 32
    "+trainer.strategy=ddp_fork",  # plain `ddp` re-runs sys.argv (pytest here); the CLI uses it via trainer=ddp
    "trainer.devices=2",
    "trainer.accelerator=cpu",
]


def test_two_process_ddp_matches_one_process_on_the_same_data(tmp_path: Path) -> None:
    one = run(compose_config(*COMMON, *SINGLE), tmp_path / "one")
    same_teacher = f"teacher.checkpoint={one['teacher/path']}"  # the cache key holds data.batch_size, which differs
    two = run(compose_config(*COMMON, *TWO_PROCESSES, same_teacher), tmp_path / "two")

    for key in ("student/test_acc", "student/best_val_acc", "student/test_agreement"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
    assert two["student/test_kl_to_teacher"] == pytest.approx(one["student/test_kl_to_teacher"], rel=1e-4)
    for key in ("student/train_loss", "student/val_loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-4), key
    ours = torch.load(tmp_path / "two" / "student.pt", weights_only=True)["state_dict"]
    theirs = torch.load(tmp_path / "one" / "student.pt", weights_only=True)["state_dict"]
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert len(list((tmp_path / "two").rglob("results.json"))) == 1


@pytest.mark.slow
def test_cli_ddp_writes_results_and_wandb_run_once(tmp_path: Path) -> None:
    """``trainer=ddp`` from the CLI: Lightning re-launches the command per rank; only rank 0 writes."""
    import json
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "run"
    small = [o for o in FAST if not o.startswith(("trainer=", "logger="))]
    limits = [f"+trainer.limit_{split}_batches={n}" for split, n in (("train", 4), ("val", 1), ("test", 1))]
    command = [sys.executable, "-m", "kdlab", *small, "trainer=ddp", "trainer.max_epochs=1", *limits, "logger=wandb"]
    proc = subprocess.run(
        [*command, f"hydra.run.dir={out}"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    assert json.loads((out / "results.json").read_text())["status"] == "completed"
    assert len(list(out.rglob("*.wandb"))) == 1
    assert proc.stdout.count("kdlab · response") == 1  # the summary table, printed by rank 0 only
