"""The teacher-output cache on disk: the teacher's outputs on the whole data set, computed once and reused by every
epoch and every job of a sweep, next to the teacher cache (``<cache_root>/teacher_outputs/``).

The key hashes the *contents* that determine the outputs: the teacher's weights (however they were obtained:
trained, cached or a checkpoint), the model inputs after the data transform, and which taps are stored. Any change
to the teacher, the data or the transform therefore gives a new key and a fresh computation. The key's content is
written beside each entry as JSON (``kdlab-cache show KEY``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.tensors import fingerprint
from kdlab.errors import ConfigError
from kdlab.io import UNREADABLE_FILE_ERRORS, atomic_write
from kdlab.teacher.cache import OUTPUTS, cache_root, content_key, entry_lock, entry_path, write_record
from kdlab.training.teacher_outputs import SPLITS, TeacherOutputTable, TeacherTaps, run_teacher

log = logging.getLogger(__name__)

FORMAT = "kdlab.teacher_outputs/1"
FINGERPRINT_BATCH = 512  # model inputs are hashed in chunks of this many images
MAX_TABLE_BYTES = 2 * 1024**3  # stage maps of a large data set would not fit in memory: run the teacher online


@dataclass
class TeacherOutputsPlan:
    """How this run gets the teacher's outputs: ``online``, ``computed`` (and cached) or loaded from the ``cache``."""

    source: str
    table: TeacherOutputTable | None = None
    path: Path | None = None


@dataclass(frozen=True)
class OutputsSettings:
    """How a run may get its teacher's outputs (``kd.cache_teacher``, ``kd.replay``) and what that depends on: the
    data's augmentation, the student's epochs and process layout, and where the cache lives. Read from the run config
    by :func:`kdlab.teacher.recipe.outputs_settings`."""

    teacher_name: str
    cache_teacher: Any  # kd.cache_teacher: auto | true | false | replay (checked by cache_mode)
    augment: str  # data.augment: random augmentation rules the fixed-input cache out
    replay_views: Any  # kd.replay.views, or trainer.max_epochs when null (checked by ReplaySettings.of)
    replay_topk: Any  # kd.replay.topk
    replay_max_gb: Any  # kd.replay.max_gb
    devices: Any  # trainer.devices and trainer.strategy: under DDP, mixed batches are not replayed
    strategy: str
    cache_dir: str | None


def cache_mode(settings: OutputsSettings) -> bool:
    """Resolve ``kd.cache_teacher`` (auto | true | false | replay) against ``data.augment``; a contradiction is a
    ConfigError."""
    mode = settings.cache_teacher
    if not (mode in ("auto", "replay") or isinstance(mode, bool)):  # replay: kdlab.teacher.replay
        raise ConfigError(f"kd.cache_teacher must be auto, true, false or replay, got {mode!r}")
    augment = settings.augment
    if mode is True and augment != "none":
        raise ConfigError(
            f"kd.cache_teacher=true needs deterministic inputs, but data.augment={augment} changes them every step; "
            "use kd.cache_teacher=auto (teacher runs online) or data.augment=none"
        )
    return mode is True or (mode == "auto" and augment == "none")


def output_key_content(teacher: nn.Module, datamodule: InMemoryDataModule, taps: TeacherTaps) -> dict[str, Any]:
    """Teacher weights + transformed inputs of every split + taps (see the module docstring), and for the reader
    the data set's name and split sizes (determined by the inputs)."""
    batches = ((s, datamodule.model_batches(s, batch_size=FINGERPRINT_BATCH)) for s in SPLITS)  # not data.batch_size
    inputs = [(f"{s}/images", batch["image"]) for s, split in batches for batch in split]
    return {
        "format": FORMAT,
        "teacher_class": type(teacher).__name__,
        "teacher_weights_sha256": fingerprint(teacher.state_dict().items()),
        "inputs_sha256": fingerprint(inputs),
        "taps": {"stages": list(taps.stages), "embedding": taps.embedding},
        "data": datamodule.name,
        "sizes": {s: len(getattr(datamodule, s)) for s in SPLITS},
    }


def output_cache_key(teacher: nn.Module, datamodule: InMemoryDataModule, taps: TeacherTaps) -> str:
    """The hash of :func:`output_key_content`."""
    return content_key(output_key_content(teacher, datamodule, taps))


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextmanager
def evaluating(teacher: nn.Module) -> Iterator[nn.Module]:
    """The teacher in eval mode, on the GPU when there is one; put back as it was afterwards."""
    was_training, device = teacher.training, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        yield teacher.eval().to(device)
    finally:
        teacher.to("cpu").train(was_training)


