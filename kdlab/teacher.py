"""Get a trained, frozen teacher: from a checkpoint, from the cache, or by training it (then caching it).

Only a teacher trained on whole epochs is shared through the cache. One whose trainer limits batches or steps
(``trainer=fast``) is kept in the run's directory (``<out_dir>/teacher.pt``) and never reused by another run, as is a
trained teacher the cache cannot take (disk full). A teacher at chance level is reported loudly.
"""

from __future__ import annotations

import logging
import tempfile
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch import nn

from kdlab.cache import (
    TEACHERS,
    cache_root,
    content_key,
    entry_lock,
    entry_path,
    read_record,
    record_path,
    safe_slug,
    teacher_key_content,
    teacher_phase,
    write_record,
)
from kdlab.checkpoint import load_into, save_model
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.instantiate import build_optim
from kdlab.models.ensemble import TeacherEnsemble
from kdlab.module import DistillationModule
from kdlab.teacher_output_cache import device_of, evaluating
from kdlab.teacher_outputs import run_teacher
from kdlab.training import make_trainer

log = logging.getLogger(__name__)

CHANCE_FACTOR = 1.5  # validation accuracy at or below 1.5 × chance (1 / classes) marks a teacher that learnt nothing
PARTIAL = "partial: not cached"
# The run directory of the outermost prepare_teacher call: ensemble members, prepared inside it, keep theirs there.
_RUN_DIR: ContextVar[Path | None] = ContextVar("kdlab_teacher_run_dir", default=None)


@dataclass
class TeacherSource:
    """Where the teacher's weights came from, for the results and the summary."""

    kind: str  # checkpoint | cache | trained | pretrained+finetuned | ensemble, "(partial: not cached)" and the like
    path: Path
    report: dict[str, Any] = field(default_factory=dict)  # extra results (val accuracy, an ensemble's members)


def prepare_teacher(
    model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, out_dir: Path | None = None
) -> TeacherSource:
    """Fill ``model`` with trained weights; train and cache them when no checkpoint or cache entry exists.

    ``out_dir`` (the run's directory) holds a teacher that is not cached; without it, the enclosing call's, else
    Hydra's output directory, else a new temporary directory.
    """
    token = _RUN_DIR.set(Path(out_dir)) if out_dir is not None else None
    try:
        source = _obtain(model, cfg, datamodule, own_file=out_dir is not None)
    finally:
        if token is not None:
            _RUN_DIR.reset(token)
    flag_chance_level(model, str(cfg.teacher.name), datamodule, source)
    return source


def partial_training(trainer: DictConfig) -> str | None:
    """Why a trainer stops short of whole epochs over all the data (the settings, for the log), or None."""
    settings = OmegaConf.to_container(trainer, resolve=True)
    limits = [k for k in ("limit_train_batches", "limit_val_batches") if not _whole(settings.get(k))]
    limits += [k for k in ("fast_dev_run", "overfit_batches") if settings.get(k)]
    if settings.get("max_steps") not in (None, -1):
        limits.append("max_steps")
    if settings.get("max_time") is not None:  # a wall-clock cut: partial, and not repeatable
        limits.append("max_time")
    return ", ".join(f"trainer.{k}={settings[k]}" for k in limits) or None


def val_accuracy(model: nn.Module, datamodule: InMemoryDataModule, batch_size: int = 256) -> float | None:
    """Top-1 accuracy on the validation split, in eval mode; None when there is no validation data."""
    images, targets = datamodule.val.images, datamodule.val.targets
    if len(targets) == 0:
        return None
    correct = 0
    with evaluating(model):
        device = device_of(model)
        for i in range(0, len(targets), batch_size):
            logits = run_teacher(model, images[i : i + batch_size].to(device)).logits
            correct += int((logits.argmax(dim=1).cpu() == targets[i : i + batch_size]).sum())
    return correct / len(targets)


def flag_chance_level(model: nn.Module, name: str, datamodule: InMemoryDataModule, source: TeacherSource) -> None:
    """Put ``teacher/val_acc`` and ``teacher/at_chance`` in the results; warn when the teacher is at chance level.

    The accuracy is measured once, when the teacher is trained, and kept in its cache record.
    """
    accuracy = source.report.get("teacher/val_acc")
    if accuracy is None:
        accuracy = val_accuracy(model, datamodule)
    chance = 1.0 / datamodule.num_classes
    at_chance = None if accuracy is None else accuracy <= CHANCE_FACTOR * chance
    source.report.update({"teacher/val_acc": accuracy, "teacher/at_chance": at_chance})
    if at_chance:
        log.warning(
            "teacher %s is at chance level: validation accuracy %.1f%% <= %.1f x chance (%.1f%%, %d classes); "
            "its soft targets carry no knowledge (source: %s, %s)",
            name, 100 * accuracy, CHANCE_FACTOR, 100 * chance, datamodule.num_classes, source.kind, source.path,
        )  # fmt: skip


def _obtain(model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, own_file: bool) -> TeacherSource:
    if isinstance(model, TeacherEnsemble):  # each member is prepared, and cached, as a single teacher
        from kdlab.ensemble import prepare_ensemble

        return prepare_ensemble(model, cfg, datamodule)
    if cfg.teacher.checkpoint:
        load_into(model, cfg.teacher.checkpoint, **_shape(cfg, datamodule), data=datamodule.name)
        return TeacherSource("checkpoint", Path(cfg.teacher.checkpoint))
    content = teacher_key_content(cfg)
    key = content_key(content)
    why = partial_training(teacher_phase(cfg).trainer)
    if why:
        return _partial_teacher(model, cfg, datamodule, content, key, why, own_file)
    return _cached_teacher(model, cfg, datamodule, content, key, own_file)


