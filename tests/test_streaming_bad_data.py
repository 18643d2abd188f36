"""Bad image folders: a corrupt file is named (or skipped and counted), an empty class folder and a val class that
train lacks are clear errors, more loader workers than cores is a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from streaming_trees import write_jpeg_tree

from kdlab.data.imagefolder import imagefolder_data
from kdlab.data.streaming import resolve_num_workers, usable_cores
from kdlab.errors import ConfigError


def _tree_with_a_corrupt_file(root: Path) -> Path:
    write_jpeg_tree(root, {"train": 6, "test": 2})
    (root / "train" / "left" / "left_3.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return root


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_corrupt_file_is_reported_with_its_path(tmp_path: Path, in_memory: bool) -> None:
    root = _tree_with_a_corrupt_file(tmp_path / "tree")
    bad = root / "train" / "left" / "left_3.jpg"
    with pytest.raises(ConfigError, match=rf"cannot read image {bad} \(.*\); .*data.skip_bad_files=true"):
        data = imagefolder_data(str(root), image_size=16, batch_size=4, in_memory=in_memory, num_workers=2)
        for _batch in data.model_batches("train"):  # streaming: met in a worker, reported by the main process
            pass


def test_skip_bad_files_skips_and_counts_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _tree_with_a_corrupt_file(tmp_path / "tree")
    data = imagefolder_data(
        str(root), image_size=16, batch_size=4, in_memory=False, num_workers=0, skip_bad_files=True, val_fraction=2
    )
    with caplog.at_level(logging.WARNING):
        loader = data.train_dataloader()
        seen = [data.on_before_batch_transfer(batch, 0) for batch in loader]
    assert sum(len(b["index"]) for b in seen) == len(data.train) - 1
    assert data.skipped_files == {str(root / "train" / "left" / "left_3.jpg")}
    assert "skipping unreadable image" in caplog.text and "1 skipped so far" in caplog.text
    in_memory = imagefolder_data(str(root), image_size=16, in_memory=True, skip_bad_files=True, val_fraction=2)
    assert len(in_memory.train) + len(in_memory.val) == 11 and in_memory.train.images.dtype == torch.uint8


def test_an_empty_class_folder_is_named(tmp_path: Path) -> None:
    root = write_jpeg_tree(tmp_path / "tree", {"train": 4, "test": 2})
    (root / "train" / "empty").mkdir()
    (root / "test" / "empty").mkdir()
    with pytest.raises(
        ConfigError, match=r"cannot read images under .*train: Found no valid file for the classes empty"
    ):
        imagefolder_data(str(root), in_memory=False)


def test_a_val_class_missing_from_train_is_named(tmp_path: Path) -> None:
    root = write_jpeg_tree(tmp_path / "tree", {"train": 4, "val": 2, "test": 2})
    write_jpeg_tree(root, {"val": 2}, classes=("stray",))
    with pytest.raises(ConfigError, match=r"class folder\(s\) \['stray'\] in val/ are not in train/"):
        imagefolder_data(str(root), in_memory=False)


def test_more_workers_than_cores_is_a_warning_and_a_negative_count_an_error() -> None:
    with pytest.warns(UserWarning, match=rf"data.num_workers={usable_cores() + 1} is more than this machine's"):
        assert resolve_num_workers(usable_cores() + 1) == usable_cores() + 1
    with pytest.raises(ConfigError, match=r"data.num_workers must be auto or an integer >= 0, got -1"):
        resolve_num_workers(-1)
    assert resolve_num_workers("auto") == min(8, usable_cores())
