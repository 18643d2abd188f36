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
    # random crops (per sample, from seed, epoch and index) with logits-only terms: the teacher's outputs are replayed
    # (kdlab.teacher.replay), so this also resumes a replayed run mid-epoch at the right view
    "data.augment=crop_flip",
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
    assert resumed["teacher/outputs_source"] == reference["teacher/outputs_source"] == "replay"
    assert not stale.exists()
    for key in COMPARED:
        assert resumed[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-7), key
    ours = torch.load(killed / "student.pt", weights_only=True)["state_dict"]
    theirs = torch.load(whole / "student.pt", weights_only=True)["state_dict"]
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_resume_false_starts_over_and_keeps_the_old_checkpoints(tmp_path: Path) -> None:
    from conftest import compose_config

    from kdlab.run import run

    first = run(compose_config(*FAST), tmp_path)
    assert first["resumed_from"] is None
    again = run(compose_config(*FAST), tmp_path)  # resume=auto: the finished run continues from its last.ckpt
    assert again["resumed_from"] == str(tmp_path / "checkpoints" / "last.ckpt")
    over = run(compose_config(*FAST, "resume=false"), tmp_path)
    assert over["resumed_from"] is None
    assert len(list(tmp_path.glob("checkpoints.replaced-*/last.ckpt"))) == 1


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in ("results.json", "student.pt")}


def test_rerun_with_other_settings_is_refused_and_the_old_results_stay(tmp_path: Path) -> None:
    """The user's sequence: a finished run, then the same directory with a new temperature and split."""
    from conftest import compose_config

    from kdlab.errors import ConfigError
    from kdlab.run import run

    run(compose_config(*FAST), tmp_path)
    before = _snapshot(tmp_path)
    new = ["kd.temperature=8", "data.split_seed=1"]
    with pytest.raises(ConfigError) as refused:
        run(compose_config(*FAST, *new), tmp_path)
    message = str(refused.value)
    assert "kd.temperature 4.0 -> 8" in message and "data.split_seed 0 -> 1" in message
    assert "hydra.run.dir=<new dir>" in message and "resume=false" in message
    assert _snapshot(tmp_path) == before

    proc = subprocess.run(
        [sys.executable, "-m", "kdlab", *FAST, *new, f"hydra.run.dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == f"kdlab: error: {message}"
    assert "Traceback" not in proc.stderr
    assert _snapshot(tmp_path) == before


def test_cosmetic_changes_resume_and_a_changed_schedule_is_refused(tmp_path: Path) -> None:
    from conftest import compose_config

    from kdlab.errors import ConfigError
    from kdlab.run import run

    run(compose_config(*FAST), tmp_path)
    cosmetic = ["logger=csv", "trainer.enable_progress_bar=true", "trainer.log_every_n_steps=1"]
    again = run(compose_config(*FAST, *cosmetic, "checkpoint_every_n_steps=7"), tmp_path)
    assert again["resumed_from"] == str(tmp_path / "checkpoints" / "last.ckpt")
    # a longer cosine schedule is another schedule: T_max follows trainer.max_epochs
    with pytest.raises(ConfigError, match=r"\(optim.scheduler.T_max 1 -> 3\)"):
        run(compose_config(*FAST, "trainer.max_epochs=3"), tmp_path)


def test_a_longer_schedule_continues_training_and_a_shorter_one_is_refused(tmp_path: Path) -> None:
    """With step milestones (optim=sgd) a longer max_epochs is the same run, trained on; fewer epochs than it has
    trained is not."""
    from conftest import compose_config

    from kdlab.errors import ConfigError
    from kdlab.run import run

    run(compose_config(*FAST, "optim=sgd"), tmp_path)
    longer = run(compose_config(*FAST, "optim=sgd", "trainer.max_epochs=2"), tmp_path)
    assert longer["resumed_at_step"] == 2
    assert longer["student/train_loss"] is not None  # it trained the second epoch
    assert _step_of(tmp_path / "checkpoints" / "last.ckpt") == 4
    with pytest.raises(ConfigError, match=r"\(trainer.max_epochs 2 -> 1\)"):
        run(compose_config(*FAST, "optim=sgd"), tmp_path)


def test_the_refusal_names_eight_changed_keys_then_counts_the_rest() -> None:
    from kdlab.errors import ConfigError
    from kdlab.training.resume import check_same_settings

    old = {"kd": {f"w{i}": i for i in range(10)}, "logger": {"mode": "offline"}, "trainer": {"max_epochs": 3}}
    new = {"kd": {f"w{i}": i + 1 for i in range(10)}, "logger": {"mode": "online"}, "trainer": {"max_epochs": 2}}
    with pytest.raises(ConfigError) as refused:
        check_same_settings(Path("last.ckpt"), old, new, started=2)  # 2 epochs begun: max_epochs=2 still covers them
    message = str(refused.value)
    assert "(kd.w0 0 -> 1, kd.w1 1 -> 2," in message and "kd.w7 7 -> 8 and 2 more)" in message
    assert "kd.w8" not in message and "logger" not in message and "max_epochs" not in message and "\n" not in message
