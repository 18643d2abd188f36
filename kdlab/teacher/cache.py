"""Where trained teachers (and their outputs) live, and the key that says which runs may share one.

An entry is ``<cache_root>/<kind>/<slug>-<key>.pt`` with ``<slug>-<key>.json`` beside it: the readable content of
its key. ``kdlab-cache list|show|prune`` reads and clears them (:mod:`kdlab.teacher.cache_cli`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import platformdirs
import timm
import torch
from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf, open_dict

from kdlab.data.transfer import data_source_config
from kdlab.io import write_json
from kdlab.training.speed import resolve_precision

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 2: the key covers the teacher's trainer settings, a data fingerprint and library versions
TEACHERS, OUTPUTS = "teachers", "teacher_outputs"  # the two kinds of entry, one folder each
STALE_TEMP_SECONDS = 3600  # a temp file this old is what a killed write left behind, not a write in progress

# Trainer settings that cannot change the teacher's weights: left out of its key, so changing them reuses the
# cached teacher. Every other setting of the teacher phase's trainer is part of the key.
IGNORED_TRAINER_KEYS = frozenset(
    {
        "log_every_n_steps",  # logging cadence
        "enable_progress_bar",  # console output
        "enable_model_summary",  # console output
        "enable_checkpointing",  # the teacher phase writes no checkpoints (make_trainer quiet=True)
        "default_root_dir",  # where logs would go
        "logger",  # the teacher phase logs nothing
        "profiler",  # timing only
        "limit_test_batches",  # the teacher phase never tests ...
        "limit_predict_batches",  # ... nor predicts
        # the teacher phase always trains in one process (make_trainer quiet=True drops DDP), whatever these say:
        "strategy",
        "devices",
        "num_nodes",
        "sync_batchnorm",
    }
)
# Built-in data sets: the library that ships or reads them stands for their content (no folder to fingerprint).
BUILT_IN_DATA = {
    "kdlab.data.digits.digits_data": "scikit-learn",
    "kdlab.data.torchvision_sets.torchvision_data": "torchvision",
    "kdlab.data.synthetic.synthetic_data": "torch",
}


def cache_root(configured: str | None = None) -> Path:
    """``cache_dir`` from the config, else ``$KDLAB_CACHE``, else the user's XDG cache directory."""
    root = configured or os.environ.get("KDLAB_CACHE") or platformdirs.user_cache_dir("kdlab")
    return Path(root).expanduser()


def safe_slug(name: Any) -> str:
    """A file-name-safe form of a config name (``../../etc/x`` -> ``etc_x``): never a path component of its own."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._-")
    return slug[:60] or "model"


def entry_path(root: Path, kind: str, name: Any, key: str) -> Path:
    """``<root>/<kind>/<slug>-<key>.pt``, inside ``<root>/<kind>`` whatever ``name`` is."""
    return root / kind / f"{safe_slug(name)}-{key}.pt"


def record_path(weights: Path) -> Path:
    """The readable key record beside an entry's weights."""
    return weights.with_suffix(".json")


def content_key(content: Any) -> str:
    """A short stable hash of JSON-able content (dict order does not matter)."""
    blob = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_record(weights: Path, kind: str, name: Any, key: str, content: dict[str, Any], **extra: Any) -> Path:
    """Write the entry's key content as JSON, atomically; written before the weights, whose presence commits both."""
    record = {"kind": kind, "name": str(name), "key": key, "created": _now(), "content": content, **extra}
    return write_json(record_path(weights), record)


