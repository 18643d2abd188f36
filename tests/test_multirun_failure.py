"""A real local sweep (tiny models) with a bad value and a crash: the rest finish, report and W&B runs are complete,
and the sweep exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, REPO, WHOLE_TEACHER

from kdlab.sweeps.compare.cli import main as compare
from kdlab.sweeps.sweepfile import load_sweep
from kdlab.tracking import read_offline_run

SUMMARY_KEYS = (
    "student/test_acc", "student/test_acc_best_ckpt", "student/val_acc", "student/best_val_acc", "retention",
    "student/test_agreement", "student/params", "teacher/params", "teacher/test_acc",
)  # fmt: skip


def run_sweep(root: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """``python -m kdlab -m hparams_search=kd_grid`` cut to T ∈ {2, -1, abc, 4} at alpha 0.9, W&B offline.

    T=-1 is refused by validation (ConfigError); T=abc crashes with a plain ValueError (the generic failure path).
    """
    sweep_dir = root / "kd_grid-test"
    logger = [o for o in FAST if not o.startswith("logger=")] + ["logger=wandb", *WHOLE_TEACHER]  # a cached teacher
    env = {**os.environ, "WANDB_MODE": "offline", "KDLAB_CACHE": str(root / "cache")}
    env.pop("WANDB_RUN_GROUP", None)
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab", "-m", "hparams_search=kd_grid", "kd.temperature=2,-1,abc,4", "kd.alpha=0.9",
         *logger, f"hydra.sweep.dir={sweep_dir}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return sweep_dir, proc


def results(sweep_dir: Path, job: int) -> dict:
    return json.loads((sweep_dir / str(job) / "results.json").read_text())


def test_a_sweep_with_a_bad_value_and_a_crash(tmp_path: Path) -> None:
    """One sweep (a subprocess, so one test: pytest-xdist would run a shared fixture once per worker)."""
    sweep_dir, proc = run_sweep(tmp_path)
    check_every_job_ran_and_the_exit_status(sweep_dir, proc)
    check_the_teacher_is_trained_once_and_reused(sweep_dir)
    check_the_report_is_written_and_compare_reads_it(sweep_dir, proc)
    check_each_wandb_run_holds_config_summary_and_group(sweep_dir)
    check_the_sweep_plots_reach_wandb(sweep_dir)


def check_every_job_ran_and_the_exit_status(sweep_dir: Path, proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 1, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr  # Hydra's log goes to stdout
    assert "2 of 4 jobs failed: 1 (" in output and "kd.temperature=-1" in output
    refused, crashed = results(sweep_dir, 1), results(sweep_dir, 2)
    assert refused["status"] == "failed" and "kd.temperature must be > 0, got -1" in refused["error"]
    assert "kd.temperature=-1" in refused["overrides"] and refused["choices"]["kd"] == "response"
    assert crashed["status"] == "failed" and "abc" in crashed["error"] and "Traceback" in crashed["traceback"]
    for job, temperature in ((0, 2.0), (3, 4.0)):
        done = results(sweep_dir, job)
        assert done["status"] == "completed" and done["config"]["kd"]["temperature"] == temperature
        assert 0.0 <= done["student/test_acc"] <= 1.0 and (sweep_dir / str(job) / "student.pt").is_file()


def check_the_teacher_is_trained_once_and_reused(sweep_dir: Path) -> None:
    first, last = results(sweep_dir, 0), results(sweep_dir, 3)
    assert (first["teacher/source"], last["teacher/source"]) == ("trained", "cache")
    assert first["teacher/path"] == last["teacher/path"]
    assert first["teacher/test_acc"] == last["teacher/test_acc"]


def check_the_report_is_written_and_compare_reads_it(sweep_dir: Path, proc: subprocess.CompletedProcess) -> None:
    assert "best by student/best_val_acc: kd.temperature=" in proc.stdout
    report = (sweep_dir / "report.md").read_text()
    assert "4 runs: 2 completed, 2 failed or missing." in report and "kd.temperature must be > 0" in report
    assert (sweep_dir / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert compare([str(sweep_dir), "--out", str(sweep_dir / "again")]) == 0
    rows = (sweep_dir / "again" / "runs.csv").read_text().splitlines()
    assert len(rows) == 5 and sum(",completed," in row for row in rows) == 2
    assert sum(",failed," in row for row in rows) == 2


def check_each_wandb_run_holds_config_summary_and_group(sweep_dir: Path) -> None:
    metrics_of_sweeps = {load_sweep(p)["metric"]["name"] for p in (REPO / "sweeps").glob("*.yaml")}
    for job, temperature in ((0, 2.0), (3, 4.0)):
        done = results(sweep_dir, job)
        run_dir = Path(done["wandb/dir"]).parent
        assert run_dir.is_relative_to(sweep_dir / str(job)) and run_dir.name.startswith("offline-run-")
        logged = read_offline_run(run_dir)
        assert logged["config"]["kd.temperature"] == temperature and logged["config"]["seed"] == 0
        for key in (*SUMMARY_KEYS, *metrics_of_sweeps):
            assert logged["summary"][key] == pytest.approx(done[key]), key
        assert logged["group"] == "kd_grid-test"


def test_a_fixed_teacher_seed_gives_every_student_seed_the_same_teacher(tmp_path: Path, monkeypatch) -> None:
    """The teacher depends on teacher_seed only: trained apart under two student seeds, its weights are identical."""
    import torch
    from conftest import compose_config

    from kdlab.run import run

    trained = []
    for seed in (0, 1):
        monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / f"cache{seed}"))
        metrics = run(compose_config(*FAST, f"seed={seed}", "teacher_seed=0"), tmp_path / f"run{seed}")
        assert metrics["teacher/source"] == "trained (partial: not cached)"
        trained.append(torch.load(metrics["teacher/path"], weights_only=True)["state_dict"])
    assert trained[0].keys() == trained[1].keys()
    assert all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0])


def check_the_sweep_plots_reach_wandb(sweep_dir: Path) -> None:
    (run_dir,) = sweep_dir.glob("wandb/offline-run-*")  # the sweep's own run, beside the jobs' folders
    logged = read_offline_run(run_dir)
    assert logged["job_type"] == "sweep-report" and logged["group"] == "kd_grid-test"
    assert any(row.get("sweep/heatmap/_type") == "image-file" for row in logged["history"])
