"""End-to-end runs of the real composed config on the embedded data, one per knowledge family."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, REPO, WHOLE_TEACHER, compose_config

from kdlab.run import run

FAMILIES = ["response", "feature", "relation", "none"]


@pytest.mark.parametrize("kd", FAMILIES)
def test_each_family_runs_and_writes_results(kd: str, tmp_path: Path) -> None:
    metrics = run(compose_config(*FAST, f"kd={kd}"), tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed"
    for key in ("teacher/test_acc", "student/test_acc", "teacher/params", "student/params", "retention"):
        assert results[key] == metrics[key]
    assert 0.0 <= results["student/test_acc"] <= 1.0
    assert results["student/params"] > 0 and results["teacher/params"] > 0
    assert results["config"]["kd"]["alpha"] == (0.0 if kd == "none" else 0.9)
    assert (tmp_path / "student.pt").is_file()


def test_second_run_reuses_the_cached_teacher(tmp_path: Path) -> None:
    first = run(compose_config(*FAST, *WHOLE_TEACHER), tmp_path / "a")
    second = run(compose_config(*FAST, *WHOLE_TEACHER), tmp_path / "b")
    changed = run(compose_config(*FAST, *WHOLE_TEACHER, "seed=1"), tmp_path / "c")
    assert first["teacher/source"] == "trained" and second["teacher/source"] == "cache"
    assert second["teacher/path"] == first["teacher/path"]
    assert second["teacher/test_acc"] == first["teacher/test_acc"]
    assert changed["teacher/source"] == "trained" and changed["teacher/path"] != first["teacher/path"]


def test_teacher_checkpoint_is_loaded(tmp_path: Path) -> None:
    first = run(compose_config(*FAST), tmp_path / "a")
    again = run(compose_config(*FAST, f"teacher.checkpoint={first['teacher/path']}"), tmp_path / "b")
    assert again["teacher/source"] == "checkpoint"
    assert again["teacher/test_acc"] == first["teacher/test_acc"]


def kdlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kdlab", *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_cli_runs_with_overrides_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = kdlab(*FAST, "kd.temperature=8", "kd.alpha=0.7", "seed=1", f"hydra.run.dir={out}", cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["kd"]["temperature"] == 8.0 and results["config"]["kd"]["alpha"] == 0.7
    assert results["choices"]["kd"] == "response" and "kd.temperature=8" in results["overrides"]
    assert "retention" in proc.stdout


def test_cli_help_lists_the_config_groups(tmp_path: Path) -> None:
    proc = kdlab("--help", cwd=REPO)
    assert proc.returncode == 0
    for group in ("data", "teacher", "student", "kd", "optim", "trainer", "logger"):
        assert f"{group}:" in proc.stdout


def test_cli_cfg_job_prints_the_composed_config(tmp_path: Path) -> None:
    proc = kdlab("--cfg", "job", "kd=feature", "kd.stages=[1,2,3]", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "stages:\n  - 1\n  - 2\n  - 3" in proc.stdout or "- 1\n  - 2\n  - 3" in proc.stdout


def test_cli_multirun_runs_every_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = kdlab("-m", *FAST, "kd.alpha=0.3,0.6", f"hydra.sweep.dir={sweep}", cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    alphas = sorted(json.loads(p.read_text())["config"]["kd"]["alpha"] for p in sweep.glob("*/results.json"))
    assert alphas == [0.3, 0.6]


def test_wandb_offline_run_is_written_and_reads_back(tmp_path: Path, monkeypatch) -> None:
    from kdlab.tracking import read_offline_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    metrics = run(compose_config(*FAST, "logger=wandb", "trainer.log_every_n_steps=1"), tmp_path)
    run_dir = Path(metrics["wandb/dir"]).parent
    assert run_dir.name.startswith("offline-run-")
    logged = read_offline_run(run_dir)
    assert logged["config"]["kd.alpha"] == 0.9
    assert logged["summary"]["student/test_acc"] == pytest.approx(metrics["student/test_acc"])
    train_steps = [h for h in logged["history"] if "train/loss_kd_step" in h]
    assert train_steps and all(h["train/loss_kd_step"] >= 0 for h in train_steps)
    assert any("val/kl_to_teacher" in h for h in logged["history"])
