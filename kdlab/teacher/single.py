"""One teacher model's weights: from a checkpoint, from the cache, or by training it (then caching it).

Only a teacher trained on whole epochs is shared through the cache. One whose trainer limits batches or steps
(``trainer=fast``) is kept in the run's directory (``<out_dir>/teacher.pt``) and never reused by another run, as is a
trained teacher the cache cannot take (disk full). A teacher at chance level is reported loudly.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from pytorch_lightning.utilities import rank_zero_only
from torch import nn

from kdlab.data.bias import biased_split, check_bias
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.errors import ConfigError
from kdlab.instantiate import Node, build, build_optim
from kdlab.models.files import load_into, save_model
from kdlab.models.foreign import detect_format, load_foreign, read_checkpoint
from kdlab.models.pretrained_file import load_pretrained_file
from kdlab.result_keys import TEACHER_CHECKPOINT_FORMAT
from kdlab.teacher.cache import (
    TEACHERS,
    cache_root,
    content_key,
    entry_lock,
    entry_path,
    read_record,
    record_path,
    safe_slug,
    write_record,
)
from kdlab.teacher.output_cache import device_of, evaluating
from kdlab.teacher.recipe import TeacherRecipe
from kdlab.teacher.source import TeacherSource
from kdlab.tracking import (
    define_summaries,
    finish_wandb,
    is_wandb,
    log_config,
    log_output_model,
    outside_sweep,
    run_tags,
    teacher_artifact_name,
)
from kdlab.training.module import DistillationModule
from kdlab.training.teacher_outputs import run_teacher
from kdlab.training.trainer import make_trainer

log = logging.getLogger(__name__)

CHANCE_FACTOR = 1.5  # validation accuracy at or below 1.5 × chance (1 / classes) marks a teacher that learnt nothing
PARTIAL = "partial: not cached"
# The run directory of the outermost prepare_teacher call: ensemble members, prepared inside it, keep theirs there.
_RUN_DIR: ContextVar[Path | None] = ContextVar("kdlab_teacher_run_dir", default=None)
Save = Callable[[dict[str, Any]], tuple[Path, str | None]]  # (where the weights went, a note when not the cache)


@contextmanager
def run_directory(run_dir: Path | None) -> Iterator[None]:
    """Teachers prepared inside (ensemble members too) keep an uncached file in ``run_dir``."""
    token = _RUN_DIR.set(Path(run_dir)) if run_dir is not None else None
    try:
        yield
    finally:
        if token is not None:
            _RUN_DIR.reset(token)


def prepare_single(
    model: nn.Module, recipe: TeacherRecipe, datamodule: InMemoryDataModule, run_dir: Path | None = None
) -> TeacherSource:
    """Fill ``model`` with trained weights; train and cache them when no checkpoint or cache entry exists.

    ``run_dir`` (the run's directory) holds a teacher that is not cached, as ``teacher.pt``; without it, the enclosing
    :func:`run_directory`'s, else Hydra's output directory, else a new temporary directory. With a W&B logger and a
    ``run_dir``, the training is a W&B run of its own (``job_type=teacher``) that logs the file as a ``model``
    artifact.
    """
    with run_directory(run_dir):
        if recipe.bias:
            check_bias(recipe.bias, datamodule.num_classes)  # before a cache lookup or any training
        if recipe.checkpoint:
            return _from_checkpoint(model, recipe, datamodule)
        key = content_key(recipe.key_content)
        why = partial_training(recipe.trainer)
        if why:
            return _partial_teacher(model, recipe, datamodule, key, why, run_dir)
        return _cached_teacher(model, recipe, datamodule, key, run_dir)


def _from_checkpoint(model: nn.Module, recipe: TeacherRecipe, datamodule: InMemoryDataModule) -> TeacherSource:
    """A file kdlab wrote (architecture, classes and data checked) or another project's layout, mapped onto the
    model; the validation accuracy is measured and logged at once, so a bad mapping shows before any training."""
    path, fmt = recipe.checkpoint, recipe.checkpoint_format
    if fmt == "auto":
        try:
            fmt = detect_format(read_checkpoint(path))
        except ConfigError:  # unreadable or unrecognised: kdlab's own loader names what is wrong with the file
            fmt = "kdlab"
    if fmt == "kdlab":  # kdlab's own file: architecture, class count and data are checked by name
        load_into(model, path, **_shape(recipe, datamodule), data=datamodule.name)
    else:
        load_foreign(model, path, fmt)
    report: dict[str, Any] = {TEACHER_CHECKPOINT_FORMAT: fmt, "teacher/val_acc": val_accuracy(model, datamodule)}
    accuracy = report["teacher/val_acc"]
    shown = "no validation split" if accuracy is None else f"validation accuracy {100 * accuracy:.2f}%"
    log.info("teacher %s loaded from %s (%s layout): %s", recipe.name, path, fmt, shown)
    return TeacherSource("checkpoint", Path(path), report)


def partial_training(trainer: Node) -> str | None:
    """Why a trainer stops short of whole epochs over all the data (the settings, for the log), or None."""
    settings = OmegaConf.to_container(trainer, resolve=True)
    limits = [k for k in ("limit_train_batches", "limit_val_batches") if not _whole(settings.get(k))]
    limits += [k for k in ("fast_dev_run", "overfit_batches") if settings.get(k)]
    if settings.get("max_steps") not in (None, -1):
        limits.append("max_steps")
    if settings.get("max_time") is not None:  # a wall-clock cut: partial, and not repeatable
        limits.append("max_time")
    return ", ".join(f"trainer.{k}={settings[k]}" for k in limits) or None


def val_accuracy(model: nn.Module, datamodule: InMemoryDataModule) -> float | None:
    """Top-1 accuracy on the validation split, in eval mode; None when there is no validation data."""
    if len(datamodule.val) == 0:
        return None
    correct = 0
    with evaluating(model):
        device = device_of(model)
        for batch in datamodule.model_batches("val", batch_size=256):
            logits = run_teacher(model, batch["image"].to(device)).logits
            correct += int((logits.argmax(dim=1).cpu() == batch["target"]).sum())
    return correct / len(datamodule.val)


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


def _cached_teacher(
    model: nn.Module, recipe: TeacherRecipe, datamodule: InMemoryDataModule, key: str, run_dir: Path | None
) -> TeacherSource:
    """From the shared cache, or trained and written there; kept in the run directory if the cache write fails."""
    path = entry_path(cache_root(recipe.cache_dir), TEACHERS, recipe.name, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(path):  # parallel sweep jobs train the teacher once
        if path.exists():
            load_into(model, path, **_shape(recipe, datamodule), data=datamodule.name)
            return TeacherSource("cache", path, _recorded_accuracy(path))

        def save(report: dict[str, Any]) -> tuple[Path, str | None]:
            try:
                _save(path, model, recipe, datamodule, key, report)
                return path, None
            except OSError as exc:  # a full disk, a quota, a read-only share: the trained teacher must not be lost
                record_path(path).unlink(missing_ok=True)
                kept = _run_file(recipe.name, key, own_file=run_dir is not None)
                _save(kept, model, recipe, datamodule, key, report)
                log.warning("could not write teacher %s to the cache (%s); kept it at %s", recipe.name, exc, kept)
                return kept, f"not cached: {exc.strerror or type(exc).__name__}"

        kind, where, note, report = _train_and_save(model, recipe, datamodule, path.parent, f"cached at {path}", save)
        return TeacherSource(kind if note is None else f"{kind} ({note})", where, report)


def _partial_teacher(
    model: nn.Module, recipe: TeacherRecipe, datamodule: InMemoryDataModule, key: str, why: str, run_dir: Path | None
) -> TeacherSource:
    """Trained for this run only, kept in its directory (a rerun of the same run reuses it), never in the cache.
    Locked like a cache entry, so DDP ranks, which all prepare the teacher, train it once and share it."""
    path = _run_file(recipe.name, key, own_file=run_dir is not None)
    path.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(path):
        if path.exists() and (read_record(path) or {}).get("key") == key:
            load_into(model, path, **_shape(recipe, datamodule), data=datamodule.name)
            log.info("teacher %s: %s, trained earlier in this run directory with the same key", recipe.name, path)
            return TeacherSource(f"run directory ({PARTIAL})", path, _recorded_accuracy(path))
        log.info(
            "teacher %s trains on part of the data (%s): kept at %s, not in the shared cache, so no full run reuses it",
            recipe.name, why, path,
        )  # fmt: skip

        def save(report: dict[str, Any]) -> tuple[Path, str | None]:
            _save(path, model, recipe, datamodule, key, report)
            return path, None

        kind, where, _, report = _train_and_save(model, recipe, datamodule, path.parent, f"kept at {path}", save)
        return TeacherSource(f"{kind} ({PARTIAL})", where, report)


def _train_and_save(
    model: nn.Module, recipe: TeacherRecipe, datamodule: InMemoryDataModule, root: Path, where: str, save: Save
) -> tuple[str, Path, str | None, dict[str, Any]]:
    """Train, measure, save and, with a W&B logger, log the file; the teacher's W&B run ends here."""
    logger = teacher_logger(recipe, _RUN_DIR.get(), datamodule.name)
    with outside_sweep() if logger else nullcontext():
        try:
            if logger:
                _start_teacher_run(logger, recipe)
            kind, report = _fit(model, recipe, datamodule, root, where, logger)
            report["teacher/val_acc"] = val_accuracy(model, datamodule)
            saved, note = save(report)
            if logger:
                _log_teacher_file(logger, recipe, saved, datamodule.name)
        except BaseException:
            if logger:
                finish_wandb(exit_code=1)
            raise
        if logger:
            finish_wandb()
    return kind, saved, note, report


def _run_file(name: str, key: str, own_file: bool) -> Path:
    """``<run dir>/teacher.pt`` for the run's own teacher, ``<run dir>/teacher-<slug>-<key>.pt`` for a member."""
    run_dir = _RUN_DIR.get()
    if run_dir is None and HydraConfig.initialized():
        run_dir = Path(HydraConfig.get().runtime.output_dir)
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="kdlab-teacher-"))
    return run_dir / ("teacher.pt" if own_file else f"teacher-{safe_slug(name)}-{key}.pt")


