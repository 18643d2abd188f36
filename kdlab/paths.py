"""Where kdlab's own files live: the config tree ``conf/`` (beside the package in a checkout, or inside the wheel)."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    """``conf/`` beside the package in a checkout, or the copy packed inside the wheel."""
    here = Path(__file__).resolve().parent
    packed = here / "conf"
    return str(packed if packed.is_dir() else here.parent / "conf")
