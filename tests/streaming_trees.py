"""Generated JPEG trees for the streaming tests (no download): classes told apart by a bright half."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("left", "right")


def picture(class_index: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB noise picture whose left (even classes) or right half is bright: learnable, never two alike."""
    pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    half = slice(0, size // 2) if class_index % 2 == 0 else slice(size // 2, size)
    pixels[:, half] += 180
    return pixels


def write_jpeg_tree(
    root: Path, per_split: dict[str, int] | None = None, size: int = 40, classes: tuple[str, ...] = CLASSES
) -> Path:
    """root/<split>/<class>/<n>.jpg with ``per_split[split]`` images per class."""
    rng = np.random.default_rng(0)
    for split, count in (per_split or {"train": 16, "test": 4}).items():
        for k, label in enumerate(classes):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(picture(k, size, rng)).save(folder / f"{label}_{i}.jpg", quality=90)
    return root
