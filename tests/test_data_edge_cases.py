"""Data that used to crash or mislead a run: a last training batch of one sample, and a single class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, compose_config
from PIL import Image

from kdlab.data.synthetic import synthetic_data
from kdlab.errors import ConfigError
from kdlab.run import run


def _train_batches(num_train: int, batch_size: int, world: int = 1, rank: int = 0, epoch: int = 0) -> list[list[int]]:
    data = synthetic_data(num_classes=3, image_size=8, num_train=num_train, batch_size=batch_size)
    data._ranks = lambda: (world, rank)  # what a DDP trainer reports to this rank
    loader = data.train_dataloader()
    loader.sampler.set_epoch(epoch)
    batches = [batch["index"].tolist() for batch in loader]
    assert len(batches) == len(loader)  # Lightning counts the epoch's steps from len(loader)
    return batches


@pytest.mark.parametrize(
    ("num_train", "batch_size", "sizes"),
    [(9, 4, [4, 4]), (10, 4, [4, 4, 2]), (8, 4, [4, 4]), (5, 2, [2, 2]), (7, 1, [1] * 7)],
)
def test_only_a_last_batch_of_one_sample_is_dropped(num_train: int, batch_size: int, sizes: list[int]) -> None:
    assert [len(b) for b in _train_batches(num_train, batch_size)] == sizes


def test_a_different_sample_sits_out_each_epoch() -> None:
    left_out = [set(range(9)) - {i for b in _train_batches(9, 4, epoch=e) for i in b} for e in range(4)]
    assert all(len(out) == 1 for out in left_out)
    assert len({min(out) for out in left_out}) > 1


def test_ranks_drop_alike_under_ddp() -> None:
    """9 samples on 2 ranks: 5 each (the sampler pads one), so each rank's last batch of 4 would be one sample."""
    ranks = [_train_batches(9, 4, world=2, rank=r) for r in (0, 1)]
    assert [[len(b) for b in batches] for batches in ranks] == [[4], [4]]
    assert [[len(b) for b in batches] for batches in (_train_batches(9, 3, 2, r) for r in (0, 1))] == [[3, 2]] * 2


def test_a_resumed_epoch_drops_the_same_sample() -> None:
    data = synthetic_data(num_classes=3, image_size=8, num_train=9, batch_size=4)
    whole = [batch["index"].tolist() for batch in data.train_dataloader()]
    assert [len(batch) for batch in whole] == [4, 4]
    killed = data.train_dataloader()
    stream = iter(killed)
    first = next(stream)["index"].tolist()
    resumed = data.train_dataloader()
    resumed.load_state_dict(killed.state_dict())
    assert [first, *(batch["index"].tolist() for batch in resumed)] == whole


def test_a_run_whose_last_batch_is_one_sample_completes(tmp_path: Path) -> None:
    """5 samples in batches of 4: the teacher's and the student's training used to crash in BatchNorm."""
    small = ["data=synthetic", "data.num_classes=4", "data.num_train=5", "data.num_val=4", "data.num_test=4"]
    results = run(compose_config(*FAST, *small, "data.batch_size=4"), tmp_path)
    assert results["student/train_loss"] is not None and 0 <= results["student/test_acc"] <= 1


def test_one_sample_per_process_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"training split \(2 samples over 2 process\(es\)\) gives each process a"):
        _train_batches(2, 4, world=2)


def test_a_synthetic_set_of_one_class_fails_before_the_teacher(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data has a single class \(synthetic: num_classes=1\): classification"):
        run(compose_config(*FAST, "data=synthetic", "data.num_classes=1"), tmp_path / "run")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no teacher trained or cached


def test_an_image_folder_of_one_class_is_a_config_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        folder = tmp_path / "tree" / split / "cats"
        folder.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8), "L").save(folder / f"{i}.png")
    root = tmp_path / "tree"
    with pytest.raises(ConfigError, match=r"^data has a single class \(imagefolder:tree: num_classes=1\)"):
        run(compose_config(*FAST, "data=imagefolder", f"data.root={root}"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_training_split_of_one_class_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"single class in its training split \(synthetic: every training label is"):
        synthetic_data(num_classes=5, image_size=8, num_train=1)
