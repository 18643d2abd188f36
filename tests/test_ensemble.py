"""Multi-teacher ensembles: the combined soft targets are exact, members are prepared and cached as single teachers,
results report every member, and what an ensemble cannot do fails before any training."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import CONF, FAST, WHOLE_TEACHER, compose_config
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from reference import accuracy, file_test_logits
from torch import nn

from kdlab.errors import ConfigError
from kdlab.instantiate import build
from kdlab.models.ensemble import TeacherEnsemble
from kdlab.run import run
from kdlab.teacher.members import member_configs, member_labels, reject_teacher_list
from kdlab.tracking import read_offline_run

ENSEMBLE = ["teacher=ensemble", "teacher.members=[tiny,{config:tiny,seed:1}]"]
NO_TEACHER = [o for o in FAST if not o.startswith("teacher=")]


class Fixed(nn.Module):
    """A 'model' that returns given logits, whatever the input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def members(seed: int = 0, count: int = 3) -> tuple[list[Fixed], torch.Tensor]:
    logits = torch.randn(count, 5, 7, generator=torch.Generator().manual_seed(seed)) * 3
    return [Fixed(z) for z in logits], logits


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_mean_probs_gives_the_weighted_average_of_soft_targets_at_t(temperature: float) -> None:
    models, logits = members()
    weights = [1.0, 2.0, 5.0]
    ensemble = TeacherEnsemble(models, ["a", "b", "c"], "mean_probs", weights, temperature)
    expected = sum(w / 8 * torch.softmax(z / temperature, dim=-1) for w, z in zip(weights, logits, strict=True))
    assert torch.allclose(torch.softmax(ensemble(torch.zeros(5, 1)) / temperature, dim=-1), expected, atol=1e-6)


def test_mean_logits_and_equal_weights() -> None:
    models, logits = members(seed=1)
    ensemble = TeacherEnsemble(models, ["a", "b", "c"], "mean_logits")
    assert torch.allclose(ensemble(torch.zeros(5, 1)), logits.mean(dim=0), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"combine": "vote"}, r"teacher.combine must be one of mean_probs, mean_logits, got 'vote'"),
        ({"weights": [1.0, 2.0]}, r"teacher.weights has 2 value\(s\) for 3 member\(s\)"),
        ({"weights": [1.0, -1.0, 1.0]}, r"teacher.weights must be finite, >= 0 and not all 0"),
    ],
)
def test_bad_ensemble_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TeacherEnsemble(members()[0], ["a", "b", "c"], **kwargs)


def test_members_resolve_to_teacher_configs_with_overrides() -> None:
    members_cfg = OmegaConf.create({"m": ["resnet18", {"config": "tiny", "max_epochs": 7, "seed": 3}, "tiny"]}).m
    nodes = member_configs(members_cfg, max_epochs=2)
    assert [n.name for n in nodes] == ["resnet18", "test_resnet", "test_resnet"]
    assert [n.max_epochs for n in nodes] == [2, 7, 2] and nodes[1].seed == 3
    assert nodes[0].model.model_name == "resnet18"  # the file's interpolations still resolve
    assert member_labels(nodes) == ["resnet18", "test_resnet.1", "test_resnet.2"]


