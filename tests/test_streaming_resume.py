"""A streaming run with two loader workers, stopped mid-epoch and started again, ends with the weights of the
uninterrupted run: progress counts the batches trained on, not the ones the workers had prefetched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config
from streaming_trees import write_jpeg_tree
from torch import Tensor

from kdlab.run import run
from kdlab.terms.base import Batch, DistillationTerm, PairSpec

CRASH_ENV = "KDLAB_TEST_CRASH_AT_CALL"
STEPS_PER_EPOCH = 7  # 28 training images (4 of 32 carved off for val) in batches of 4


class Crash(Exception):
    """The stand-in for a kill: raised from inside a training step."""


class CrashAt(DistillationTerm):
    """A zero loss (give it weight 0) that raises on its ``$KDLAB_TEST_CRASH_AT_CALL``-th call when that is set."""

    loss_names = ("crash",)

    def __init__(self, pair: PairSpec) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, student, teacher, batch: Batch) -> dict[str, Tensor]:
        self.calls += 1
        if self.calls == int(os.environ.get(CRASH_ENV, 0)):
            raise Crash(f"stopped at call {self.calls}")
        return {"crash": student.logits.new_zeros(())}


def _config(root: Path):
    return compose_config(
        *FAST,
        "data=imagefolder",
        f"data.root={root}",
        "data.image_size=16",
        "data.batch_size=4",
        "data.in_memory=false",
        "data.num_workers=2",
        "data.augment=rand-m9-mstd0.5",  # per-sample random draws in the workers
        "data.mixup=0.4",  # per-batch random draws on the device
        "trainer.limit_train_batches=1.0",
        "trainer.max_epochs=2",
        "trainer.deterministic=true",
        "checkpoint_every_n_steps=1",
        "+kd.terms.crash={_target_:test_streaming_resume.CrashAt,_partial_:true}",
        "+kd.weights.crash=0",
    )


def test_a_stopped_streaming_run_resumes_to_the_uninterrupted_weights(tmp_path: Path, monkeypatch) -> None:
    root = write_jpeg_tree(tmp_path / "tree")
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    reference = run(_config(root), whole)

    stop_at = STEPS_PER_EPOCH + 3  # the 3rd step of the second epoch, with two workers' batches prefetched
    monkeypatch.setenv(CRASH_ENV, str(stop_at))
    with pytest.raises(Crash):
        run(_config(root), stopped)
    assert not (stopped / "results.json").exists()
    monkeypatch.delenv(CRASH_ENV)
    resumed = run(_config(root), stopped)

    assert resumed["resumed_from"] == str(stopped / "checkpoints" / "last.ckpt")
    assert resumed["resumed_at_step"] == stop_at - 1  # the crashed step never finished
    assert reference["resumed_from"] is None
    ours = torch.load(stopped / "student.pt", weights_only=True)["state_dict"]
    theirs = torch.load(whole / "student.pt", weights_only=True)["state_dict"]
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert resumed["student/test_acc"] == pytest.approx(reference["student/test_acc"])
