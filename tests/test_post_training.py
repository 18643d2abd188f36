"""int8 quantization (PT2E PTQ and QAT), magnitude pruning and ONNX export on tiny timm and hand-built models, CPU."""

from __future__ import annotations

import copy
import re
import sys

import pytest
import timm
import torch
from timm.layers import Linear as TimmLinear
from torch import nn

from kdlab.errors import ConfigError
from kdlab.measure import count_macs, count_nonzero_parameters, count_parameters, is_quantized, size_on_disk
from kdlab.post import (
    apply_pruning,
    check_onnx,
    convert_qat,
    export_onnx,
    fake_quantizers,
    global_magnitude_prune,
    int8_kernels,
    make_pruning_permanent,
    prepare_qat,
    quantization_mode,
    quantize_int8,
    simulation_gap,
    weight_codes,
    weight_sparsity,
)
from kdlab.report.table import compression_report


def tiny_resnet() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("test_resnet", num_classes=10, in_chans=1).eval()


def image_batches(n: int = 4, size: int = 32) -> list[dict[str, torch.Tensor]]:
    return [{"image": torch.randn(8, 1, size, size), "target": torch.randint(0, 10, (8,))} for _ in range(n)]


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), TimmLinear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def trained_like_resnet() -> nn.Module:
    """test_resnet with non-zero BatchNorm scales: timm zero-initialises the last BN of each block, and QAT's
    conv-BN folding divides by that scale (a trained student never has an exact zero there)."""
    model = tiny_resnet()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
    return model


class DataDependent(nn.Module):
    """Python control flow on a tensor value: torch.export cannot capture it, so int8 cannot apply."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean((2, 3))
        return self.fc(x if x.sum() > 0 else -x)


def int8_weights(model: nn.Module) -> list[torch.Tensor]:
    return [value for value in model.state_dict().values() if value.dtype == torch.int8]


def test_ptq_int8_resnet_runs_int8_kernels_close_to_fp32_and_is_smaller():
    model, batches = tiny_resnet(), image_batches()
    int8 = quantize_int8(model, batches)
    assert quantization_mode(int8) == "ptq" and is_quantized(int8)
    convs_and_linears = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())
    assert len(int8_kernels(int8)) == convs_and_linears  # every conv and the classifier run as oneDNN int8
    assert len(int8_weights(int8)) == convs_and_linears
    x = batches[0]["image"]
    with torch.no_grad():
        reference, logits = model(x), int8(x)
        assert int8(torch.randn(1, 1, 32, 32)).shape == (1, 10)  # one graph, any batch (the report times 1 and 32)
    assert (logits - reference).abs().max() <= 0.1 * reference.abs().max()
    assert size_on_disk(int8) < 0.5 * size_on_disk(model)  # int8 weights: a quarter of fp32, plus scales


def test_an_int8_mobilenet_is_sized_by_its_int8_weights_not_its_packed_kernels():
    """Lowered to oneDNN, MobileNetV3's graph held packed weight copies larger than the fp32 model (8.9 MB > 6.2 MB):
    the report must size the int8 model one ships, read before packing."""
    torch.manual_seed(0)
    model = timm.create_model("mobilenetv3_small_100", num_classes=10, in_chans=1).eval()
    int8 = quantize_int8(model, image_batches(1, 8))
    dense_int8 = sum(t.numel() for t in int8_weights(int8))  # one byte per int8 weight
    assert dense_int8 <= size_on_disk(int8) < 0.4 * size_on_disk(model)


def test_four_bit_weights_use_sixteen_levels_per_channel_on_the_same_int8_kernels():
    """post.quant_weight_bits=4 (W4A8): the int8 weights hold codes in [-8, 7] only, on the same oneDNN kernels (the
    QAT model's codes are checked through a run: test_run_report's QAT row)."""
    model, batches = tiny_resnet(), image_batches()
    w8, w4 = quantize_int8(model, batches), quantize_int8(model, batches, weight_bits=4)
    low8, high8 = weight_codes(w8)
    assert high8 - low8 >= 250  # 8 bits: the full int8 range is used
    assert weight_codes(w4) == (-8, 7)  # the largest weight of some channel lands on each end of the 4-bit range
    packed = [t.to_dense() if t.is_mkldnn else t for t in int8_weights(w4)]  # the weights the kernels run
    assert packed and all(int(t.min()) >= -8 and int(t.max()) <= 7 for t in packed)
    assert int8_kernels(w4) == int8_kernels(w8) and size_on_disk(w4) == pytest.approx(size_on_disk(w8), rel=0.01)
    x = batches[0]["image"]
    with torch.no_grad():
        reference = model(x)
        assert (w4(x) - reference).abs().mean() > (w8(x) - reference).abs().mean()  # 16 levels round more


def conv_bn_net() -> nn.Module:
    """Two conv-BN-ReLU blocks and a classifier, trained-looking BN statistics: QAT's conv-BN folding in miniature."""
    torch.manual_seed(0)
    blocks = [nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 8, 3), nn.BatchNorm2d(8), nn.ReLU()]
    model = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            (
                module.running_mean.uniform_(-1, 1),
                module.running_var.uniform_(0.5, 2),
                module.weight.data.uniform_(0.5, 1.5),
            )
    return model.eval()


