"""Channel pruning removes whole channels (parameters and MACs drop, the model still runs), and a pruned model survives
a ``weights_only`` round trip through its recorded structure."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import timm
import torch
from conftest import FAST, compose_config

pytest.importorskip("torch_pruning")

from kdlab.errors import ConfigError
from kdlab.measure.macs import count_macs
from kdlab.post.channels import ChannelPruner, channel_prune, pruned_structure, restore_structure
from kdlab.post.onnx_export import check_onnx, export_onnx
from kdlab.report.evaluate import evaluate_run
from kdlab.run import run


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["test_resnet", "mobilenetv3_small_100"])
def test_half_the_channels_go_and_the_model_still_classifies(name: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10, in_chans=1).eval()
    example = torch.randn(1, 1, 32, 32)
    params, macs = _params(model), count_macs(model, (1, 32, 32))
    channel_prune(model, example, 0.5)
    assert _params(model) < 0.35 * params  # half the channels on both sides of most weights: about a quarter left
    assert count_macs(model, (1, 32, 32)) < 0.5 * macs
    assert model.get_classifier().out_features == 10  # the class count is never pruned
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 10)


def test_a_pruned_model_round_trips_through_a_weights_only_checkpoint() -> None:
    model = timm.create_model("mobilenetv3_small_100", num_classes=10, in_chans=1).eval()
    channel_prune(model, torch.randn(1, 1, 32, 32), 0.5)
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "structure": pruned_structure(model)}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    rebuilt = timm.create_model("mobilenetv3_small_100", num_classes=10, in_chans=1)
    restore_structure(rebuilt, saved["structure"], saved["state_dict"]).load_state_dict(saved["state_dict"])
    x = torch.randn(4, 1, 32, 32)
    assert torch.allclose(rebuilt.eval()(x), model(x), atol=1e-5)


def test_a_structure_from_another_architecture_is_refused() -> None:
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    with pytest.raises(ConfigError, match="pruned checkpoint has layers this model lacks"):
        restore_structure(model, {"blocks.99.conv": {"out_channels": 4}}, {})


def test_iterative_steps_prune_a_share_each() -> None:
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1).eval()
    pruner = ChannelPruner(model, torch.randn(1, 1, 32, 32), 0.5, steps=2)
    sizes = [_params(model)]
    for _ in range(2):
        pruner.step()
        sizes.append(_params(model))
    assert sizes[0] > sizes[1] > sizes[2]
    with pytest.raises(RuntimeError, match="all 2 pruning steps are done"):
        pruner.step()


@pytest.mark.parametrize(("amount", "steps", "message"), [(1.0, 1, "post.prune must"), (0.5, 0, "post.prune_steps")])
def test_bad_amounts_and_steps_name_the_value(amount: float, steps: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ChannelPruner(timm.create_model("test_resnet", num_classes=10), torch.randn(1, 3, 32, 32), amount, steps)


def test_a_channel_pruned_model_exports_to_onnx(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1).eval()
    channel_prune(model, torch.randn(1, 1, 32, 32), 0.5)
    path = export_onnx(model, (1, 32, 32), tmp_path / "pruned.onnx")
    assert check_onnx(path, model, torch.randn(4, 1, 32, 32)) < 1e-4


CHANNEL = ["post.prune=0.5", "post.prune_kind=channel", "post.prune_steps=2", "post.prune_finetune_epochs=2"]


@pytest.fixture(scope="module")
def channel_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    job = tmp_path_factory.mktemp("channel") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KDLAB_CACHE", str(job.parent / "cache"))
        run(compose_config(*FAST, *CHANNEL), job)
    return job


def test_a_run_reports_a_smaller_faster_pruned_student_healed_by_the_teacher(channel_run: Path) -> None:
    results = json.loads((channel_run / "results.json").read_text())
    assert results["post/prune_kind"] == "channel" and results["post/prune_healer"] == "KD"
    assert results["post/prune_steps"] == 2
    student, pruned = "report/student", "report/student+pruned"
    assert results[f"{pruned}/params"] < 0.35 * results[f"{student}/params"]
    assert results[f"{pruned}/macs"] < 0.5 * results[f"{student}/macs"]
    assert results[f"{pruned}/size_bytes"] < 0.5 * results[f"{student}/size_bytes"]
    assert 0 <= results[f"{pruned}/top1"] <= 100


def test_evaluate_reloads_the_pruned_student_and_the_ablation_heals_without_the_teacher(
    channel_run: Path, tmp_path: Path
) -> None:
    job = tmp_path / "run"
    shutil.copytree(channel_run, job)
    saved = (job / "student-pruned.pt").stat().st_mtime_ns
    evaluate_run(job, [])
    assert (job / "student-pruned.pt").stat().st_mtime_ns == saved  # reshaped from its structure, not pruned again
    before = json.loads((channel_run / "results.json").read_text())
    after = json.loads((job / "results.json").read_text())
    assert after["report/student+pruned/top1"] == before["report/student+pruned/top1"]
    evaluate_run(job, ["post.prune_teacher=false"])
    ablation = json.loads((job / "results.json").read_text())
    assert ablation["post/prune_healer"] == "CE"
    assert ablation["report/student+pruned/params"] == before["report/student+pruned/params"]  # same channels go
    assert (job / "student-pruned.pt").stat().st_mtime_ns != saved  # fine-tuned again, by cross-entropy


def test_channel_pruning_with_feature_terms_is_refused_before_it_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"post.prune_kind=channel distils through the logits only"):
        run(compose_config(*FAST, "kd=fitnet", *CHANNEL), tmp_path / "run")
