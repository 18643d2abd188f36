"""A NaN/Inf loss stops the run at once, names the loss, its term and the step, and keeps the last good checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config

from kdlab.run import run
from kdlab.training.faults import NonFiniteLossError
from kdlab.training.resume import ResumeState


def _blowup(value: str) -> list[str]:
    return [
        *FAST,
        "trainer.limit_train_batches=6",
        "checkpoint_every_n_steps=2",
        f"+kd.terms.blowup={{_target_:fault_terms.NanAfter,_partial_:true,calls:3,value:{value}}}",
        "+kd.weights.blowup=0.1",
    ]


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_term_stops_the_run_naming_term_and_step(value: str, tmp_path: Path) -> None:
    with pytest.raises(
        NonFiniteLossError, match=rf"non-finite loss at global step 3: loss_blowup={value} \(term blowup\)"
    ):
        run(compose_config(*_blowup(value)), tmp_path)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2  # written before the fault, and nothing after it
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "student.pt").exists()


def test_a_checkpoint_with_non_finite_weights_is_never_written() -> None:
    guard = ResumeState({"format": "kdlab.run/1"}, {})
    checkpoint = {"state_dict": {"student.w": torch.tensor([1.0, float("nan")]), "student.n": torch.tensor(3)}}
    trainer = type("T", (), {"global_step": 7})()
    with pytest.raises(NonFiniteLossError, match=r"weights went non-finite \(student.w\) by global step 7"):
        guard.on_save_checkpoint(trainer, None, checkpoint)
    assert "kdlab" not in checkpoint
