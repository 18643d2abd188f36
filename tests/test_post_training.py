"""int8 quantization, magnitude pruning and ONNX export on tiny timm and hand-built models, CPU only."""

from __future__ import annotations

import re
import sys

import pytest
import timm
import torch
from timm.layers import Linear as TimmLinear
from torch import nn

from kdlab.errors import ConfigError
from kdlab.measure import count_macs, count_nonzero_parameters, count_parameters, size_on_disk
from kdlab.post import (
    apply_pruning,
    check_onnx,
    export_onnx,
    global_magnitude_prune,
    make_pruning_permanent,
    quantization_mode,
    quantize_int8,
    weight_sparsity,
)
from kdlab.report.table import compression_report


def tiny_resnet() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("test_resnet", num_classes=10, in_chans=1).eval()


def image_batches(n: int = 4, size: int = 32) -> list[dict[str, torch.Tensor]]:
    return [{"image": torch.randn(8, 1, size, size), "target": torch.randint(0, 10, (8,))} for _ in range(n)]


def mlp() -> nn.Module:
    """Uses timm's Linear subclass, which the dynamic quantizer skips unless kdlab swaps it for nn.Linear."""
    return nn.Sequential(nn.Flatten(), TimmLinear(64, 128), nn.ReLU(), nn.Linear(128, 10))


class DataDependent(nn.Module):
    """Python control flow on a tensor value: torch.fx cannot trace it, so static quantization cannot apply."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean((2, 3))
        return self.fc(x if x.sum() > 0 else -x)


def test_static_int8_resnet_runs_close_to_fp32_and_is_smaller():
    model, batches = tiny_resnet(), image_batches()
    int8 = quantize_int8(model, batches)
    assert quantization_mode(int8) == "static"
    x = batches[0]["image"]
    with torch.no_grad():
        reference, logits = model(x), int8(x)
    assert logits.shape == (8, 10) and logits.dtype == torch.float32
    assert (logits - reference).abs().max() <= 0.1 * reference.abs().max()
    assert size_on_disk(int8) < 0.5 * size_on_disk(model)  # int8 weights: a quarter of fp32, plus scales
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the input model is left as it was


def test_dynamic_int8_quantizes_timm_linear_too():
    model = mlp()
    int8 = quantize_int8(model, mode="dynamic")
    assert quantization_mode(int8) == "dynamic"
    assert not any(type(m) in (nn.Linear, TimmLinear) for m in int8.modules())
    assert size_on_disk(int8) < 0.5 * size_on_disk(model)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert (int8(x) - model(x)).abs().max() <= 0.1 * model(x).abs().max()


def test_auto_falls_back_to_dynamic_when_the_model_does_not_trace():
    int8 = quantize_int8(DataDependent(), image_batches(1, 8))
    assert quantization_mode(int8) == "dynamic"
    assert int8(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_explicit_static_fails_loudly_where_auto_falls_back():
    with pytest.raises(ConfigError, match="static int8 quantization failed"):
        quantize_int8(DataDependent(), image_batches(1, 8), mode="static")


@pytest.mark.parametrize(("kwargs", "message"), [({"mode": "int4"}, "int4"), ({"mode": "static"}, "calibration")])
def test_quantize_rejects_bad_requests(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        quantize_int8(mlp(), **kwargs)


def test_int8_models_are_not_counted_but_still_reported():
    int8 = quantize_int8(mlp(), mode="dynamic")
    with pytest.raises(ValueError, match="int8"):
        count_macs(int8, (1, 8, 8))
    batches = [{"image": torch.randn(4, 1, 8, 8), "target": torch.arange(4)}]
    (report,) = compression_report({"student+int8": (int8, "mlp")}, batches, (1, 8, 8), 10, warmup=0, repeats=1)
    assert report.params is None and report.macs is None and report.size_bytes == size_on_disk(int8)


def test_pruning_half_zeros_half_the_weights_and_survives_fine_tuning():
    model = tiny_resnet().train()
    params = count_parameters(model)
    apply_pruning(model, 0.5)
    assert weight_sparsity(model) == pytest.approx(0.5, abs=1e-3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 1, 32, 32)).sum().backward()
    optimizer.step()
    model(torch.randn(4, 1, 32, 32))  # the mask is reapplied before each forward
    assert weight_sparsity(model) >= 0.5
    make_pruning_permanent(model)
    assert not any(name.endswith("_orig") for name, _ in model.named_parameters())
    assert weight_sparsity(model) >= 0.5
    assert count_parameters(model) == params  # zeros are stored densely
    prunable = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert count_nonzero_parameters(model) <= params - prunable // 2


def test_one_shot_pruning_counts_nonzeros_through_masks():
    model = mlp()
    prunable = 64 * 128 + 128 * 10
    apply_pruning(model, 0.25)
    masked = count_nonzero_parameters(model)
    assert masked == count_parameters(model) - round(0.25 * prunable)
    assert count_nonzero_parameters(global_magnitude_prune(mlp(), 0.25)) == masked


@pytest.mark.parametrize("amount", [1.5, 0.0, 1.0, -0.1])
def test_pruning_amount_outside_zero_one_is_a_config_error(amount):
    with pytest.raises(ConfigError, match=re.escape(str(amount))):
        apply_pruning(mlp(), amount)


def test_onnx_round_trip_on_test_resnet(tmp_path):
    model = tiny_resnet()
    path = export_onnx(model, (1, 32, 32), tmp_path / "student.onnx")
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == ["student.onnx"]
    diff = check_onnx(path, model, torch.randn(5, 1, 32, 32))  # batch 5 ≠ export batch 1: the axis is dynamic
    assert diff <= 1e-4


def test_failed_export_leaves_no_file(tmp_path):
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        export_onnx(Broken(), (1, 8, 8), tmp_path / "broken.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_onnxruntime_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ConfigError, match="'onnxruntime'"):
        check_onnx(tmp_path / "x.onnx", mlp(), torch.randn(1, 1, 8, 8))
