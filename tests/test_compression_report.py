"""Counts checked against hand arithmetic, timings for sanity, accuracy on logits we choose, ratios and the table."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from rich.console import Console
from torch import nn

from kdlab.errors import ConfigError
from kdlab.measure import (
    count_macs,
    count_nonzero_parameters,
    count_parameters,
    evaluate_accuracy,
    measure_latency,
    size_on_disk,
)
from kdlab.report.table import ModelReport, add_ratios, compression_report, render_table, report_to_dict


def hand_net() -> nn.Module:
    """Conv2d(1→4, 3×3, no bias) on 8×8 gives 4×6×6, flattened into Linear(144→10)."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


class Passthrough(nn.Module):
    """The 'image' is the logits: lets a test choose exactly what the model predicts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_count_parameters_matches_hand_sum():
    conv = 4 * 1 * 3 * 3  # C_out · C_in · k · k = 36
    linear = 144 * 10 + 10  # weights + bias = 1450
    assert count_parameters(hand_net()) == conv + linear == 1486


def test_nonzero_parameters_drop_by_the_zeros_set():
    net = hand_net()
    with torch.no_grad():
        net[0].weight[:2].zero_()  # two of four 1×3×3 filters: 18 weights
        net[3].bias.zero_()  # 10 biases
    assert count_parameters(net) == 1486
    assert count_nonzero_parameters(net) == 1486 - 18 - 10


def test_count_macs_matches_hand_count():
    conv = 4 * 6 * 6 * 1 * 3 * 3  # C_out · H_out · W_out · C_in · k · k = 1296
    linear = 144 * 10  # in · out = 1440
    assert count_macs(hand_net(), (1, 8, 8)) == conv + linear == 2736


def test_measuring_keeps_each_submodules_train_flag():
    net = hand_net().train()
    net[0].eval()  # a mixed tree, like a student holding a frozen part
    count_macs(net, (1, 8, 8))
    measure_latency(net, (1, 8, 8), warmup=0, repeats=1)
    assert net.training and net[3].training and not net[0].training


def test_latency_is_positive_ordered_and_restores_threads():
    before = torch.get_num_threads()
    result = measure_latency(hand_net(), (1, 8, 8), batch_size=4, warmup=1, repeats=5, threads=1)
    assert math.isfinite(result.median_ms) and result.median_ms > 0
    assert result.p10_ms <= result.median_ms <= result.p90_ms
    assert (result.batch_size, result.threads, result.repeats) == (4, 1, 5)
    assert torch.get_num_threads() == before


def test_latency_rejects_zero_repeats():
    with pytest.raises(ConfigError, match="repeats"):
        measure_latency(hand_net(), (1, 8, 8), repeats=0)


def test_accuracy_on_chosen_logits():
    logits = torch.tensor([[0.0, 1, 2, 3, 4, 5, 6], [6.0, 5, 4, 3, 2, 1, 0]])
    # sample 0: target 6 is ranked 1st, target 3 ranked 4th; sample 1: target 0 ranked 1st, target 6 ranked 7th
    batches = [
        {"image": logits, "target": torch.tensor([6, 0])},  # two top-1 hits
        {"image": logits, "target": torch.tensor([3, 6])},  # one top-5 hit (rank 4), one miss (rank 7)
    ]
    assert evaluate_accuracy(Passthrough(), iter(batches), num_classes=7) == {"top1": 0.5, "top5": 0.75}


def test_accuracy_has_no_top5_with_five_classes_or_fewer():
    batches = [{"image": torch.eye(5), "target": torch.arange(5)}]
    assert evaluate_accuracy(Passthrough(), batches, num_classes=5) == {"top1": 1.0, "top5": None}


def test_accuracy_rejects_empty_batches():
    with pytest.raises(ConfigError, match="empty"):
        evaluate_accuracy(Passthrough(), [], num_classes=10)


def test_size_on_disk_holds_the_fp32_weights():
    small, large = nn.Linear(10, 10), nn.Linear(100, 100)
    assert 4 * 110 < size_on_disk(small) < 4 * 10100 < size_on_disk(large)  # 4 bytes per fp32 weight, plus headers


def row(role: str, top1: float, params: int | None, size: int, b1: float, b32: float) -> ModelReport:
    return ModelReport(role, f"{role}-net", top1, None, params, params, None, size, b1, b32, threads=1)


def test_ratios_against_the_teacher():
    teacher = row("teacher", 0.80, 4000, 8000, 10.0, 100.0)
    student = row("student", 0.76, 1000, 2000, 2.0, 25.0)
    int8 = row("student+int8", 0.60, None, 500, 4.0, 50.0)
    reports = add_ratios([teacher, student, int8])
    assert reports[0].retention == 1.0 and reports[0].speedup_b1 == 1.0
    assert reports[1].retention == pytest.approx(0.95)
    assert reports[1].params_reduction == 4.0
    assert reports[1].size_reduction == 4.0
    assert (reports[1].speedup_b1, reports[1].speedup_b32) == (5.0, 4.0)
    assert reports[2].params_reduction is None and reports[2].size_reduction == 16.0
    assert student.retention is None  # the input rows are not modified


def test_ratios_need_the_reference_row():
    with pytest.raises(ConfigError, match=r"'teacher'.*student"):
        add_ratios([row("student", 0.5, 10, 10, 1.0, 1.0)])


def test_report_dict_is_flat_and_skips_missing_values():
    flat = report_to_dict(add_ratios([row("teacher", 0.8, 40, 80, 1.0, 9.0), row("student", 0.4, 10, 20, 0.5, 3.0)]))
    assert flat["student/params"] == 10
    assert flat["student/retention"] == 0.5
    assert flat["student/speedup_b1"] == 2.0 and flat["student/speedup_b32"] == 3.0
    assert flat["teacher/name"] == "teacher-net"
    assert "student/top5" not in flat and "student/role" not in flat


def test_compression_report_end_to_end_and_table():
    torch.manual_seed(0)
    teacher = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    student = hand_net_32()
    batches = [{"image": torch.randn(8, 1, 32, 32), "target": torch.randint(0, 10, (8,))} for _ in range(2)]
    models = {"teacher": (teacher, "test_resnet"), "student": (student, "hand_net")}
    reports = add_ratios(compression_report(models, batches, (1, 32, 32), 10, threads=1, warmup=1, repeats=2))
    assert [r.role for r in reports] == ["teacher", "student"]
    s = reports[1]
    assert s.params == count_parameters(student) and s.macs == count_macs(student, (1, 32, 32))
    assert 0.0 <= s.top1 <= s.top5 <= 1.0 and s.threads == 1
    assert s.latency_b1_ms > 0 and s.latency_b32_ms > 0
    assert s.size_reduction == pytest.approx(reports[0].size_bytes / s.size_bytes)
    console = Console(record=True, width=200)
    console.print(render_table(reports))
    text = console.export_text()
    assert "hand_net" in text and "test_resnet" in text and "speed-up" in text and "1 CPU thread" in text


def test_compression_report_refuses_one_shot_batches():
    batches = iter([{"image": torch.randn(2, 1, 8, 8), "target": torch.zeros(2, dtype=torch.long)}])
    with pytest.raises(ConfigError, match="once per model"):
        compression_report({"student": (hand_net(), "hand_net")}, batches, (1, 8, 8), 10)


def hand_net_32() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
    )
