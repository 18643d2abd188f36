"""Teacher-output replay: distil under random augmentation at the cost of training the student alone.

Every random choice of both data paths is a function of (seed, epoch, sample index) for augmentation — in memory
(:mod:`kdlab.data.augment`) and in the workers and on the device of a streamed folder (:mod:`kdlab.data.streaming`:
crops, flips, RandAugment, erasing) — and of (seed, epoch, batch) for mixup/cutmix (:mod:`kdlab.data.mixing`), so
the student's input at epoch ``e`` is known in advance. For ``V`` views (default: the student's epochs, exact) the
teacher is run once per view over exactly the batches the student will get at an epoch ``e`` with ``e mod V = v`` —
with mixing on, on the *mixed* images — and its fp16 logits are stored in a memory-mapped file under
``<cache_root>/teacher_replay/``, reused by every later run and every job of a sweep. This is FKD's idea (Shen &
Xing, "A Fast Knowledge Distillation Framework for Visual Recognition", ECCV 2022, arXiv:2112.01528) with Beyer et
al.'s condition ("Knowledge distillation: A good teacher is patient and consistent", CVPR 2022, arXiv:2106.05237):
the teacher's output must be on the student's exact view. ``V`` < epochs cycles the views (FKD-style).

Logits are replayed, and the pooled embedding when a term reads it (RKD, PKT, CRD, …); terms that read the teacher's
feature maps (FitNet, AT, …) run it online.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from filelock import FileLock
from hydra.utils import get_object
from torch import nn

from kdlab.data.base import ImageDataModule
from kdlab.data.sampling import shuffle_seed
from kdlab.data.tensors import fingerprint
from kdlab.errors import ConfigError
from kdlab.io import write_json
from kdlab.models.outputs import ModelOutputs
from kdlab.teacher.cache import cache_root
from kdlab.teacher.output_cache import OutputsSettings, TeacherOutputsPlan, device_of, evaluating
from kdlab.training.replay_table import (
    META_FILE,
    REPLAY_FORMAT,
    ReplayTable,
    open_arrays,
    topk_with_rest,
)
from kdlab.training.teacher_outputs import TeacherTaps, run_teacher

log = logging.getLogger(__name__)

DEFAULT_MAX_GB = 20.0


@dataclass(frozen=True)
class ReplaySettings:
    """``kd.replay``: ``views`` (V; null = the student's max_epochs), ``topk`` (0 = all logits), ``max_gb``."""

    views: int
    topk: int
    max_gb: float
    embedding_dim: int = 0  # > 0: the teacher's pooled embedding is stored too (set from the teacher, not the config)

    @classmethod
    def of(cls, outputs: OutputsSettings, num_classes: int | None = None) -> ReplaySettings:
        """Checked settings; ``num_classes`` None (before the data is built) skips topk's upper bound."""
        views, topk, max_gb = outputs.replay_views, outputs.replay_topk, outputs.replay_max_gb
        if not isinstance(views, int) or isinstance(views, bool) or views < 1:
            raise ConfigError(f"kd.replay.views must be a positive integer (null: trainer.max_epochs), got {views!r}")
        if not isinstance(topk, int) or isinstance(topk, bool) or not 0 <= topk < (num_classes or topk + 1):
            raise ConfigError(f"kd.replay.topk must be an integer in [0, {num_classes}) (0 = all logits), got {topk!r}")
        if not isinstance(max_gb, int | float) or isinstance(max_gb, bool) or max_gb <= 0:
            raise ConfigError(f"kd.replay.max_gb must be a positive number of GiB, got {max_gb!r}")
        return cls(int(views), int(topk), float(max_gb))

    def nbytes(self, num_samples: int, num_classes: int) -> int:
        rows = self.views * num_samples
        logits = rows * (self.topk * (2 + 4) + 4) if self.topk else rows * num_classes * 2
        return logits + rows * self.embedding_dim * 2


def why_not_replay(settings: OutputsSettings, datamodule: Any, taps: TeacherTaps) -> str | None:
    """Why this run's teacher outputs cannot be replayed (then the teacher runs online), or None when they can."""
    if taps.stages:
        return "the terms read the teacher's feature maps, which are not replayed"
    devices = settings.devices
    single = devices in (1, "1", None) or (devices == "auto" and torch.cuda.device_count() <= 1)
    if ("ddp" in settings.strategy or not single) and datamodule.mixer is not None:
        # without mixing a row is one sample's view, whichever rank trains on it; mixed images depend on the batch
        return "mixup/cutmix under DDP mixes within each rank's batches, which views computed in one process are not"
    return None


def check_forced_replay(kd: Any) -> None:
    """``kd.cache_teacher=replay`` with a term that reads the teacher's feature maps fails here, before the teacher
    trains, rather than in :func:`replay_plan`. Every stage-reading term takes ``stages`` (``kdlab.terms.feature``,
    ``SP``), so the terms' classes tell without building the models."""
    if kd.get("cache_teacher") != "replay":
        return
    for name, node in (kd.get("terms") or {}).items():
        target = node.get("_target_") if hasattr(node, "get") else None
        if target and "stages" in inspect.signature(get_object(str(target))).parameters:
            raise ConfigError(
                f"kd.cache_teacher=replay: term {name} ({target}) reads the teacher's feature maps, which are not "
                "replayed; use kd.cache_teacher=auto (teacher online)"
            )


def replay_requested(settings: OutputsSettings, datamodule: Any) -> bool:
    """``kd.cache_teacher=replay``, or ``auto`` with random augmentation or mixing (where the output cache cannot
    serve)."""
    mode = settings.cache_teacher
    varies = settings.augment != "none" or getattr(datamodule, "mixer", None) is not None
    return mode == "replay" or (mode == "auto" and varies)


def key_record(
    teacher: nn.Module, datamodule: ImageDataModule, settings: ReplaySettings, teacher_name: str
) -> dict[str, Any]:
    """What determines the replayed logits, readable: teacher weights, data contents (tensors in memory, a file
    manifest when streamed), transform and augmentation recipe with the library versions that draw them, batching
    (mixing pairs images within a batch), seed, V, K."""
    mixer = datamodule.mixer
    return {
        "format": REPLAY_FORMAT,
        "teacher": teacher_name,
        "teacher_class": type(teacher).__name__,
        "teacher_weights": fingerprint(teacher.state_dict().items()),
        "data": datamodule.name,
        "streamed": bool(getattr(datamodule, "streaming", False)),
        **datamodule.replay_fingerprint(),
        "augment": datamodule.augment,
        "mixing": None if mixer is None else repr(vars(mixer.mixup)),
        "batch_size": datamodule.batch_size,
        "versions": {"torch": torch.__version__, "timm": timm.__version__, "numpy": np.__version__},
        "seed": shuffle_seed(),
        "views": settings.views,
        "topk": settings.topk,
        "embedding_dim": settings.embedding_dim,
    }


def replay_dir(cache_dir: str | None, record: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_root(cache_dir) / "teacher_replay" / f"{record['teacher']}-{digest}"


def check_budget(path: Path, nbytes: int, settings: ReplaySettings) -> str | None:
    """Why ``nbytes`` would not fit (over ``kd.replay.max_gb`` or the disk's free space), else None."""
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    need = f"{nbytes / 1024**3:.2f} GiB for {settings.views} views"
    if nbytes > settings.max_gb * 1024**3:
        return f"the replayed teacher logits need {need}, over kd.replay.max_gb={settings.max_gb:g}"
    if nbytes > free:
        return f"the replayed teacher logits need {need}, but {path.parent} has {free / 1024**3:.2f} GiB free"
    return None


def _store(arrays: dict[str, np.memmap], view: int, rows: np.ndarray, out: ModelOutputs, topk: int) -> None:
    if out.embedding is not None:
        arrays["embedding"][view, rows] = out.embedding.half().cpu().numpy()
    logits = out.logits
    if not topk:
        arrays["logits"][view, rows] = logits.half().cpu().numpy()
        return
    values, indices, rest = topk_with_rest(logits, topk)
    arrays["values"][view, rows] = values.half().cpu().numpy()
    arrays["indices"][view, rows] = indices.int().cpu().numpy()
    arrays["rest"][view, rows] = rest.cpu().numpy()


def compute_views(teacher: nn.Module, datamodule: ImageDataModule, settings: ReplaySettings, directory: Path) -> None:
    """One eval-mode teacher pass per view over exactly the student's batches of that view, stored as it goes."""
    n, c = datamodule.num_train, datamodule.num_classes
    arrays = open_arrays(directory, "w+", settings.views, n, c, settings.topk, settings.embedding_dim)
    with evaluating(teacher):
        device = device_of(teacher)
        for view in range(settings.views):
            for batch in datamodule.train_view_batches(view, device):
                out = run_teacher(teacher, batch["image"], embedding=bool(settings.embedding_dim))
                _store(arrays, view, batch["index"].cpu().numpy(), out, settings.topk)
    for array in arrays.values():
        array.flush()


def _write_replay(
    teacher: nn.Module, datamodule: ImageDataModule, settings: ReplaySettings, record: dict, path: Path
) -> None:
    """Compute into a temporary directory beside ``path`` and rename it into place: a killed job leaves no half file.

    Called under the entry's lock, which every writer holds: a ``.partial-<pid>`` directory found here is what a
    killed job left (views of the size of the whole entry), and is removed first.
    """
    for leftover in path.parent.glob(f"{path.name}.partial-*"):
        log.info("removing %s, left by a killed replay job", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    partial.mkdir(parents=True)
    try:
        compute_views(teacher, datamodule, settings, partial)
        shape = [settings.views, datamodule.num_train, datamodule.num_classes]
        meta = {"format": REPLAY_FORMAT, "shape": shape, "topk": settings.topk, "key": record}
        write_json(partial / META_FILE, meta | {"embedding_dim": settings.embedding_dim})
        os.replace(partial, path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _load(path: Path, settings: ReplaySettings, datamodule: ImageDataModule) -> ReplayTable:
    try:
        table = ReplayTable(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"teacher replay {path} is unreadable ({type(exc).__name__}); delete it to recompute") from (
            exc
        )
    if (table.views, table.num_samples, table.num_classes, table.topk, table.embedding_dim) != (
        settings.views,
        datamodule.num_train,
        datamodule.num_classes,
        settings.topk,
        settings.embedding_dim,
    ):
        raise ConfigError(f"teacher replay {path} does not match this run's data or kd.replay; delete it to recompute")
    return table


def _embedding_width(teacher: nn.Module, datamodule: ImageDataModule) -> int:
    """The pooled embedding's width, from one eval-mode forward of a blank input."""
    with evaluating(teacher):
        blank = torch.zeros(1, *datamodule.input_shape, device=device_of(teacher))
        pooled = run_teacher(teacher, blank, embedding=True).embedding
    if pooled is None:
        raise ConfigError(f"teacher {type(teacher).__name__} gives no pooled embedding to replay")
    return int(pooled.shape[-1])


def replay_plan(
    outputs: OutputsSettings, teacher: nn.Module, datamodule: Any, taps: TeacherTaps
) -> TeacherOutputsPlan | None:
    """The replay table for this run (computed once under a lock, or loaded), or None when the teacher runs online
    or the ordinary output cache applies. ``kd.cache_teacher=replay`` turns every reason for not replaying into a
    ConfigError; under ``auto`` the reason is logged and the teacher runs online."""
    if not replay_requested(outputs, datamodule):
        return None
    forced = outputs.cache_teacher == "replay"
    if (why := why_not_replay(outputs, datamodule, taps)) is not None:
        if forced:
            raise ConfigError(f"kd.cache_teacher=replay: {why}; use kd.cache_teacher=auto (teacher online)")
        log.info("teacher outputs: online (%s)", why)
        return TeacherOutputsPlan("online")
    settings = ReplaySettings.of(outputs, datamodule.num_classes)
    if taps.embedding:
        settings = replace(settings, embedding_dim=_embedding_width(teacher, datamodule))
    record = key_record(teacher, datamodule, settings, outputs.teacher_name)
    path = replay_dir(outputs.cache_dir, record)
    with FileLock(str(path) + ".lock"):  # the jobs of a sweep compute the views once
        if not path.exists():
            if too_big := check_budget(path, settings.nbytes(datamodule.num_train, datamodule.num_classes), settings):
                hint = "lower kd.replay.views, set kd.replay.topk, raise kd.replay.max_gb or use kd.cache_teacher=false"
                if forced:
                    raise ConfigError(f"kd.cache_teacher=replay: {too_big}; {hint}")
                log.warning("teacher outputs: online (%s; %s)", too_big, hint)
                return TeacherOutputsPlan("online")
            _write_replay(teacher, datamodule, settings, record, path)
            log.info("teacher outputs: replay, %d views computed once into %s", settings.views, path)
        else:
            log.info("teacher outputs: replay, %d views from %s", settings.views, path)
        table = _load(path, settings, datamodule)
    datamodule.view_cycle = settings.views
    return TeacherOutputsPlan("replay", table, path)
