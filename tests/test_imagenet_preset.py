"""``data=imagenet`` and the ImageNet experiments compose, and run end to end on a tiny tree in ImageNet's layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FAST, compose_config
from streaming_trees import write_jpeg_tree

from kdlab.run import run

WNIDS = ("n01440764", "n01443537")  # ImageNet's class folders are WordNet ids


@pytest.mark.parametrize(
    ("experiment", "teacher", "student"),
    [
        ("imagenet_resnet34_resnet18", "resnet34", "resnet18"),
        ("imagenet_resnet50_mobilenetv2", "resnet50", "mobilenetv2_100"),
    ],
)
def test_imagenet_experiments_compose_the_published_recipe(experiment: str, teacher: str, student: str) -> None:
    cfg = compose_config(f"experiment={experiment}", "data.root=/imagenet")
    assert (cfg.teacher.name, cfg.student.name) == (teacher, student)
    assert cfg.data.image_size == 224 and cfg.data.augment == "rrc_flip" and cfg.data.in_memory is False
    assert list(cfg.data.mean) == [0.485, 0.456, 0.406] and cfg.data.test_folder == "val"
    assert (cfg.kd.temperature, cfg.kd.alpha, cfg.trainer.max_epochs) == (1.0, 0.5, 100)
    assert cfg.optim.optimizer.lr == 0.2 and list(cfg.optim.scheduler.milestones) == [30, 60, 90]


def test_data_imagenet_runs_on_a_tiny_tree_in_imagenets_layout(tmp_path: Path) -> None:
    root = write_jpeg_tree(tmp_path / "imagenet", {"train": 8, "val": 2}, size=40, classes=WNIDS)
    overrides = [f"data.root={root}", "data.image_size=16", "data.batch_size=4", "data.num_workers=0"]
    # the experiment sets models and epochs after the command line's groups: tiny ones again, no download
    overrides += ["teacher.name=test_resnet", "student.name=test_resnet", "teacher.pretrained=false"]
    overrides += ["trainer.max_epochs=1"]
    metrics = run(compose_config("experiment=imagenet_resnet34_resnet18", *FAST, *overrides), tmp_path / "run")
    assert metrics["data/name"] == "imagefolder:imagenet"
    assert metrics["report/test_samples"] == 4  # val/ is the test split: 2 classes × 2 images
    assert 0.0 <= metrics["student/test_acc"] <= 1.0
