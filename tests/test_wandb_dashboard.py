"""What a W&B dashboard gets from a run, read back from the offline run files: under a reproduced sweep agent, a flat
config holding every resolved key once plus the group choices, a findable run, teacher -> student lineage, summaries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import FAST, REPO

from kdlab.report.evaluate import evaluate_run
from kdlab.tracking import flat_config, read_offline_run, run_config, run_name, run_tags

SWEPT = {"kd": "response", "seed": 1, "kd.temperature": 8}  # what the agent chose: written and passed as overrides
USER_TAGS = ["smoke", "ablation"]


def run_as_sweep_agent(root: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """``python -m kdlab`` as ``wandb agent`` starts it: WANDB_SWEEP_ID, WANDB_RUN_ID and WANDB_SWEEP_PARAM_PATH (a
    ``config-<run>.yaml`` of ``{key: {value: …}}``) set, the swept values also on the command line."""
    params = root / "sweep-sw1" / "config-run1.yaml"
    params.parent.mkdir(parents=True)
    params.write_text("wandb_version: 1\n\n" + "".join(f"{k}:\n  value: {v}\n" for k, v in SWEPT.items()))
    env = {**os.environ, "WANDB_MODE": "offline", "KDLAB_CACHE": str(root / "cache"), "WANDB_SWEEP_ID": "sw1"}
    env.update(WANDB_RUN_ID="run1", WANDB_SWEEP_PARAM_PATH=str(params), WANDB_SILENT="false")
    env.pop("WANDB_RUN_GROUP", None)
    out = root / "run"
    logger = [o for o in FAST if not o.startswith("logger=")] + ["logger=wandb", f"tags=[{','.join(USER_TAGS)}]"]
    args = [f"{k}={v}" for k, v in SWEPT.items()]
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab", *logger, *args, f"hydra.run.dir={out}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    return out, proc


def offline_run(folder: Path) -> dict:
    (run_dir,) = folder.glob("wandb/offline-run-*")
    return read_offline_run(run_dir)


def test_a_sweep_run_reads_back_complete_findable_and_linked(tmp_path: Path) -> None:
    """One agent-started run (a subprocess, so one test: pytest-xdist would run a shared fixture once per worker)."""
    out, proc = run_as_sweep_agent(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "locked" not in proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())
    student, teacher = offline_run(out), offline_run(out / "teacher")
    check_config_is_flat_complete_and_once(student, results)
    check_run_is_findable(student)
    check_lineage(student, teacher)
    check_summaries(student, results)
    check_evaluate_run(out)


def check_evaluate_run(out: Path) -> None:
    """``kdlab-evaluate`` on the finished run: a ``job_type=evaluate`` run whose input is that run's student."""
    flat = evaluate_run(out, ["post.latency.repeats=2", "post.latency.warmup=1"])
    logged = offline_run(out / "evaluate")
    assert logged["job_type"] == "evaluate" and logged["name"] == "evaluate-response-tiny-tiny-fast-s1"
    models = {(a["name"], a["use"]) for a in logged["artifacts"] if a["type"] == "model"}
    assert models == {("student-response-tiny-tiny-fast-s1", True)}
    assert logged["summary"]["report/student/top1"] == pytest.approx(flat["report/student/top1"])
    assert logged["config"]["source_run"] == str(out)


def check_config_is_flat_complete_and_once(logged: dict, results: dict) -> None:
    expected = run_config(results["config"], results["choices"])
    assert expected["kd"] == "response" and expected["kd.temperature"] == 8
    for key, value in expected.items():
        assert logged["config"].get(key, "missing") == value, key
    sent_twice = [key for key, count in Counter(logged["config_keys"]).items() if count > 1]
    assert not sent_twice
    nested = [k for k, v in logged["config"].items() if isinstance(v, dict) and k != "_wandb"]
    assert not nested, nested  # a nested block beside the flat keys would hold each value twice


