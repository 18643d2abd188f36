"""Experiment loggers: W&B offline by default, online once the user has logged in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from pytorch_lightning.loggers import WandbLogger

from kdlab.errors import ConfigError

WANDB_MODES = ("auto", "online", "offline", "disabled")


def resolve_wandb_mode(mode: str) -> str:
    """``auto``: ``$WANDB_MODE`` if set, online when an API key is configured, else offline (never asks to log in)."""
    if mode not in WANDB_MODES:
        raise ConfigError(f"logger.mode must be one of {', '.join(WANDB_MODES)}, got '{mode}'")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    logged_in = bool(os.environ.get("WANDB_API_KEY")) or (netrc.is_file() and "wandb" in netrc.read_text())
    return "online" if logged_in else "offline"


def sweep_group() -> str | None:
    """The W&B group of a sweep's runs: the W&B sweep id under ``wandb agent``, the sweep dir's name in a multirun."""
    if os.environ.get("WANDB_SWEEP_ID"):
        return f"sweep-{os.environ['WANDB_SWEEP_ID']}"
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return Path(HydraConfig.get().sweep.dir).name
    return None


def wandb_logger(
    save_dir: str, project: str = "kdlab", mode: str = "auto", group: str | None = None, **kwargs: Any
) -> WandbLogger:
    """A WandbLogger whose mode goes to ``wandb.init`` (not ``offline=True``, which sets a process-wide env var).

    ``group`` null: the runs of one sweep share a group (:func:`sweep_group`), so W&B shows them side by side.
    """
    group = group or sweep_group()
    return WandbLogger(save_dir=save_dir, project=project, group=group, mode=resolve_wandb_mode(mode), **kwargs)


def finish_wandb(exit_code: int | None = None) -> None:
    """End the live W&B run so the next job of a multirun starts its own instead of merging into this one."""
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)


def _wandb_records(path: Path):
    """Yield the protobuf records of a ``.wandb`` file (a 7-byte header, then LevelDB-log framed 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2

    data, block, pos, pending = path.read_bytes(), 32 * 1024, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer too small for a header: padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4) and pending:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def read_offline_run(run_dir: str | Path) -> dict[str, Any]:
    """Config, summary, history and group of an offline W&B run, read back from its ``.wandb`` file."""
    import json

    files = sorted(Path(run_dir).glob("*.wandb"))
    if not files:
        raise ConfigError(f"no .wandb file in {run_dir}")

    def items(entries) -> dict[str, Any]:
        return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in entries}

    config, summary, history, group = {}, {}, [], None
    for record in _wandb_records(files[0]):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            config.update(items(record.config.update))
        elif kind == "summary":
            summary.update(items(record.summary.update))
        elif kind == "history":
            history.append(items(record.history.item))
        elif kind == "run":
            group = record.run.run_group or group
    return {"config": config, "summary": summary, "history": history, "group": group}
