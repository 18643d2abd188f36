"""The compression report of a real run: a tiny sweep (baseline + distilled student with every post step), checked
against counts made independently, then recomputed by ``kdlab.report.evaluate``; bad ``post`` values fail first."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from conftest import FAST, REPO, compose_config
from torch import nn

from kdlab.errors import ConfigError
from kdlab.models.files import load_into
from kdlab.report.baseline import find_baseline_run
from kdlab.report.evaluate import evaluate_run, main, run_config
from kdlab.run import run
from kdlab.run.validate import validate_config
from kdlab.tracking import read_offline_run

QUICK_LATENCY = ["post.latency.repeats=3", "post.latency.warmup=1", "post.latency.threads=1"]
POST = ["post.quantize=int8", "post.prune=0.5", "post.export=onnx", "post.prune_finetune_epochs=1"]
ROWS = ["teacher", "baseline", "student", "student+int8", "student+pruned"]
FIELDS = ["top1", "size_bytes", "latency_b1_ms", "latency_b32_ms", "threads", "retention", "size_reduction"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-job 'multirun': the kd=none baseline, then the distilled student with int8, pruning and ONNX."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "multirun.yaml").write_text("# written by Hydra's sweeper in a real multirun\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KDLAB_CACHE", str(root / "cache"))
        run(compose_config(*FAST, "kd=none", *QUICK_LATENCY), root / "0")
        run(compose_config(*FAST, "logger=wandb", *POST, *QUICK_LATENCY), root / "1")
    return root


def results_of(job: Path) -> dict:
    return json.loads((job / "results.json").read_text())


def tiny(path: Path) -> nn.Module:
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    load_into(model, path, "test_resnet", 10, 1)
    return model.eval()


def layerwise_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Hand formula per layer, read off forward hooks: conv C_in/groups·k·k per output element, linear in·out."""
    total = 0

    def count(module: nn.Module, _, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out[0].numel() * module.in_channels // module.groups * kh * kw
        else:
            total += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for hook in hooks:
        hook.remove()
    return total


def test_report_rows_and_fields(sweep: Path) -> None:
    results = results_of(sweep / "1")
    assert results["report/roles"] == ROWS
    for role in ROWS:
        for field in FIELDS:
            assert f"report/{role}/{field}" in results, f"report/{role}/{field}"
        assert results[f"report/{role}/threads"] == 1
        for batch in ("b1", "b32"):
            latency = results[f"report/{role}/latency_{batch}_ms"]
            assert math.isfinite(latency) and latency > 0
    teacher_top1 = results["report/teacher/top1"]
    assert results["report/student/retention"] == pytest.approx(results["report/student/top1"] / teacher_top1)
    assert results["report/test_samples"] == 360  # the whole digits test split, not trainer=fast's one batch
    assert (sweep / "1" / "report.png").stat().st_size > 10_000


def test_params_and_macs_match_independent_counts(sweep: Path) -> None:
    results, student = results_of(sweep / "1"), tiny(sweep / "1" / "student.pt")
    assert results["report/student/params"] == sum(p.numel() for p in student.parameters())
    assert results["report/student/params"] == results["student/params"]
    assert results["report/student/macs"] == layerwise_macs(student, (1, 32, 32))
    assert results["report/teacher/params"] == results["teacher/params"]


def test_baseline_row_is_the_kd_none_job(sweep: Path) -> None:
    baseline_run, distilled = results_of(sweep / "0"), results_of(sweep / "1")
    assert baseline_run["report/roles"] == ["teacher", "student"]  # the baseline has no baseline of its own
    assert distilled["report/baseline/top1"] == baseline_run["report/student/top1"]  # same weights, same test split
    assert distilled["report/baseline/params"] == distilled["report/student/params"]


def test_int8_student_is_smaller_and_reported(sweep: Path) -> None:
    results = results_of(sweep / "1")
    assert results["post/int8_mode"] == "ptq"
    assert results["report/student+int8/size_bytes"] < 0.5 * results["report/student/size_bytes"]
    assert 0.0 <= results["report/student+int8/top1"] <= 1.0
    assert "report/student+int8/params" not in results  # packed int8 weights are not counted, not faked
    assert results["report/student+int8/name"] == "test_resnet int8 (PTQ)"


@pytest.mark.parametrize(
    ("teacher", "recipe"),
    [(True, "QAT + KD"), pytest.param(False, "QAT", marks=pytest.mark.slow)],  # the ablation: same path, no teacher
)
def test_qat_row_is_int8_and_was_trained(sweep: Path, tmp_path: Path, teacher: bool, recipe: str) -> None:
    """Through ``kdlab-evaluate`` in its own process, as a user runs it. In this test process (after the sweep
    fixture's runs) torchao's prepare_qat_pt2e failed with torch.fx's KeyError('custom') from its global trace
    metadata; a fresh process does not (see experiments/compression/README.md)."""
    job = tmp_path / "1"
    shutil.copytree(sweep / "1", job)
    post = ["post.quantize=qat", "post.qat_epochs=1", f"post.qat_teacher={str(teacher).lower()}", "post.prune=null"]
    post += ["post.export=null", "post.quant_weight_bits=4"]  # ONNX is test_onnx_export_round_trips's; 4 bits: W4A8
    command = [sys.executable, "-m", "kdlab.report.evaluate", str(job), *post, *QUICK_LATENCY]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(job)
    assert "post/qat_error" not in results, results.get("post/qat_error")
    assert results["report/student+int8-qat/name"] == f"test_resnet int8 ({recipe}, 1 ep, 4-bit weights)"
    assert results["report/student+int8/name"] == "test_resnet int8 (PTQ, 4-bit weights)"
    for row in ("int8", "qat"):  # both int8 models hold 4-bit weight codes, at each end of the range somewhere
        assert (results[f"post/{row}_weight_code_min"], results[f"post/{row}_weight_code_max"]) == (-8, 7)
    assert results["post/qat_teacher"] is teacher and results["post/qat_epochs"] == 1
    assert results["post/qat_fake_quantizers"] > 0 and results["post/qat_weight_change"] > 0
    assert results["post/qat_int8_vs_simulation"] <= 1e-2  # the int8 model computes what the fake-quant model trained
    assert 0.0 <= results["report/student+int8-qat/top1"] <= 1.0
    qat_size, ptq_size = results["report/student+int8-qat/size_bytes"], results["report/student+int8/size_bytes"]
    assert qat_size == pytest.approx(ptq_size, rel=0.02)  # the same int8 graph: the same size
    assert "report/student+int8-qat/params" not in results


def test_pruned_student_keeps_half_its_weights_after_distilling(sweep: Path) -> None:
    results = results_of(sweep / "1")
    student, pruned = tiny(sweep / "1" / "student.pt"), tiny(sweep / "1" / "student-pruned.pt")
    prunable = sum(m.weight.numel() for m in student.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    expected = results["report/student/params"] - prunable / 2
    assert results["report/student+pruned/nonzero_params"] == pytest.approx(expected, abs=0.01 * prunable)
    assert results["post/pruned_weight_sparsity"] >= 0.5
    pairs = zip(pruned.parameters(), student.parameters(), strict=True)
    moved = any(not torch.equal(after[after != 0], before[after != 0]) for after, before in pairs)
    assert moved, "the fine-tune after pruning did not change the surviving weights"


def test_onnx_export_round_trips(sweep: Path) -> None:
    results = results_of(sweep / "1")
    assert Path(results["student/onnx_path"]).is_file()
    assert results["student/onnx_max_abs_diff"] <= 1e-4
    relative = results["student/onnx_max_abs_diff"] / results["student/onnx_max_abs_logit"]
    assert results["student/onnx_max_rel_diff"] == pytest.approx(relative)


def test_report_reaches_wandb(sweep: Path) -> None:
    results = results_of(sweep / "1")
    offline = read_offline_run(Path(results["wandb/dir"]).parent)
    assert offline["summary"]["report/student/top1"] == results["report/student/top1"]
    tables = [step for step in offline["history"] if step.get("report/table/_type") == "table-file"]
    assert len(tables) == 1 and tables[0]["report/table/nrows"] == len(ROWS)


def test_inheritance_keys_against_the_baseline(sweep: Path) -> None:
    """Every run reports what the student inherited, from the report's own test logits; the sweep's baseline too."""
    results = results_of(sweep / "1")
    for role in ("teacher", "baseline", "student"):
        assert 0.0 <= results[f"{role}/test_ece"] <= 1.0
        per_class = [results[f"{role}/per_class_acc/{c}"] for c in range(10)]
        assert sum(per_class) / 10 == pytest.approx(results[f"report/{role}/top1"], abs=0.05)  # near-balanced split
    difference = results["student/copied_error_rate"] - results["baseline/copied_error_rate"]
    assert results["student/copied_error_rate_vs_baseline"] == pytest.approx(difference)
    delta = results["student/per_class_acc/3"] - results["teacher/per_class_acc/3"]
    assert results["student/per_class_delta_vs_teacher/3"] == pytest.approx(delta)
    assert Path(results["report/confusion_plot"]).is_file()
    assert "baseline/test_ece" not in results_of(sweep / "0")  # the baseline job is not its own baseline
    offline = read_offline_run(Path(results["wandb/dir"]).parent)
    assert any(step.get("report/confusion/_type") == "image-file" for step in offline["history"])


def test_evaluate_recomputes_an_old_run(sweep: Path, tmp_path: Path) -> None:
    """A copy of the run, stripped back to what a run made before the report wrote, gets it from the evaluate CLI."""
    job = tmp_path / "sweep" / "1"
    shutil.copytree(sweep / "1", job)
    old = {k: v for k, v in results_of(job).items() if not k.startswith(("report/", "post/", "student/onnx"))}
    del old["config"]["post"]
    (job / "results.json").write_text(json.dumps(old))
    flat = evaluate_run(job, ["post.quantize=int8", *QUICK_LATENCY])
    results = results_of(job)
    assert results["report/roles"] == ["teacher", "student", "student+int8"]  # no sweep around the copy: no baseline
    assert (
        results["student/test_acc"] == old["student/test_acc"] and results["report/source"] == "kdlab.report.evaluate"
    )
    assert results["config"]["post"]["quantize"] == "int8"
    assert results["report/student/top1"] == results_of(sweep / "1")["report/student/top1"]
    assert results["report/roles"] == flat["report/roles"]
    assert all(f"report/{role}/top1" in results for role in results["report/roles"])  # a stored row per role


def test_evaluate_reuses_the_pruned_student(sweep: Path, tmp_path: Path) -> None:
    job = tmp_path / "1"
    shutil.copytree(sweep / "1", job)
    saved = (job / "student-pruned.pt").stat().st_mtime_ns
    evaluate_run(job, QUICK_LATENCY)
    assert (job / "student-pruned.pt").stat().st_mtime_ns == saved  # loaded, not pruned and fine-tuned again
    before, after = results_of(sweep / "1"), results_of(job)
    for key in ("report/student+pruned/top1", "report/student+pruned/nonzero_params"):
        assert after[key] == before[key]


def test_evaluate_explains_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err
    (tmp_path / "results.json").write_text(json.dumps({"status": "completed", "config": {}}))
    assert main([str(tmp_path)]) == 2
    assert "no student.pt" in capsys.readouterr().err


def test_baseline_needs_a_sweep_folder(tmp_path: Path) -> None:
    for job, kd in (("0", "none"), ("1", "response")):
        (tmp_path / job).mkdir()
        (tmp_path / job / "student.pt").write_bytes(b"")
        results = {"status": "completed", "kd/method": kd, "student/name": "s", "data/name": "d", "seed": 0}
        (tmp_path / job / "results.json").write_text(json.dumps(results))
    assert find_baseline_run(tmp_path / "1", "s", "d", 0) is None  # loose runs side by side are not a sweep
    (tmp_path / "multirun.yaml").write_text("")
    assert find_baseline_run(tmp_path / "1", "s", "d", 0) == (tmp_path / "0").resolve()
    assert find_baseline_run(tmp_path / "1", "other", "d", 0) is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("post.quantize=int4", "post.quantize must be null, int8 or qat, got 'int4'"),
        ("post.qat_epochs=0", "post.qat_epochs must be an integer >= 1, got 0"),
        ("post.qat_teacher=maybe", "post.qat_teacher must be true or false, got 'maybe'"),
        ("post.qat_lr_factor=0", "post.qat_lr_factor must be a finite number > 0, got 0"),
        ("post.prune=1.5", "post.prune must be null or a fraction in (0, 1), got 1.5"),
        ("post.prune=0", "post.prune must be null or a fraction in (0, 1), got 0"),
        ("post.export=tflite", "post.export must be null or onnx, got 'tflite'"),
        ("post.latency.repeats=0", "post.latency.repeats must be an integer >= 1, got 0"),
        ("post.prune_finetune_epochs=-1", "post.prune_finetune_epochs must be an integer >= 0, got -1"),
        ("post.prune_kind=filters", "post.prune_kind must be unstructured or channel, got 'filters'"),
        ("post.prune_steps=0", "post.prune_steps must be an integer >= 1, got 0"),
        ("post.prune_teacher=maybe", "post.prune_teacher must be true or false, got 'maybe'"),
    ],
)
def test_bad_post_values_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(compose_config(*FAST, override))
    assert str(caught.value) == message


def test_bad_post_value_stops_a_run_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"post\.export"):
        run(compose_config(*FAST, "post.export=tflite"), tmp_path)
    assert not (tmp_path / "results.json").exists() and not any(tmp_path.iterdir())


def test_evaluate_rejects_overrides_outside_post() -> None:
    with pytest.raises(ConfigError, match=r"only post\.<key>=<value> overrides.*student=tiny"):
        run_config({"config": {}}, ["student=tiny"])
