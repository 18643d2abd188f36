"""Read an offline W&B run back from its ``.wandb`` file: what a dashboard will show once it is synced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kdlab.errors import ConfigError


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
    """Everything a synced dashboard would show of an offline W&B run, read back from its ``.wandb`` file.

    Keys: ``config``, ``config_keys`` (every key each config record sent, in order, to spot one sent twice),
    ``summary``, ``history``, ``group``, ``name``, ``job_type``, ``tags``, ``run_id``, ``sweep_id``, ``metrics``
    (``define_metric`` name -> summary kinds), ``artifacts`` (``{"name", "type", "use"}``: ``use`` True for an
    input, False for an output).
    """
    files = sorted(Path(run_dir).glob("*.wandb"))
    if not files:
        raise ConfigError(f"no .wandb file in {run_dir}")
    found: dict[str, Any] = {"config": {}, "config_keys": [], "summary": {}, "history": [], "group": None}
    found.update(name=None, job_type=None, tags=[], metrics={}, artifacts=[], run_id=None, sweep_id=None)
    for record in _wandb_records(files[0]):
        _read_record(record, found)
    return found


def _items(entries) -> dict[str, Any]:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in entries}


def _read_record(record, found: dict[str, Any]) -> None:
    kind = record.WhichOneof("record_type")
    if kind == "config":
        update = _items(record.config.update)
        found["config"].update(update)
        found["config_keys"].extend(update)
    elif kind == "summary":
        found["summary"].update(_items(record.summary.update))
    elif kind == "history":
        found["history"].append(_items(record.history.item))
    elif kind == "run":
        run = record.run
        update = _items(run.config.update)  # the keys wandb.init set: a sweep's parameters, locked
        found["config"].update(update)
        found["config_keys"].extend(update)
        found["group"] = run.run_group or found["group"]
        found["name"] = run.display_name or found["name"]
        found["job_type"] = run.job_type or found["job_type"]
        found["tags"] = list(run.tags) or found["tags"]
        found["run_id"], found["sweep_id"] = run.run_id, run.sweep_id
    elif kind == "metric" and record.metric.name:
        kinds = [f.name for f, on in record.metric.summary.ListFields() if on]
        found["metrics"][record.metric.name] = kinds
    elif kind == "artifact":
        artifact = record.artifact
        found["artifacts"].append({"name": artifact.name, "type": artifact.type, "use": artifact.use_after_commit})
