"""One invocation of ``python -m kdlab``: a single distillation run, or a born-again chain of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from kdlab.run.born_again import run_generations
from kdlab.run.single import run_single


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run the experiment ``cfg`` into ``out_dir`` and return its flat metrics (also written to ``results.json``)."""
    if cfg.kd.get("generations") is not None:  # born-again networks: a chain of single runs
        return run_generations(cfg, out_dir)
    return run_single(cfg, out_dir)
