"""A real local sweep (tiny models) with one bad job: the others finish, report and W&B runs are complete, exit != 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, REPO

from kdlab.compare.cli import main as compare
from kdlab.sweepfile import load_sweep
from kdlab.tracking import read_offline_run

SUMMARY_KEYS = (
    "student/test_acc", "student/test_acc_best_ckpt", "student/val_acc", "student/best_val_acc", "retention",
    "student/test_agreement", "student/params", "teacher/params", "teacher/test_acc",
)  # fmt: skip


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """``python -m kdlab -m hparams_search=kd_grid`` cut to T ∈ {2, -1, 4} at alpha 0.9, W&B offline."""
    root = tmp_path_factory.mktemp("multirun")
    sweep_dir = root / "kd_grid-test"
    logger = [o for o in FAST if not o.startswith("logger=")] + ["logger=wandb"]
    env = {**os.environ, "WANDB_MODE": "offline", "KDLAB_CACHE": str(root / "cache")}
    env.pop("WANDB_RUN_GROUP", None)
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab", "-m", "hparams_search=kd_grid", "kd.temperature=2,-1,4", "kd.alpha=0.9",
         *logger, f"hydra.sweep.dir={sweep_dir}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return sweep_dir, proc


def results(sweep_dir: Path, job: int) -> dict:
    return json.loads((sweep_dir / str(job) / "results.json").read_text())


def test_the_sweep_runs_every_job_and_exits_nonzero(sweep) -> None:
    sweep_dir, proc = sweep
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 of 3 jobs failed: 1 (" in proc.stderr + proc.stdout and "kd.temperature=-1" in proc.stderr + proc.stdout
    failed = results(sweep_dir, 1)
    assert failed["status"] == "failed" and "kd.temperature must be > 0, got -1" in failed["error"]
    assert "kd.temperature=-1" in failed["overrides"]
    for job, temperature in ((0, 2.0), (2, 4.0)):
        done = results(sweep_dir, job)
        assert done["status"] == "completed" and done["config"]["kd"]["temperature"] == temperature
        assert 0.0 <= done["student/test_acc"] <= 1.0 and (sweep_dir / str(job) / "student.pt").is_file()


def test_the_teacher_is_trained_once_and_reused(sweep) -> None:
    sweep_dir, _ = sweep
    first, last = results(sweep_dir, 0), results(sweep_dir, 2)
    assert (first["teacher/source"], last["teacher/source"]) == ("trained", "cache")
    assert first["teacher/path"] == last["teacher/path"]
    assert first["teacher/test_acc"] == last["teacher/test_acc"]


def test_the_report_is_written_and_compare_reads_the_sweep(sweep, capsys: pytest.CaptureFixture) -> None:
    sweep_dir, proc = sweep
    assert "best by student/best_val_acc: kd.temperature=" in proc.stdout
    report = (sweep_dir / "report.md").read_text()
    assert "3 runs: 2 completed, 1 failed or missing." in report and "kd.temperature must be > 0" in report
    assert (sweep_dir / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert compare([str(sweep_dir), "--out", str(sweep_dir / "again")]) == 0
    rows = (sweep_dir / "again" / "runs.csv").read_text().splitlines()
    assert len(rows) == 4 and sum(",completed," in row for row in rows) == 2 and sum(",failed," in row for row in rows)


def test_each_wandb_run_holds_config_summary_and_the_sweep_group(sweep) -> None:
    sweep_dir, _ = sweep
    metrics_of_sweeps = {load_sweep(p)["metric"]["name"] for p in (REPO / "sweeps").glob("*.yaml")}
    for job, temperature in ((0, 2.0), (2, 4.0)):
        done = results(sweep_dir, job)
        run_dir = Path(done["wandb/dir"]).parent
        assert run_dir.is_relative_to(sweep_dir / str(job)) and run_dir.name.startswith("offline-run-")
        logged = read_offline_run(run_dir)
        assert logged["config"]["kd"]["temperature"] == temperature and logged["config"]["seed"] == 0
        for key in (*SUMMARY_KEYS, *metrics_of_sweeps):
            assert logged["summary"][key] == pytest.approx(done[key]), key
        assert logged["group"] == "kd_grid-test"