@pytest.mark.parametrize(
    ("members_value", "message"),
    [
        (["nope"], r"teacher.members: 'nope' is not a teacher config; choose from .*resnet18"),
        (["ensemble"], r"'ensemble' is not a teacher config"),
        ([{"config": "tiny", "lr": 1}], r"unknown key\(s\) \['lr'\]"),
        ([], r"teacher.members must be a non-empty list"),
    ],
)
def test_bad_members_are_refused(members_value: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        member_configs(OmegaConf.create({"m": members_value}).m)


def test_ensemble_run_reports_members_and_reuses_single_teacher_cache(tmp_path: Path) -> None:
    whole_test = "trainer.limit_test_batches=1.0"  # every accuracy below is over the whole test split
    single = run(compose_config(*FAST, *WHOLE_TEACHER, whole_test), tmp_path / "single")  # teacher=tiny, cached
    metrics = run(compose_config(*NO_TEACHER, *WHOLE_TEACHER, *ENSEMBLE, whole_test), tmp_path / "ensemble")
    results = json.loads((tmp_path / "ensemble" / "results.json").read_text())
    assert results["teacher/members"] == ["test_resnet.0", "test_resnet.1"]
    first, second = "teacher/members/test_resnet.0", "teacher/members/test_resnet.1"
    assert results[f"{first}/source"] == "cache" and results[f"{first}/path"] == single["teacher/path"]
    assert results[f"{first}/test_acc"] == pytest.approx(single["teacher/test_acc"])
    assert results[f"{second}/source"] == "trained" and results[f"{second}/path"] != single["teacher/path"]
    # every accuracy recomputed from the member files on the tested batch: the ensemble votes on soft targets at T
    cfg = compose_config(*NO_TEACHER, *ENSEMBLE)
    data = build(cfg.data)
    logits = [file_test_logits(results[f"{m}/path"], data, len(data.test)) for m in (first, second)]
    targets = data.test.targets
    for member, z in zip((first, second), logits, strict=True):
        assert results[f"{member}/test_acc"] == pytest.approx(accuracy(z, targets), abs=1e-6)
    soft = sum(torch.softmax(z / cfg.kd.temperature, dim=-1) for z in logits)
    assert results["teacher/test_acc"] == pytest.approx(accuracy(soft, targets), abs=1e-6)
    student = file_test_logits(results["student/checkpoint"], data, len(data.test))
    assert results["student/test_acc"] == pytest.approx(accuracy(student, targets), abs=1e-6)
    assert results["teacher/params"] == results[f"{first}/params"] + results[f"{second}/params"]
    assert results["teacher/source"] == "ensemble" and metrics["teacher/name"] == "ensemble"


@pytest.mark.parametrize(
    ("kd", "message"),
    [
        ("feature", r"teacher model ensemble exposes no feature stages"),
        ("pkt", r"PKT needs the pooled embedding, but teacher model ensemble exposes none"),
        ("crd", r"CRD needs the pooled embedding, but teacher model ensemble exposes none"),
    ],
)
def test_feature_and_relation_methods_refuse_an_ensemble_before_training(kd: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        run(compose_config(*NO_TEACHER, *ENSEMBLE, f"kd={kd}"), tmp_path)
    assert not any(tmp_path.rglob("*.pt"))  # the per-test teacher cache lives under tmp_path


@contextlib.contextmanager
def hydra_running(*overrides: str) -> Iterator[None]:
    """Hydra's own config (task overrides, group choices) live, as while ``python -m kdlab`` runs."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        HydraConfig.instance().set_config(compose("config", overrides=list(overrides), return_hydra_config=True))
    try:
        yield
    finally:
        HydraConfig.instance().cfg = None


def test_the_list_of_teachers_syntax_is_refused_with_the_ensemble_spelling() -> None:
    with hydra_running("teacher=[tiny,resnet18]"), pytest.raises(ConfigError) as error:
        reject_teacher_list()
    assert str(error.value) == (
        "teacher=[tiny,resnet18] merges those teacher configs into one (Hydra's list-of-options syntax); "
        "for an ensemble use: teacher=ensemble 'teacher.members=[tiny,resnet18]'"
    )


@pytest.mark.parametrize("overrides", [["teacher=tiny"], ["teacher=ensemble", "teacher.members=[tiny,resnet18]"]])
def test_single_and_ensemble_teachers_are_not_mistaken_for_a_list(overrides: list[str]) -> None:
    with hydra_running(*overrides):
        reject_teacher_list()


def test_each_member_trained_here_is_a_wandb_teacher_run_and_an_input_of_the_student(tmp_path: Path) -> None:
    wandb = [o for o in NO_TEACHER if not o.startswith("logger=")] + ["logger=wandb"]
    run(compose_config(*wandb, *ENSEMBLE), tmp_path)
    teachers = [read_offline_run(d) for d in sorted((tmp_path / "teacher").glob("wandb/offline-run-*"))]
    assert sorted(t["name"] for t in teachers) == ["teacher-test_resnet-digits-s0", "teacher-test_resnet-digits-s1"]
    assert all(t["job_type"] == "teacher" for t in teachers)
    made = [a for t in teachers for a in t["artifacts"] if a["type"] == "model" and not a["use"]]
    assert len(made) == 2
    (student_dir,) = tmp_path.glob("wandb/offline-run-*")
    used = [a for a in read_offline_run(student_dir)["artifacts"] if a["type"] == "model" and a["use"]]
    assert sorted(a["name"] for a in used) == sorted(a["name"] for a in made)
    assert len(used) == 2