def _save(path: Path, model, recipe: TeacherRecipe, datamodule, key: str, report: dict) -> None:
    """The key record first, then the weights: an entry whose weights exist is complete."""
    start = {k: v for k, v in report.items() if k != "teacher/val_acc"}  # what a pretrained file did, for reruns
    write_record(path, "teacher", recipe.name, key, recipe.key_content, val_acc=report["teacher/val_acc"], start=start)
    save_model(path, model, **_shape(recipe, datamodule), data=datamodule.name, key=key)


def _recorded_accuracy(path: Path) -> dict[str, Any]:
    """The validation accuracy measured when the teacher was trained, and what its pretrained start was."""
    record = read_record(path) or {}
    accuracy = record.get("val_acc")
    return {**(record.get("start") or {}), **({} if accuracy is None else {"teacher/val_acc": float(accuracy)})}


def _shape(recipe: TeacherRecipe, datamodule: InMemoryDataModule) -> dict[str, Any]:
    return {"name": recipe.name, "num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}


def _whole(limit: Any) -> bool:
    """Lightning's ``limit_*_batches``: None or the float 1.0 is every batch (an int counts batches)."""
    return limit is None or (isinstance(limit, float) and limit == 1.0)


def _freeze_all_but_head(model: nn.Module) -> None:
    model.requires_grad_(False)
    model.get_classifier().requires_grad_(True)


def _fit(
    model: nn.Module, recipe: TeacherRecipe, datamodule: InMemoryDataModule, root: Path, where: str, logger: Any
) -> tuple[str, dict[str, Any]]:
    """Train the teacher (only its head when it starts from pretrained weights); returns the source kind and what
    loading a pretrained file did."""
    kind, report = "trained", {}
    if recipe.pretrained_file is not None:  # before the head is frozen: the file may bring its own head
        report = load_pretrained_file(model, recipe.pretrained_file)
    if recipe.fine_tunes_head:
        _freeze_all_but_head(model)
        kind = "pretrained+finetuned"
    log.info("training teacher %s for %d epochs (%s)", recipe.name, recipe.max_epochs, where)
    _train(model, recipe, datamodule, root, logger)
    model.requires_grad_(True)
    return kind, report


def _train(
    model: nn.Module, recipe: TeacherRecipe, datamodule: InMemoryDataModule, root: Path, logger: Any = False
) -> None:
    """Supervised training of the teacher with its phase's optimiser and trainer (``teacher.optim`` over the run's
    ``optim``, ``teacher.max_epochs`` epochs).

    A teacher with its own recipe: ``teacher.augment`` replaces ``data.augment`` while the teacher trains (Hinton et
    al. 2015, §3: a jittered teacher, a plain student), and ``teacher.bias`` skews its training set on purpose.
    """
    module = DistillationModule(model, num_classes=datamodule.num_classes, **build_optim(recipe.optim))
    trainer = make_trainer(recipe.trainer, root, quiet=True, logger=logger)
    data_augment, data_train = datamodule.augment, datamodule.train
    datamodule.augment = recipe.augment or data_augment  # e.g. Hinton et al.'s jitter, teacher only
    if recipe.bias:  # a deliberately skewed teacher (kdlab.data.bias); the student's data stays as is
        datamodule.train = biased_split(data_train, check_bias(recipe.bias, datamodule.num_classes))
    try:
        trainer.fit(module, datamodule=datamodule)
    finally:
        datamodule.augment, datamodule.train = data_augment, data_train


def _log_teacher_file(logger: Any, recipe: TeacherRecipe, path: Path, data_name: str) -> None:
    metadata = {"teacher": recipe.name, "data": data_name, "seed": recipe.seed}
    log_output_model(logger.experiment, teacher_artifact_name(recipe.name, data_name), path, metadata)


def teacher_logger(recipe: TeacherRecipe, run_dir: Path | None, data_name: str) -> Any:
    """A W&B logger for the teacher's own training run, when the run logs to W&B (rank 0 only), else False."""
    if run_dir is None or not is_wandb(recipe.logger) or rank_zero_only.rank != 0:
        return False
    name = f"teacher-{recipe.name}-{data_name}-s{recipe.seed}"
    tags = run_tags(list(recipe.tags), ["teacher"])
    save_dir = Path(run_dir) / "teacher"
    save_dir.mkdir(parents=True, exist_ok=True)
    return build(recipe.logger, save_dir=str(save_dir), name=name, job_type="teacher", tags=tags)


def _start_teacher_run(logger: Any, recipe: TeacherRecipe) -> None:
    """``wandb.init`` (on first access to ``experiment``), then the config that made the teacher, flat."""
    log_config(logger.experiment, recipe.logged_config)
    define_summaries(logger.experiment)
