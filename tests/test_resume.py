"""A run killed with SIGKILL mid-epoch and started again with the same command resumes, and ends where an
uninterrupted run with the same seed ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, REPO

STEPS_PER_EPOCH = 6
RUN = [
    *FAST,
    f"trainer.limit_train_batches={STEPS_PER_EPOCH}",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "data.batch_size=32",
    "data.augment=crop_flip",  # draws from the global RNG every step: the resumed run must restore it
    "checkpoint_every_n_steps=1",
    # paces each step (0.3 s) so the test can land its kill inside the second epoch; weight 0: no effect on training
    "+kd.terms.pace={_target_:fault_terms.Pace,_partial_:true,seconds:0.3}",
    "+kd.weights.pace=0",
]
COMPARED = ["student/test_acc", "student/test_agreement", "student/test_kl_to_teacher", "student/best_val_acc"]
COMPARED += ["student/train_loss", "student/val_loss"]  # the killed epoch's mean covers the batches before the kill


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    command = [sys.executable, "-m", "kdlab", *RUN, f"hydra.run.dir={run_dir}", *extra]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return out


def _step_of(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return None


def _kill_mid_second_epoch(proc: subprocess.Popen, last: Path) -> int:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        step = _step_of(last)
        if step is not None and step > STEPS_PER_EPOCH and step % STEPS_PER_EPOCH:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return step
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the run ended or stalled before a mid-epoch checkpoint was seen:\n{proc.communicate()[0][-3000:]}")


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_sigkill_mid_epoch_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = _start(whole)
    victim = _start(killed)
    seen_step = _kill_mid_second_epoch(victim, killed / "checkpoints" / "last.ckpt")
    assert not (killed / "results.json").exists()
    stale = killed / "checkpoints" / ".last.ckpt.killed.tmp"  # what a kill during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")

    log = _finish(_start(killed))  # the same command again
    _finish(uninterrupted)
    resumed, reference = _results(killed), _results(whole)

    assert "resuming from" in log
    assert resumed["resumed_from"] == str(killed / "checkpoints" / "last.ckpt")
    assert resumed["resumed_at_step"] >= seen_step and resumed["resumed_at_step"] % STEPS_PER_EPOCH
    assert reference["resumed_from"] is None
    assert resumed["teacher/source"] == "run directory (partial: not cached)"  # the run's own teacher, not retrained
    assert not stale.exists()
    for key in COMPARED:
        assert resumed[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-7), key
    ours = torch.load(killed / "student.pt", weights_only=True)["state_dict"]
    theirs = torch.load(whole / "student.pt", weights_only=True)["state_dict"]
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_resume_false_starts_over_and_keeps_the_old_checkpoints(tmp_path: Path) -> None:
    from conftest import compose_config

    from kdlab.pipeline import run

    first = run(compose_config(*FAST), tmp_path)
    assert first["resumed_from"] is None
    again = run(compose_config(*FAST), tmp_path)  # resume=auto: the finished run continues from its last.ckpt
    assert again["resumed_from"] == str(tmp_path / "checkpoints" / "last.ckpt")
    over = run(compose_config(*FAST, "resume=false"), tmp_path)
    assert over["resumed_from"] is None
    assert len(list(tmp_path.glob("checkpoints.replaced-*/last.ckpt"))) == 1
