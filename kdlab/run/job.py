"""One invocation of ``python -m kdlab``: a single distillation run, or a chain or cohort of networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from kdlab.run.assistants import run_assistant_chain
from kdlab.run.born_again import run_generations
from kdlab.run.mutual import run_mutual
from kdlab.run.single import run_single


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run the experiment ``cfg`` into ``out_dir`` and return its flat metrics (also written to ``results.json``)."""
    if cfg.kd.get("generations") is not None:  # born-again networks: a chain of single runs
        return run_generations(cfg, out_dir)
    if cfg.kd.get("assistants") is not None:  # TAKD: teacher → assistants → student, a chain of single runs
        return run_assistant_chain(cfg, out_dir)
    if cfg.kd.get("peers") is not None:  # deep mutual learning: a cohort trained together, no teacher
        return run_mutual(cfg, out_dir)
    return run_single(cfg, out_dir)
