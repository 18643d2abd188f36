"""Deep mutual learning (kd=dml: a cohort, no teacher) and teacher-assistant chains (kd=takd)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import FAST, compose_config
from reference import accuracy, file_test_logits
from torch import nn

from kdlab.errors import ConfigError
from kdlab.instantiate import build
from kdlab.losses import dml_kl, kd_kl
from kdlab.run import run
from kdlab.training.mutual import MutualLearningModule

WHOLE_TEST = "trainer.limit_test_batches=1.0"
MOBILENET = "mobilenetv3_small_050"  # conf/student/tiny_mobilenet.yaml


def test_dml_trains_tests_and_saves_every_cohort_member(tmp_path: Path) -> None:
    metrics = run(compose_config(*FAST, "kd=dml", "teacher=none", "kd.peers=[tiny_mobilenet]", WHOLE_TEST), tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed" and results["cohort"] == 2 == metrics["cohort"]
    assert [results["cohort/0/name"], results["cohort/1/name"]] == ["test_resnet", MOBILENET]
    data = build(compose_config(*FAST).data)
    count, targets = len(data.test), data.test.targets
    for k, name in enumerate(("test_resnet", MOBILENET)):  # each member's accuracy, recomputed from its saved file
        logits = file_test_logits(results[f"cohort/{k}/checkpoint"], data, count, name=name)
        assert results[f"cohort/{k}/test_acc"] == pytest.approx(accuracy(logits, targets), abs=1e-6)
        assert results[f"cohort/{k}/params"] > 0
    assert results["student/test_acc"] == results["cohort/0/test_acc"]
    assert results["student/checkpoint"] == results["cohort/0/checkpoint"] == str(tmp_path / "student.pt")
    assert results["teacher/name"] == "none" and not (tmp_path / "teacher.pt").exists()


def test_dml_default_cohort_is_two_copies_of_the_student_and_a_configured_teacher_is_not_trained(
    tmp_path: Path,
) -> None:
    results = run(compose_config(*FAST, "kd=dml", "teacher=tiny", "logger=csv"), tmp_path)
    assert results["cohort"] == 2 and results["cohort/1/name"] == results["cohort/0/name"] == "test_resnet"
    assert results["teacher/source"] == "none" and not list(tmp_path.rglob("teacher*.pt"))
    rows = list(csv.DictReader((tmp_path / "csv" / "version_0" / "metrics.csv").open()))
    logged = {key for row in rows for key, value in row.items() if value}
    for member in ("train/", "train/member1/"):  # every member's losses and accuracy, by name
        assert {f"{member}loss_ce", f"{member}loss_dml", f"{member}acc"} <= logged
    assert {"val/acc", "val/member1/acc", "train/loss"} <= logged


def _linear_cohort() -> list[nn.Module]:
    torch.manual_seed(0)
    return [nn.Linear(4, 3) for _ in range(3)]


def test_dml_losses_are_each_members_ce_plus_the_mean_kl_to_its_peers_and_reach_only_its_weights() -> None:
    members = _linear_cohort()
    module = MutualLearningModule(members, 3, optimizer=torch.optim.SGD)
    x, y = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    logits = [m(x) for m in members]
    losses = module.cohort_losses(logits, y)
    assert set(losses) == {"train/loss_ce", "train/loss_dml"} | {
        f"train/member{k}/loss_{kind}" for k in (1, 2) for kind in ("ce", "dml")
    }
    for k, prefix in enumerate(("train/", "train/member1/", "train/member2/")):
        peers = [logits[j] for j in range(3) if j != k]
        expected = sum(F.kl_div(logits[k].log_softmax(1), p.softmax(1), reduction="batchmean") for p in peers) / 2
        assert float(losses[f"{prefix}loss_dml"]) == pytest.approx(float(expected), rel=1e-6)
        assert float(losses[f"{prefix}loss_ce"]) == pytest.approx(float(F.cross_entropy(logits[k], y)), rel=1e-6)
    losses["train/member1/loss_dml"].backward()  # member 1's mimicry loss moves member 1 only: peers are constants
    assert members[1].weight.grad is not None and members[1].weight.grad.abs().sum() > 0
    assert members[0].weight.grad is None and members[2].weight.grad is None


def test_dml_needs_two_members() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        MutualLearningModule(_linear_cohort()[:1], 3, optimizer=torch.optim.SGD)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("kd.peers=[]", r"kd.peers must be a non-empty list of student config or timm model names, got \[\]"),
        ("kd.peers=[resnet_nonesuch]", r"unknown kd.peers model 'resnet_nonesuch'.*nor a student config: .*tiny"),
        ("kd.mimicry_weight=-1", r"kd.mimicry_weight must be a number >= 0 \(the paper: 1\), got -1"),
    ],
)
def test_bad_dml_configs_are_refused_before_training(override: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        run(compose_config(*FAST, "kd=dml", "teacher=none", override), tmp_path)
    assert not list(tmp_path.rglob("*.pt"))


def test_takd_distils_the_teacher_into_the_assistant_and_the_assistant_into_the_student(tmp_path: Path) -> None:
    metrics = run(compose_config(*FAST, "kd=takd", "kd.assistants=[tiny_mobilenet]", WHOLE_TEST), tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    first, second = (json.loads((tmp_path / f"link{k}" / "results.json").read_text()) for k in (1, 2))
    assert results["chain"] == 2 == metrics["chain"]
    assert [results[f"chain/{k}/name"] for k in range(3)] == ["test_resnet", MOBILENET, "test_resnet"]
    # link 1: the configured teacher → the assistant; link 2: the assistant's saved file → the student
    assert first["teacher/name"] == "test_resnet" and first["student/name"] == MOBILENET
    assert second["teacher/name"] == MOBILENET and second["teacher/source"] == "checkpoint"
    assert second["teacher/path"] == first["student/checkpoint"] == results["chain/1/checkpoint"]
    assert second["teacher/test_acc"] == pytest.approx(first["student/test_acc"], abs=1e-6)
    assert results["chain/0/test_acc"] == results["teacher/test_acc"] == first["teacher/test_acc"]
    assert results["chain/2/test_acc"] == results["student/test_acc"] == second["student/test_acc"]
    assert results["chain/2/test_agreement"] == second["student/test_agreement"]
    # what the student was compared with is the assistant's logits (recomputed from the files), not the teacher's
    data = build(compose_config(*FAST).data)
    count = len(data.test)
    student = file_test_logits(results["chain/2/checkpoint"], data, count)
    assistant = file_test_logits(results["chain/1/checkpoint"], data, count, name=MOBILENET)
    teacher = file_test_logits(results["chain/0/checkpoint"], data, count)
    assert second["student/test_kl_to_teacher"] == pytest.approx(float(kd_kl(student, assistant, 1.0)), rel=1e-4)
    assert float(kd_kl(student, teacher, 1.0)) != pytest.approx(second["student/test_kl_to_teacher"], rel=1e-2)
    assert "student/test_kl_to_teacher" not in results  # that number is about the assistant: link2/results.json


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["teacher=none"], r"kd=takd distils a teacher through assistants: it needs a teacher, got teacher=none"),
        (["kd.assistants=[resnet_nonesuch]"], r"unknown kd.assistants model 'resnet_nonesuch'"),
        (["kd.assistants=tiny"], r"kd.assistants must be a non-empty list .*got 'tiny'"),
    ],
)
def test_bad_takd_configs_are_refused_before_training(overrides: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        run(compose_config(*FAST, "kd=takd", *overrides), tmp_path)
    assert not list(tmp_path.rglob("*.pt"))


def test_dml_kl_is_the_module_loss() -> None:
    """The module calls the pure function: the same numbers for a cohort of two."""
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    module = MutualLearningModule(_linear_cohort()[:2], 3, optimizer=torch.optim.SGD)
    losses = module.cohort_losses([a, b], torch.zeros(5, dtype=torch.long))
    assert float(losses["train/loss_dml"]) == pytest.approx(float(dml_kl(a, [b])))
    assert float(losses["train/member1/loss_dml"]) == pytest.approx(float(dml_kl(b, [a])))