@pytest.mark.slow  # 45 s of torchao's QAT conversion; the default tier checks post/qat_int8_vs_simulation in a run
def test_the_int8_model_computes_what_qat_trained() -> None:
    """The converted int8 model gives the fake-quantized model's logits (observers frozen): QAT's weights land on the
    grid they were trained on. torchao's fused weight fake-quantizer trained on another grid (31 % apart at 4 bits)."""
    batches = image_batches(3, 16)
    prepared = prepare_qat(conv_bn_net(), batches[0]["image"], weight_bits=4)  # 4 bits: a grid mismatch shows most
    prepared.train()
    with torch.no_grad():
        for batch in batches:  # the observers see training batches, as in a fine-tune
            prepared(batch["image"])
    simulated_before = copy.deepcopy(prepared).eval()
    int8 = convert_qat(prepared, batches[0]["image"])
    x = batches[1]["image"]
    for quantizer in fake_quantizers(simulated_before):
        quantizer.disable_observer()
    pytest.importorskip("torchao").quantization.pt2e.move_exported_model_to_eval(simulated_before)
    with torch.no_grad():
        simulated, shipped = simulated_before(x), int8(x)
    # equal but for an activation that rounds the other way at a tie (one logit moves by one level): the mean says so
    assert (simulated - shipped).abs().mean() <= 1e-2 * shipped.abs().mean()
    assert simulation_gap(int8) <= 1e-2  # what the report records as post/qat_int8_vs_simulation


@pytest.mark.parametrize("bits", [1, 9, 4.0, True])
def test_weight_bits_outside_int8_is_a_config_error(bits):
    from kdlab.post.settings import check_post_config

    with pytest.raises(
        ConfigError,
        match=re.escape(f"post.quant_weight_bits must be an integer in [2, 8] (int8 kernels), got {bits!r}"),
    ):
        check_post_config({"quantize": "int8", "quant_weight_bits": bits})


def test_model_that_does_not_export_is_a_config_error():
    with pytest.raises(ConfigError, match=re.escape("torch.export can capture; DataDependent")):
        quantize_int8(DataDependent(), image_batches(1, 8))


def test_quantize_needs_calibration_batches():
    with pytest.raises(ConfigError, match="no calibration batches"):
        quantize_int8(tiny_resnet(), [])


def test_int8_models_are_not_counted_but_still_reported():
    int8 = quantize_int8(tiny_resnet(), image_batches(1))
    with pytest.raises(ValueError, match="int8"):
        count_macs(int8, (1, 32, 32))
    batches = image_batches(2)
    (report,) = compression_report({"student+int8": (int8, "r")}, batches, (1, 32, 32), 10, warmup=0, repeats=1)
    assert report.params is None and report.macs is None and report.size_bytes == size_on_disk(int8)


@pytest.mark.slow  # the default tier checks the same through a run: test_run_report's QAT + KD row
def test_qat_fine_tunes_through_fake_quant_and_converts_to_int8():
    model, batches = trained_like_resnet(), image_batches(3)
    prepared = prepare_qat(model, batches[0]["image"])
    quantizers = fake_quantizers(prepared)
    assert quantizers and all(float(q.scale.flatten()[0]) == 1.0 for q in quantizers)  # not yet observed
    optimizer = torch.optim.SGD(prepared.parameters(), lr=0.05)
    prepared.train()
    for batch in batches:
        loss = nn.functional.cross_entropy(prepared(batch["image"]), batch["target"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(float(q.scale.flatten()[0]) != 1.0 for q in quantizers)  # every fake quantizer saw training data
    int8 = convert_qat(prepared, batches[0]["image"])
    assert quantization_mode(int8) == "qat" and int8_kernels(int8) and int8_weights(int8)
    ptq = quantize_int8(model, batches)
    x = batches[0]["image"]
    with torch.no_grad():
        assert not torch.allclose(int8(x), ptq(x), atol=1e-3)  # the QAT steps changed the int8 model


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
    diff = check_onnx(path, model, torch.randn(5, 1, 32, 32))  # batch 5 ≠ export batch 2: the axis is dynamic
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
