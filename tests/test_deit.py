"""DeiT's distillation token (Touvron et al. 2021, arXiv:2012.12877): the term reads the student's second head, the
cross-entropy its class head, evaluation the mean of both; a student without the token is refused at set-up."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import timm
import torch
from conftest import FAST, compose_config
from torch.utils.data import DataLoader

import kdlab.losses as L
from kdlab.errors import ConfigError
from kdlab.models import forward_with_taps, has_distillation_token
from kdlab.models.outputs import ModelOutputs
from kdlab.run import run
from kdlab.terms import DeiTDistillation, PairSpec
from kdlab.training.module import DistillationModule

DEIT = ["kd=deit", "student=deit_tiny_distilled"]


def tiny_deit(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(
        "deit_tiny_distilled_patch16_224",
        **{"img_size": 32, "patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2},
        num_classes=10,
        in_chans=1,
    )


def pair(has_token: bool, name: str = "deit_tiny_distilled_patch16_224") -> PairSpec:
    return PairSpec(name, "test_resnet", (), (), None, None, 10, 64, student_has_dist_token=has_token)


def test_the_student_config_builds_a_model_with_a_distillation_token():
    cfg = compose_config(*DEIT)
    model = timm.create_model(**{k: v for k, v in cfg.student.model.items() if not k.startswith("_")}, in_chans=1)
    assert has_distillation_token(model) and not has_distillation_token(timm.create_model("test_vit"))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_the_two_heads_are_read_apart_and_the_models_output_is_their_mean(mode: str):
    model, x = tiny_deit(), torch.randn(3, 1, 32, 32)
    getattr(model, mode)()
    model.head_drop.p = 0.0  # (timm's default; made explicit, so train mode is deterministic too)
    out = forward_with_taps(model, x, need_dist_token=True)
    assert out.dist_logits is not None and not torch.allclose(out.logits, out.dist_logits)
    assert torch.allclose((out.logits + out.dist_logits) / 2, model(x), atol=1e-6)


@pytest.mark.parametrize(("mode", "loss"), [("hard", L.deit_hard_distillation), ("soft", L.deit_soft_distillation)])
def test_the_term_distils_the_distillation_head_only(mode: str, loss):
    generator = torch.Generator().manual_seed(0)
    cls, dist, teacher = (torch.randn(4, 10, generator=generator) for _ in range(3))
    term = DeiTDistillation(pair(True), mode=mode, temperature=3.0)
    got = term(ModelOutputs(logits=cls, dist_logits=dist), ModelOutputs(logits=teacher), {})["deit"]
    expected = loss(dist, teacher) if mode == "hard" else loss(dist, teacher, 3.0)
    assert float(got) == pytest.approx(float(expected))


def test_a_student_without_a_distillation_token_is_refused_at_set_up(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"kd=deit needs a student with a distillation token.*student test_resnet"):
        run(compose_config(*FAST, "kd=deit"), tmp_path)  # FAST's student is test_resnet (a CNN)


def test_bad_mode_is_a_config_error():
    with pytest.raises(ConfigError, match=r"kd\.deit_mode must be one of"):
        DeiTDistillation(pair(True), mode="medium")


def test_eval_accuracy_reads_the_mean_of_both_heads():
    """Heads with zero weights and chosen biases: the class head says 1, the distillation head 3, their mean 2."""
    student = tiny_deit()
    with torch.no_grad():
        for head, bias in ((student.head, {1: 4.0, 2: 3.0}), (student.head_dist, {3: 4.0, 2: 3.0})):
            head.weight.zero_()
            head.bias.zero_()
            for k, v in bias.items():
                head.bias[k] = v
    teacher = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    module = DistillationModule(
        student,
        10,
        torch.optim.SGD,
        teacher=teacher,
        terms={"deit": DeiTDistillation(pair(True))},
        weights={"deit": 0.5},
        alpha=0.5,
    )
    batch = {"image": torch.randn(8, 1, 32, 32), "target": torch.full((8,), 2), "index": torch.arange(8)}
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    (metrics,) = trainer.test(module, dataloaders=DataLoader([batch], batch_size=None), verbose=False)
    assert metrics["test/acc"] == 1.0  # the class head alone would score 0, the distillation head alone 0 too


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_deit_runs_end_to_end_with_a_cnn_teacher(mode: str, tmp_path: Path):
    run(compose_config(*FAST, *DEIT, f"kd.deit_mode={mode}"), tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed" and results["student/name"] == "deit_tiny_distilled_patch16_224"
    assert 0.0 <= results["student/test_acc"] <= 1.0 and math.isfinite(results["student/train_loss"])
    assert results["config"]["kd"]["terms"]["deit"]["mode"] == mode