def read_record(weights: Path) -> dict[str, Any] | None:
    """The entry's record, or None when it has none (written by an older kdlab) or it is unreadable."""
    try:
        record = json.loads(record_path(weights).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@contextmanager
def entry_lock(weights: Path) -> Iterator[None]:
    """Hold the entry's lock (parallel jobs write an entry once); say so when another job holds it, and for how
    long we waited. While held, temp files that killed writes left in the folder are removed."""
    lock = FileLock(str(weights) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for %s: another job is writing this cache entry", lock.lock_file)
        started = time.monotonic()
        lock.acquire()
        log.info("got %s after waiting %.1f s", lock.lock_file, time.monotonic() - started)
    try:
        remove_stale_temp_files(weights.parent)
        yield
    finally:
        lock.release()


def remove_stale_temp_files(folder: Path, older_than_s: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete ``.*.tmp`` files (``atomic_write``'s) older than ``older_than_s``: a killed write's leftovers."""
    removed = []
    for tmp in folder.glob(".*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another job removed it first
            continue
    if removed:
        log.info("removed %d stale temp file(s) in %s", len(removed), folder)
    return removed


def teacher_seed(cfg: DictConfig) -> int:
    """``teacher_seed`` (defaults to ``seed``): fixing it distils every student seed of a sweep from one teacher."""
    value = cfg.get("teacher_seed")
    return int(cfg.seed if value is None else value)


def teacher_phase(cfg: DictConfig) -> DictConfig:
    """The run config as the teacher trains under it: ``teacher.max_epochs`` epochs and ``teacher.optim`` when given —
    a whole recipe (with an ``optimizer._target_``) replaces ``optim``, a partial one (``{optimizer: {lr: 0.05}}``)
    is merged over it; interpolations such as a scheduler's ``${trainer.max_epochs}`` resolve to the teacher's."""
    phase = OmegaConf.merge(cfg, {"trainer": {"max_epochs": cfg.teacher.max_epochs}})
    own = cfg.teacher.get("optim")
    if own:
        whole = OmegaConf.select(own, "optimizer._target_") is not None
        with open_dict(phase):
            phase.optim = phase.teacher.optim if whole else OmegaConf.merge(phase.optim, phase.teacher.optim)
    return phase


def teacher_trainer_settings(trainer: DictConfig) -> dict[str, Any]:
    """The teacher phase's trainer settings that can change its weights, precision resolved as the trainer gets it."""
    settings = {k: v for k, v in _plain(trainer).items() if k not in IGNORED_TRAINER_KEYS}
    if "precision" in settings:
        settings["precision"] = resolve_precision(settings["precision"], str(settings.get("accelerator", "auto")))
    return settings


def data_fingerprint(data: DictConfig) -> dict[str, Any]:
    """What stands for the data's content: a built-in set's library version, or a folder's file manifest."""
    target = str(data.get("_target_", ""))
    if target in BUILT_IN_DATA:
        library = BUILT_IN_DATA[target]
        return {"source": target, "library": library, "version": _version(library)}
    root = data.get("root") if not OmegaConf.is_missing(data, "root") else None
    if root:
        return {"source": target, **folder_manifest(Path(str(root)).expanduser())}
    return {"source": target}


def file_digest(path: Path) -> dict[str, Any]:
    """A file's name and the SHA-256 of its content (a pretrained teacher's starting weights)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"name": path.name, "sha256": digest.hexdigest()}


def folder_manifest(root: Path) -> dict[str, Any]:
    """A hash over every file's relative path, size and mtime under ``root``: adding, removing, replacing or
    touching a file changes it."""
    if not root.is_dir():
        return {"files": 0, "manifest": None}
    digest, count = hashlib.sha256(), 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            stat = path.stat()
            digest.update(f"{path.relative_to(root).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
            count += 1
    return {"files": count, "manifest": digest.hexdigest()}


def teacher_key_content(cfg: DictConfig) -> dict[str, Any]:
    """Everything that determines a trained teacher: its node (``augment`` included, ``checkpoint`` not), its
    optimiser and trainer as the teacher phase resolves them (so the student's epochs do not retrain it), the data
    config and a fingerprint of the data, the teacher's seed and the versions of torch and timm."""
    phase = teacher_phase(cfg)
    teacher = _plain(cfg.teacher)
    for loaded_not_trained in ("checkpoint", "checkpoint_format", "optim"):
        teacher.pop(loaded_not_trained, None)
    for unset_keeps_key in ("bias", "pretrained_file"):  # unset, the keys of existing entries stay as they were
        if teacher.get(unset_keeps_key) is None:
            teacher.pop(unset_keeps_key, None)
    if teacher.get("pretrained_file"):  # the weights it starts from, by content: a replaced file retrains
        teacher["pretrained_file"] = file_digest(Path(str(teacher["pretrained_file"])).expanduser())
    data = data_source_config(cfg.data)  # the student's transfer set (data.transfer_*) does not change the teacher
    return {
        "format": CACHE_FORMAT,
        "teacher": teacher,
        "optim": _plain(phase.optim),
        "trainer": teacher_trainer_settings(phase.trainer),
        "data": _plain(data),
        "data_fingerprint": data_fingerprint(data),
        "teacher_seed": teacher_seed(cfg),
        "versions": {"torch": torch.__version__, "timm": timm.__version__},
    }


def teacher_cache_key(cfg: DictConfig) -> str:
    """The hash of :func:`teacher_key_content`."""
    return content_key(teacher_key_content(cfg))


def _plain(node: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(node, resolve=True)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
