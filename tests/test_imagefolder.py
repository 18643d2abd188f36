"""``data=imagefolder`` on image files the test writes: channels, sizes, splits, transparency and a whole run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, compose_config
from PIL import Image

from kdlab.data.imagefolder import imagefolder_data
from kdlab.errors import ConfigError
from kdlab.run import run

CLASSES = ("left", "right")


def _picture(label: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A noisy dark picture whose left or right half is bright: learnable, and never two alike."""
    width, height = size
    pixels = rng.integers(0, 60, (height, width), dtype=np.uint8)
    half = slice(0, width // 2) if label == "left" else slice(width // 2, width)
    pixels[:, half] += 180
    return pixels


def _write_tree(root: Path, mode: str = "L", per_class: dict[str, int] | None = None) -> Path:
    """root/<split>/<class>/*.png, mixed sizes (the loader resizes), greyscale ("L") or colour ("RGB")."""
    rng = np.random.default_rng(0)
    for split, count in (per_class or {"train": 20, "test": 6}).items():
        for label in CLASSES:
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                grey = _picture(label, (12, 12) if i % 2 else (40, 24), rng)
                image = Image.fromarray(grey, "L")
                if mode == "RGB":  # the same shape in a per-image tint: colour that carries no label
                    tint = rng.uniform(0.5, 1.0, 3)
                    image = Image.fromarray((grey[..., None] * tint).astype(np.uint8), "RGB")
                image.save(folder / f"{label}_{i}.png")
    return root


def test_greyscale_tree_loads_as_one_channel_at_the_configured_size(tmp_path: Path) -> None:
    data = imagefolder_data(str(_write_tree(tmp_path)), image_size=16, val_fraction=0.25)
    assert data.num_classes == 2
    assert data.train.images.shape[1:] == (1, 16, 16)
    assert len(data.train) + len(data.val) == 40 and len(data.val) == 10 and len(data.test) == 12
    assert torch.bincount(data.val.targets).tolist() == [5, 5]  # carved stratified by class
    assert torch.bincount(data.test.targets).tolist() == [6, 6]
    assert data.train.images.dtype == torch.uint8
    # the class is readable from the model inputs: left-bright pictures are brighter on the left
    inputs = torch.cat([batch["image"] for batch in data.model_batches("test")])
    left_minus_right = inputs[..., :8].mean(dim=(1, 2, 3)) - inputs[..., 8:].mean(dim=(1, 2, 3))
    assert ((left_minus_right > 0) == (data.test.targets == 0)).all()


def test_colour_tree_loads_as_three_channels(tmp_path: Path) -> None:
    data = imagefolder_data(str(_write_tree(tmp_path, mode="RGB")), image_size=20)
    assert data.train.images.shape[1:] == (3, 20, 20)


def test_val_split_is_fixed_by_its_seed_and_a_val_folder_wins(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "tree")
    first, again = (imagefolder_data(str(root), image_size=8, split_seed=3) for _ in range(2))
    other = imagefolder_data(str(root), image_size=8, split_seed=4)
    assert torch.equal(first.val.images, again.val.images)
    assert not torch.equal(first.val.images, other.val.images)

    with_val = _write_tree(tmp_path / "with_val", per_class={"train": 10, "val": 3, "test": 4})
    data = imagefolder_data(str(with_val), image_size=8)
    assert (len(data.train), len(data.val), len(data.test)) == (20, 6, 8)


def test_transparent_pixels_are_white_whatever_colour_they_hide(tmp_path: Path) -> None:
    """An icon (opaque black square, transparent elsewhere storing red) loads like the same picture on white."""
    icon = np.zeros((8, 8, 4), dtype=np.uint8)
    icon[..., 0] = 255  # the hidden colour of every transparent pixel
    icon[2:6, 2:6] = (0, 0, 0, 255)
    on_white = np.full((8, 8, 3), 255, dtype=np.uint8)
    on_white[2:6, 2:6] = 0
    for split in ("train", "val", "test"):
        for label in CLASSES:
            (tmp_path / split / label).mkdir(parents=True)
        Image.fromarray(icon, "RGBA").save(tmp_path / split / "left" / "icon.png")
        Image.fromarray(on_white, "RGB").save(tmp_path / split / "right" / "flat.png")
    data = imagefolder_data(str(tmp_path), image_size=8, channels=3)
    icon_loaded, flat_loaded = data.test.images[data.test.targets == 0], data.test.images[data.test.targets == 1]
    torch.testing.assert_close(icon_loaded, flat_loaded)


def test_a_val_fraction_that_cannot_be_carved_names_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot carve a split of 0 from 40 samples"):
        imagefolder_data(str(_write_tree(tmp_path)), image_size=8, val_fraction=0)


def test_class_folders_that_differ_between_train_and_test_are_refused(tmp_path: Path) -> None:
    root = _write_tree(tmp_path)
    (root / "test" / "right").rename(root / "test" / "other")
    with pytest.raises(ConfigError, match="different class folders"):
        imagefolder_data(str(root))


def test_a_run_on_an_image_folder(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "images")
    metrics = run(compose_config(*FAST, "data=imagefolder", f"data.root={root}", "data.image_size=16"), tmp_path / "r")
    assert metrics["data/name"] == "imagefolder:images"
    assert 0.0 <= metrics["student/test_acc"] <= 1.0
    assert (tmp_path / "r" / "results.json").is_file()
