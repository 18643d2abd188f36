"""Method zoo, round two: logit standardization, divergences, CTKD's curriculum temperature, Tf-KD with
``teacher=none`` — the terms' behaviour, and each run end to end on the embedded data (``trainer=fast``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config

import kdlab.losses as L
from kdlab.errors import ConfigError
from kdlab.models.outputs import ModelOutputs
from kdlab.run import run
from kdlab.terms import DIST, DKD, CurriculumTemperatureKD, SoftTargets
from kdlab.terms.response import cosine_reversal_scale

PAIR = None  # the response terms ignore the pair


def outputs(seed: int, scale: float = 1.0, shift: float = 0.0) -> ModelOutputs:
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return ModelOutputs(logits=scale * logits + shift)


BATCH = {"target": torch.tensor([0, 1, 2, 3, 4, 0])}


@pytest.mark.parametrize(
    ("term", "key"),
    [
        (lambda ls: SoftTargets(PAIR, 2.0, logit_standardization=ls), "kd"),
        (lambda ls: DKD(PAIR, 2.0, warmup_epochs=0, logit_standardization=ls), "dkd_nckd"),
        (lambda ls: DIST(PAIR, 2.0, logit_standardization=ls), "dist"),
    ],
)
def test_logit_standardization_makes_the_loss_blind_to_each_models_logit_scale(term, key):
    """LS's point (Sun et al. 2024): a teacher whose logits are 3× larger (and shifted) teaches the same thing."""
    student, teacher, scaled_teacher = outputs(0), outputs(1), outputs(1, scale=3.0, shift=5.0)
    with_ls, without_ls = term(True), term(False)
    same = with_ls(student, teacher, BATCH)[key], with_ls(student, scaled_teacher, BATCH)[key]
    assert float(same[0]) == pytest.approx(float(same[1]), rel=1e-6)
    plain = without_ls(student, teacher, BATCH)[key], without_ls(student, scaled_teacher, BATCH)[key]
    assert abs(float(plain[0]) - float(plain[1])) > 1e-3
    assert abs(float(same[0]) - float(plain[0])) > 1e-3  # the switch changes the loss


@pytest.mark.parametrize("divergence", ["forward_kl", "reverse_kl", "js"])
def test_soft_targets_use_the_chosen_divergence(divergence):
    functions = {"forward_kl": L.kd_kl, "reverse_kl": L.kd_reverse_kl, "js": L.kd_js}
    student, teacher = outputs(0), outputs(1)
    got = SoftTargets(PAIR, 4.0, divergence=divergence)(student, teacher, BATCH)["kd"]
    assert float(got) == float(functions[divergence](student.logits, teacher.logits, 4.0))


def test_bad_divergence_and_switch_are_config_errors():
    with pytest.raises(ConfigError, match=r"kd.divergence must be one of .*'js'.*got 'kl'"):
        SoftTargets(PAIR, divergence="kl")
    with pytest.raises(ConfigError, match=r"kd\.logit_standardization must be true or false, got 'yes'"):
        DKD(PAIR, logit_standardization="yes")


def test_ctkd_cosine_curriculum_matches_the_code():
    """CTKD's CosineDecay(max=0, min=-1, loops=10), epochs from 1: −0.024 at 1, −0.5 at 5, −1 from 10 on."""
    assert cosine_reversal_scale(1) == pytest.approx(-0.5 * (1 - math.cos(math.pi / 10)))
    assert cosine_reversal_scale(1) == pytest.approx(-0.0245, abs=1e-4)
    assert cosine_reversal_scale(5) == pytest.approx(-0.5)
    assert cosine_reversal_scale(10) == cosine_reversal_scale(40) == pytest.approx(-1.0)


@pytest.mark.parametrize("epoch", [0, 4, 30])
def test_ctkd_temperature_ascends_the_loss_through_gradient_reversal(epoch):
    term = CurriculumTemperatureKD(PAIR).double()
    term.current_epoch = epoch
    assert float(term.temperature().detach()) == pytest.approx(1 + 20 / (1 + math.exp(-1)))  # τ₀ = 1 + 20·σ(1) ≈ 15.62
    student = ModelOutputs(logits=outputs(0).logits.requires_grad_(True))
    term(student, outputs(1), BATCH)["kd"].backward()
    theta = torch.ones((), dtype=torch.float64, requires_grad=True)  # the same loss without the reversal
    L.kd_kl(student.logits.detach(), outputs(1).logits, 1 + 20 * torch.sigmoid(theta)).backward()
    scale = cosine_reversal_scale(epoch + 1)
    assert scale < 0 and float(term.theta.grad) == pytest.approx(scale * float(theta.grad), rel=1e-9)
    assert student.logits.grad is not None and student.logits.grad.abs().sum() > 0  # the student descends as usual


def finished(tmp_path: Path) -> dict:
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed"
    assert 0.0 <= results["student/test_acc"] <= 1.0 and math.isfinite(results["student/train_loss"])
    return results


@pytest.mark.parametrize(
    "overrides",
    [
        ["kd=response", "kd.divergence=reverse_kl"],
        ["kd=response", "kd.divergence=js"],
        ["kd=dkd", "kd.logit_standardization=true"],
        ["kd=dist", "kd.logit_standardization=true"],
    ],
    ids=lambda o: " ".join(o),
)
def test_switches_run_end_to_end(overrides: list[str], tmp_path: Path):
    cfg = compose_config(*FAST, *overrides)
    run(cfg, tmp_path)
    results = finished(tmp_path)
    key = "divergence" if "divergence" in overrides[1] else "logit_standardization"
    term = next(iter(results["config"]["kd"]["terms"].values()))
    assert str(term[key]).lower() == overrides[1].split("=")[1]


def test_tfkd_runs_with_no_teacher(tmp_path: Path):
    cfg = compose_config(*FAST, "kd=tfkd", "teacher=none")
    run(cfg, tmp_path)
    results = finished(tmp_path)
    assert results["teacher/source"] == "none" and results["teacher/test_acc"] is None
    assert results["teacher/params"] is None and results["report/roles"] == ["student"]


@pytest.mark.parametrize("method", ["response", "dkd", "ctkd"])
def test_teacher_none_with_a_method_that_needs_one_is_refused(method: str, tmp_path: Path):
    cfg = compose_config(*FAST, f"kd={method}", "teacher=none")
    with pytest.raises(ConfigError, match=r"teacher=none: kd term\(s\) \[.*\] need a teacher"):
        run(cfg, tmp_path)
