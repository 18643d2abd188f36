"""``data=imagefolder`` streamed from disk: the path choice, timm's recipes, mixup on the device, bad files, and
augmentation that is a function of (seed, epoch, sample index) whatever the worker count."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import FAST, compose_config
from streaming_trees import write_jpeg_tree

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.imagefolder import imagefolder_data
from kdlab.data.sampling import shuffle_seed
from kdlab.data.streaming import StreamingDataModule
from kdlab.errors import ConfigError
from kdlab.run import run


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jpeg_tree(tmp_path_factory.mktemp("jpegs") / "tree")


def _stream(root: Path, **options) -> StreamingDataModule:
    data = imagefolder_data(str(root), **{"image_size": 24, "batch_size": 8, "in_memory": False, **options})
    assert isinstance(data, StreamingDataModule)
    return data


def _training(data, epoch: int = 0) -> None:
    """What Lightning's trainer looks like to the datamodule's hooks during a training epoch."""
    data.trainer = SimpleNamespace(training=True, current_epoch=epoch, world_size=1, global_rank=0)


def test_auto_holds_a_small_set_in_memory_and_streams_past_the_budget(tree: Path) -> None:
    small = imagefolder_data(str(tree), image_size=24)
    assert isinstance(small, InMemoryDataModule) and small.train.images.dtype == torch.uint8
    over = imagefolder_data(str(tree), image_size=24, memory_budget_gb=1e-6)  # 1 kB: the 40 images need 69 kB
    assert isinstance(over, StreamingDataModule)
    timm_recipe = imagefolder_data(str(tree), image_size=24, augment="rrc_flip")  # per-image PIL recipe: streams
    assert isinstance(timm_recipe, StreamingDataModule)
    erasing = imagefolder_data(str(tree), image_size=24, random_erasing=0.25)  # erasing is the streamed path's
    assert isinstance(erasing, StreamingDataModule)


def test_streamed_batches_have_the_in_memory_format_and_normalised_images(tree: Path) -> None:
    data = _stream(tree, num_workers=0, val_fraction=0.25)
    assert (len(data.train), len(data.val), len(data.test)) == (24, 8, 8)
    assert data.input_shape == (3, 24, 24) and data.num_classes == 2
    batch = data.on_before_batch_transfer(next(iter(data.train_dataloader())), 0)
    assert set(batch) == {"image", "target", "index"}
    assert batch["image"].shape == (8, 3, 24, 24) and batch["image"].dtype == torch.uint8  # 1/4 of float's bytes
    _training(data)
    assert data.on_after_batch_transfer(dict(batch), 0)["image"].dtype == torch.float32  # standardised there
    inputs = torch.cat([b["image"] for b in data.model_batches("train")])
    assert inputs.mean().abs() < 0.2 and (inputs.std() - 1).abs() < 0.2  # standardised by estimated train stats
    # the class is readable from the model inputs: left-bright pictures are brighter on the left
    test = list(data.model_batches("test"))
    images, targets = torch.cat([b["image"] for b in test]), torch.cat([b["target"] for b in test])
    left_minus_right = images[..., :12].mean(dim=(1, 2, 3)) - images[..., 12:].mean(dim=(1, 2, 3))
    assert ((left_minus_right > 0) == (targets == 0)).all()


@pytest.mark.parametrize("recipe", ["rrc_flip", "rand-m9-mstd0.5-inc1", "augmix-m5-w4-d2", "crop_flip", "jitter"])
def test_each_recipe_builds_and_yields_a_batch(tree: Path, recipe: str) -> None:
    data = _stream(tree, num_workers=0, augment=recipe, random_erasing=0.25)
    assert next(iter(data.train_dataloader()))["image"].shape == (8, 3, 24, 24)


def test_an_unknown_recipe_names_the_value(tree: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.augment must be one of .*got 'sharpen'"):
        imagefolder_data(str(tree), augment="sharpen")
    with pytest.raises(ConfigError, match=r"data.augment=rand-q9 is not a timm augmentation"):
        imagefolder_data(str(tree), augment="rand-q9")
    with pytest.raises(ConfigError, match=r"data.augment=rrc_flip .* needs data.in_memory=false"):
        imagefolder_data(str(tree), augment="rrc_flip", in_memory=True)
    with pytest.raises(ConfigError, match=r"data.random_erasing is a probability in \[0, 1\], got 1.5"):
        imagefolder_data(str(tree), random_erasing=1.5)
    with pytest.raises(ConfigError, match=r"data.random_erasing erases per decoded image: it needs"):
        imagefolder_data(str(tree), random_erasing=0.25, in_memory=True)


def _sample(data: StreamingDataModule, epoch: int, index: int) -> torch.Tensor:
    return data._dataset(data.train, train=True)[(epoch, index)]["image"]


def test_a_samples_augmentation_is_a_function_of_seed_epoch_and_index(tree: Path, monkeypatch) -> None:
    data = _stream(tree, num_workers=0, augment="rand-m9-mstd0.5-inc1")
    torch.manual_seed(123)
    first = _sample(data, 3, 5)
    torch.manual_seed(456)  # the global RNG does not matter, and is left as it was
    state = torch.get_rng_state()
    assert torch.equal(_sample(data, 3, 5), first)
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(_sample(data, 4, 5), first)  # another epoch: another crop
    monkeypatch.setenv("PL_GLOBAL_SEED", "1")
    assert not torch.equal(_sample(data, 3, 5), first)  # another run seed


def test_random_erasing_on_the_device_is_a_function_of_seed_epoch_and_index(tree: Path) -> None:
    data = _stream(tree, num_workers=0, random_erasing=1.0)
    raw = data.on_before_batch_transfer(next(iter(data.train_dataloader())), 0)
    _training(data, epoch=2)
    clean = data.inputs(raw["image"])
    erased = data.on_after_batch_transfer(dict(raw), 0)["image"]
    assert (erased != clean).any(dim=(1, 2, 3)).all()  # probability 1: every image has a box erased
    assert ((erased == 0) | (erased == clean)).all()  # to 0, the standardised mean, as timm's constant mode does
    assert torch.equal(data.on_after_batch_transfer(dict(raw), 0)["image"], erased)
    # the same sample, erased alone, gets the same box
    alone = data.inputs.train(raw["image"][3:4], shuffle_seed(), 2, raw["index"][3:4].tolist())
    assert torch.equal(alone[0], erased[3])
    _training(data, epoch=3)
    assert not torch.equal(data.on_after_batch_transfer(dict(raw), 0)["image"], erased)
    data.trainer = SimpleNamespace(training=False, current_epoch=0)
    assert torch.equal(data.on_after_batch_transfer(dict(raw), 0)["image"], clean)  # never when evaluating


def _epoch_batches(data: StreamingDataModule, epoch: int) -> list[dict]:
    loader = data.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_batches_are_identical_with_zero_and_two_workers(tree: Path) -> None:
    recipe = {"augment": "rand-m9-mstd0.5-inc1", "random_erasing": 0.5}
    serial, parallel = _stream(tree, num_workers=0, **recipe), _stream(tree, num_workers=2, **recipe)
    one, two = _epoch_batches(serial, 1), _epoch_batches(parallel, 1)
    assert len(one) == len(two) == 4  # 28 train images (4 carved off for val), batches of 8
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["image"], b["image"])
    other_epoch = _epoch_batches(serial, 2)
    assert not torch.equal(torch.cat([b["image"] for b in one]), torch.cat([b["image"] for b in other_epoch]))


def test_mixup_mixes_on_the_device_deterministically_per_batch(tree: Path) -> None:
    data = _stream(tree, num_workers=0, mixup=0.4, cutmix=1.0)
    raw = data.on_before_batch_transfer(next(iter(data.train_dataloader())), 0)
    _training(data, epoch=0)
    mixed = data.on_after_batch_transfer(dict(raw), 0)
    again = data.on_after_batch_transfer(dict(raw), 0)
    clean = data.inputs(raw["image"])
    assert torch.equal(mixed["image"], again["image"]) and not torch.equal(mixed["image"], clean)
    assert mixed["soft_target"].shape == (8, 2) and torch.allclose(mixed["soft_target"].sum(1), torch.ones(8))
    assert torch.equal(mixed["target"], raw["target"])  # accuracy is measured on the hard labels
    _training(data, epoch=1)
    assert not torch.equal(data.on_after_batch_transfer(dict(raw), 0)["image"], mixed["image"])
    data.trainer = SimpleNamespace(training=False, current_epoch=0)
    assert torch.equal(data.on_after_batch_transfer(dict(raw), 0)["image"], clean)  # never when evaluating


def test_mixup_needs_an_even_batch(tree: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.batch_size must be even, got 7"):
        imagefolder_data(str(tree), mixup=0.2, batch_size=7)


def test_a_streaming_run_with_rand_augment_and_mixup(tmp_path: Path, tree: Path) -> None:
    """The issue's command at toy scale: timm recipe + mixup, streamed by two workers, teacher outputs replayed."""
    overrides = ["data=imagefolder", f"data.root={tree}", "data.image_size=32", "data.batch_size=8"]
    overrides += ["data.augment=rand-m9-mstd0.5", "data.mixup=0.2", "data.num_workers=2"]
    metrics = run(compose_config(*FAST, *overrides), tmp_path)
    assert metrics["teacher/outputs_source"] == "replay"
    assert 0.0 <= metrics["student/test_acc"] <= 1.0
    assert metrics["report/test_samples"] == 8


def test_a_streamed_split_is_passed_over_again_not_held(tree: Path) -> None:
    data = _stream(tree, num_workers=0)
    batches = data.split_batches("test")
    assert not isinstance(batches, list)  # a report over ImageNet's val set must not hold 50k decoded images
    first, second = list(batches), list(batches)
    assert len(first) == len(second) == 1
    assert torch.equal(first[0]["image"], second[0]["image"]) and first[0]["image"].dtype == torch.float32