def check_run_is_findable(logged: dict) -> None:
    assert logged["name"] == "response-tiny-tiny-fast-s1"
    assert logged["job_type"] == "distill"
    assert logged["tags"] == [*USER_TAGS, "response"]
    assert logged["group"] == "sweep-sw1"
    assert (logged["run_id"], logged["sweep_id"]) == ("run1", "sw1")  # the run the agent launched, in its sweep


def check_lineage(student: dict, teacher: dict) -> None:
    """The teacher's own run logs its file as a model; the student declares that file as input, logs its own."""
    assert teacher["job_type"] == "teacher" and teacher["name"].startswith("teacher-")
    assert teacher["group"] == student["group"] and "kd" not in teacher["config"]
    assert not teacher["sweep_id"] and teacher["run_id"] != student["run_id"]  # a run of its own, not the sweep's
    assert any("val/acc" in row for row in teacher["history"]), "the teacher's training curves"
    (made,) = [a for a in teacher["artifacts"] if a["type"] == "model"]
    assert not made["use"] and made["name"].startswith("teacher-")
    models = {(a["name"], a["use"]) for a in student["artifacts"] if a["type"] == "model"}
    assert models == {(made["name"], True), ("student-response-tiny-tiny-fast-s1", False)}
    images = [row for row in student["history"] if row.get("report/plot/_type") == "image-file"]
    assert len(images) == 1


def check_summaries(logged: dict, results: dict) -> None:
    """Best-of metrics are defined; final numbers are in the summary and never in history."""
    assert logged["metrics"]["val/acc"] == ["max"]
    assert logged["summary"]["val/acc"]["max"] == pytest.approx(results["student/best_val_acc"])
    assert logged["summary"]["student/test_acc"] == pytest.approx(results["student/test_acc"])
    in_history = {key for row in logged["history"] for key in row}
    finals = {k for k, v in results.items() if isinstance(v, int | float) and not k.startswith(("val/", "train/"))}
    assert not in_history & finals, in_history & finals
    assert not {k for k in in_history if k.startswith("test/")}


def test_flat_config_uses_override_keys_and_drops_empty_blocks() -> None:
    config = {"kd": {"temperature": 4.0, "terms": {}, "stages": [1, 2]}, "optim": {"optimizer": {"lr": 0.1}}, "seed": 0}
    assert flat_config(config) == {"kd.temperature": 4.0, "kd.stages": [1, 2], "optim.optimizer.lr": 0.1, "seed": 0}
    assert run_config(config, {"kd": "dkd", "experiment": "None"})["kd"] == "dkd"
    assert "experiment" not in run_config(config, {"experiment": "None"})


def test_run_name_is_the_method_models_other_changed_choices_and_seed() -> None:
    defaults = {"data": "digits", "kd": "response", "teacher": "resnet18", "student": "mobilenet", "trainer": "default"}
    choices = {**defaults, "kd": "dkd", "teacher": "resnet32x4", "student": "resnet8x4", "logger": "wandb"}
    assert run_name(choices, 1, defaults) == "dkd-resnet32x4-resnet8x4-s1"
    assert run_name({**choices, "data": "cifar100"}, 0, defaults) == "dkd-resnet32x4-resnet8x4-cifar100-s0"
    assert run_tags(["a", "response"], ["response", "feature"]) == ["a", "response", "feature"]


def test_an_offline_wandb_run_prints_no_deprecated_anonymous_warning(tmp_path: Path) -> None:
    """Lightning passes ``anonymous=None`` to wandb.init, which wandb 0.31 answers with a warning on every run."""
    code = (
        "from kdlab.tracking.logger import wandb_logger\n"
        f"logger = wandb_logger({str(tmp_path)!r}, mode='offline')\n"
        "logger.experiment.log({'a': 1})\n"
        "import wandb; wandb.finish()\n"
    )
    env = {**os.environ, "WANDB_SILENT": "false"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "offline" in done.stderr + done.stdout  # wandb did speak: the check below is not vacuous
    assert "anonymous" not in done.stderr + done.stdout
