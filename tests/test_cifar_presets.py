"""``experiment=cifar100_<teacher>_<student>``: every preset composes to the CIFAR-100 recipe with its pair, and each
pair runs one batch end to end on CIFAR-shaped synthetic data (CIFAR-100 itself is not available offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CONF, compose_config

from kdlab.run import run
from kdlab.run.validate import validate_config
from kdlab.teacher.cache import teacher_cache_key, teacher_phase

PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("cifar100_*.yaml") if p.stem != "cifar100_recipe")
SLOW_LR_STUDENTS = {"cifar_mobilenetv2_half", "cifar_shufflev1", "cifar_shufflev2"}  # lr 0.01 in the recipe
ONE_BATCH = [
    "data=synthetic", "data.num_train=4", "data.num_val=4", "data.num_test=4", "data.batch_size=4",
    "trainer=fast", "trainer.max_epochs=1", "teacher.max_epochs=1", "logger=none", "kd=feature",
    "post.latency.repeats=2", "post.latency.warmup=1",  # the report times each model: keep it short
]  # fmt: skip


def test_the_table_pairs_all_have_a_preset() -> None:
    assert len(PRESETS) == 11


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_to_the_recipe_and_its_pair(preset: str) -> None:
    cfg = compose_config(f"experiment={preset}")
    validate_config(cfg)
    teacher_file, student_file = (cfg.teacher.name, cfg.student.name)
    assert preset.startswith("cifar100_") and cfg.data.name == "cifar100"
    assert teacher_file.startswith("cifar_") and student_file.startswith("cifar_")
    assert (cfg.data.batch_size, cfg.data.augment) == (64, "crop_flip")
    assert cfg.trainer.max_epochs == cfg.teacher.max_epochs == 240
    assert cfg.optim.optimizer._target_ == "torch.optim.SGD"
    assert (cfg.optim.optimizer.momentum, cfg.optim.optimizer.weight_decay) == (0.9, 5e-4)
    assert list(cfg.optim.scheduler.milestones) == [150, 180, 210] and cfg.optim.scheduler.gamma == 0.1
    student_lr = 0.01 if student_file in SLOW_LR_STUDENTS else 0.05
    assert cfg.optim.optimizer.lr == student_lr and teacher_phase(cfg).optim.optimizer.lr == 0.05


def test_a_teacher_is_shared_by_presets_whose_students_train_at_another_lr() -> None:
    vgg8, mobilenet = (
        compose_config("experiment=cifar100_vgg13_vgg8"),
        compose_config("experiment=cifar100_vgg13_mobilenetv2_half"),
    )
    assert vgg8.optim.optimizer.lr != mobilenet.optim.optimizer.lr
    assert teacher_cache_key(vgg8) == teacher_cache_key(mobilenet)


# One preset per student family runs in the default tier (resnet, vgg, wrn, shufflenet, mobilenetv2); the rest, whose
# architectures test_cifar_zoo builds and taps on its own, run in the slow tier.
EVERY_FAMILY = {
    "cifar100_resnet56_resnet20", "cifar100_vgg13_vgg8", "cifar100_wrn_40_2_wrn_16_2",
    "cifar100_resnet32x4_shufflev1", "cifar100_vgg13_mobilenetv2_half",
}  # fmt: skip


@pytest.mark.parametrize(
    "preset", [pytest.param(p, marks=[] if p in EVERY_FAMILY else [pytest.mark.slow]) for p in PRESETS]
)
def test_preset_pair_runs_one_batch(preset: str, tmp_path: Path) -> None:
    cfg = compose_config(f"experiment={preset}", *ONE_BATCH)
    metrics = run(cfg, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed" and results["config"]["data"]["augment"] == "crop_flip"
    assert (metrics["teacher/name"], metrics["student/name"]) == (cfg.teacher.name, cfg.student.name)
    assert 0.0 <= metrics["student/test_acc"] <= 1.0 and 0.0 <= metrics["teacher/test_acc"] <= 1.0