def estimated_bytes(teacher: nn.Module, datamodule: InMemoryDataModule, taps: TeacherTaps) -> int:
    """Size of the table, from one training sample through the teacher (stage maps only for ``train``)."""
    with evaluating(teacher):
        first = next(datamodule.model_batches("train", batch_size=1))["image"]
        one = run_teacher(teacher, first.to(device_of(teacher)), taps.stages, taps.embedding)
    per_sample_taps = sum(t.numel() * t.element_size() for t in one.features.values())
    if one.embedding is not None:
        per_sample_taps += one.embedding.numel() * one.embedding.element_size()
    n_all = sum(len(getattr(datamodule, s)) for s in SPLITS)
    return n_all * one.logits.numel() * one.logits.element_size() + datamodule.num_train * per_sample_taps


def compute_table(
    teacher: nn.Module, datamodule: InMemoryDataModule, taps: TeacherTaps, batch_size: int = 256
) -> TeacherOutputTable:
    """One pass of the (eval-mode) teacher over every split, in order, on the GPU when there is one."""
    logits, features, embedding = {}, {}, None
    with evaluating(teacher):
        device = device_of(teacher)
        for split in SPLITS:
            stages, emb = (taps.stages, taps.embedding) if split == "train" else ((), False)
            batches = datamodule.model_batches(split, batch_size=batch_size)
            chunks = [run_teacher(teacher, batch["image"].to(device), stages, emb) for batch in batches]
            logits[split] = torch.cat([c.logits for c in chunks]).cpu()
            if split == "train":
                features = {s: torch.cat([c.features[s] for c in chunks]).cpu() for s in stages}
                embedding = torch.cat([c.embedding for c in chunks]).cpu() if emb else None
    return TeacherOutputTable(logits, features, embedding)


def load_table(path: Path, datamodule: InMemoryDataModule, taps: TeacherTaps) -> TeacherOutputTable:
    """Read a cached table safely (``weights_only``), or explain which file is bad and what to do."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except UNREADABLE_FILE_ERRORS as exc:
        raise ConfigError(
            f"teacher output cache {path} is corrupt ({type(exc).__name__}); delete it and it is recomputed"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ConfigError(f"teacher output cache {path} is not a {FORMAT} file; delete it and it is recomputed")
    table = TeacherOutputTable.from_tensors(payload["tensors"])
    sizes = {s: table.size(s) for s in SPLITS}
    expected = {s: len(getattr(datamodule, s)) for s in SPLITS}
    if sizes != expected or not table.covers("train", taps.stages, taps.embedding):
        raise ConfigError(f"teacher output cache {path} does not match this data set; delete it and it is recomputed")
    return table


def _inputs_vary(datamodule) -> str | None:
    """Why a table over this data cannot be used (streamed from disk, or mixed per batch), else None."""
    if getattr(datamodule, "streaming", False):
        return "the data set is streamed from disk"
    if getattr(datamodule, "mixer", None) is not None:
        return "data.mixup/data.cutmix mix the inputs every step"
    return None


def teacher_outputs_plan(
    settings: OutputsSettings, teacher: nn.Module, datamodule: InMemoryDataModule, taps: TeacherTaps
) -> TeacherOutputsPlan:
    """Load or compute the teacher-output table when ``kd.cache_teacher`` allows it, else plan to run online."""
    if (why := _inputs_vary(datamodule)) is not None:
        if settings.cache_teacher is True:
            raise ConfigError(f"kd.cache_teacher=true needs fixed inputs, but {why}; use kd.cache_teacher=auto")
        log.info("teacher outputs: online (%s)", why)
        return TeacherOutputsPlan("online")
    if not cache_mode(settings):
        augment = settings.augment
        why = "kd.cache_teacher=false" if augment == "none" else f"data.augment={augment} changes the inputs every step"
        log.info("teacher outputs: online (%s)", why)
        return TeacherOutputsPlan("online")
    size = estimated_bytes(teacher, datamodule, taps)
    if size > MAX_TABLE_BYTES:
        message = f"the teacher outputs would take {size / 1024**3:.1f} GiB (limit {MAX_TABLE_BYTES / 1024**3:.0f} GiB)"
        if settings.cache_teacher is True:
            raise ConfigError(f"kd.cache_teacher=true: {message}; use kd.cache_teacher=auto or false")
        log.info("teacher outputs: online (%s)", message)
        return TeacherOutputsPlan("online")
    content = output_key_content(teacher, datamodule, taps)
    key = content_key(content)
    path = entry_path(cache_root(settings.cache_dir), OUTPUTS, settings.teacher_name, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(path):  # parallel sweep jobs compute the table once
        if path.exists():
            log.info("teacher outputs: cached %s", path)
            return TeacherOutputsPlan("cache", load_table(path, datamodule, taps), path)
        table = compute_table(teacher, datamodule, taps)
        payload = {"format": FORMAT, "teacher": settings.teacher_name, "tensors": table.tensors()}
        write_record(path, "outputs", settings.teacher_name, key, content)  # first: the weights' presence commits both
        atomic_write(path, lambda handle: torch.save(payload, handle))
        log.info("teacher outputs: computed once, cached at %s", path)
        return TeacherOutputsPlan("computed", table, path)