def _cached_teacher(model, cfg, datamodule, content: dict, key: str, own_file: bool) -> TeacherSource:
    """From the shared cache, or trained and written there; kept in the run directory if the cache write fails."""
    path = entry_path(cache_root(cfg.get("cache_dir")), TEACHERS, cfg.teacher.name, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(path):  # parallel sweep jobs train the teacher once
        if path.exists():
            load_into(model, path, **_shape(cfg, datamodule), data=datamodule.name)
            return TeacherSource("cache", path, _recorded_accuracy(path))
        kind = _fit(model, cfg, datamodule, path.parent, f"cached at {path}")
        report = {"teacher/val_acc": val_accuracy(model, datamodule)}
        try:
            _save(path, model, cfg, datamodule, content, key, report)
        except OSError as exc:  # a full disk, a quota, a read-only share: the trained teacher must not be lost
            record_path(path).unlink(missing_ok=True)
            kept = _run_file(cfg, key, own_file)
            _save(kept, model, cfg, datamodule, content, key, report)
            log.warning("could not write teacher %s to the cache (%s); kept it at %s", cfg.teacher.name, exc, kept)
            return TeacherSource(f"{kind} (not cached: {exc.strerror or type(exc).__name__})", kept, report)
        return TeacherSource(kind, path, report)


def _partial_teacher(model, cfg, datamodule, content: dict, key: str, why: str, own_file: bool) -> TeacherSource:
    """Trained for this run only, kept in its directory (a rerun of the same run reuses it), never in the cache.
    Locked like a cache entry, so DDP ranks, which all prepare the teacher, train it once and share it."""
    path = _run_file(cfg, key, own_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(path):
        if path.exists() and (read_record(path) or {}).get("key") == key:
            load_into(model, path, **_shape(cfg, datamodule), data=datamodule.name)
            log.info("teacher %s: %s, trained earlier in this run directory with the same key", cfg.teacher.name, path)
            return TeacherSource(f"run directory ({PARTIAL})", path, _recorded_accuracy(path))
        log.info(
            "teacher %s trains on part of the data (%s): kept at %s, not in the shared cache, so no full run reuses it",
            cfg.teacher.name, why, path,
        )  # fmt: skip
        kind = _fit(model, cfg, datamodule, path.parent, f"kept at {path}")
        report = {"teacher/val_acc": val_accuracy(model, datamodule)}
        _save(path, model, cfg, datamodule, content, key, report)
        return TeacherSource(f"{kind} ({PARTIAL})", path, report)


def _run_file(cfg: DictConfig, key: str, own_file: bool) -> Path:
    """``<run dir>/teacher.pt`` for the run's own teacher, ``<run dir>/teacher-<slug>-<key>.pt`` for a member."""
    run_dir = _RUN_DIR.get()
    if run_dir is None and HydraConfig.initialized():
        run_dir = Path(HydraConfig.get().runtime.output_dir)
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="kdlab-teacher-"))
    return run_dir / ("teacher.pt" if own_file else f"teacher-{safe_slug(cfg.teacher.name)}-{key}.pt")


def _save(path: Path, model, cfg, datamodule, content: dict, key: str, report: dict) -> None:
    """The key record first, then the weights: an entry whose weights exist is complete."""
    write_record(path, "teacher", cfg.teacher.name, key, content, val_acc=report["teacher/val_acc"])
    save_model(path, model, **_shape(cfg, datamodule), data=datamodule.name, key=key)


def _recorded_accuracy(path: Path) -> dict[str, Any]:
    accuracy = (read_record(path) or {}).get("val_acc")
    return {} if accuracy is None else {"teacher/val_acc": float(accuracy)}


def _shape(cfg: DictConfig, datamodule: InMemoryDataModule) -> dict[str, Any]:
    return {"name": cfg.teacher.name, "num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}


def _whole(limit: Any) -> bool:
    """Lightning's ``limit_*_batches``: None or the float 1.0 is every batch (an int counts batches)."""
    return limit is None or (isinstance(limit, float) and limit == 1.0)


def _freeze_all_but_head(model: nn.Module) -> None:
    model.requires_grad_(False)
    model.get_classifier().requires_grad_(True)


def _fit(model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, root: Path, where: str) -> str:
    """Train the teacher (only its head when pretrained); returns the source kind."""
    kind = "trained"
    if cfg.teacher.pretrained:
        _freeze_all_but_head(model)
        kind = "pretrained+finetuned"
    log.info("training teacher %s for %d epochs (%s)", cfg.teacher.name, cfg.teacher.max_epochs, where)
    _train(model, cfg, datamodule, root)
    model.requires_grad_(True)
    return kind


def _train(model: nn.Module, cfg: DictConfig, datamodule: InMemoryDataModule, root: Path) -> None:
    """Supervised training of the teacher with the run's optimiser (``teacher.optim`` overrides it), for
    ``teacher.max_epochs`` epochs.

    Optional, for a teacher with its own recipe: ``teacher.optim`` replaces ``optim``, and ``teacher.augment``
    replaces ``data.augment`` while the teacher trains (Hinton et al. 2015, §3: a jittered teacher, a plain student).
    """
    phase = teacher_phase(cfg)
    module = DistillationModule(
        model,
        num_classes=datamodule.num_classes,
        **build_optim(phase.optim),
    )
    trainer = make_trainer(phase.trainer, root, quiet=True)
    data_augment = datamodule.augment
    datamodule.augment = cfg.teacher.get("augment") or data_augment  # e.g. Hinton et al.'s jitter, teacher only
    try:
        trainer.fit(module, datamodule=datamodule)
    finally:
        datamodule.augment = data_augment
