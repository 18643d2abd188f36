"""Continue a run from its own last checkpoint: find it, check it belongs to this run, and restore RNG state.

Lightning restores weights, optimiser, scheduler, loop counters and (through the resumable train loader) the
position inside the epoch; this module adds what Lightning leaves out: the RNG state and a signature that says
which run wrote the checkpoint, so a directory reused by another config fails with a clear message instead of
loading half a model. The checkpoint also stores the run's resolved config: a rerun whose settings would change
the result is refused, because resuming it would label the old student with settings it was not trained with.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from torch import Tensor, nn

from kdlab import result_keys
from kdlab.errors import ConfigError
from kdlab.training.checkpoint_io import load_training_checkpoint
from kdlab.training.faults import NonFiniteLossError, first_non_finite

log = logging.getLogger(__name__)

RESUME_MODES = ("auto", "true", "false")
SIGNATURE_FORMAT = "kdlab.run/1"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"


def resume_mode(value: Any) -> str:
    """``resume`` as one of auto | true | false (YAML gives booleans for true/false)."""
    mode = str(value).lower() if isinstance(value, bool | str) else repr(value)
    if mode not in RESUME_MODES:
        raise ConfigError(f"resume must be one of auto, true, false, got {value!r}")
    return mode


def find_checkpoint(out_dir: Path, mode: str) -> Path | None:
    """The checkpoint to continue from: ``<out_dir>/checkpoints/last.ckpt`` unless ``resume=false``."""
    last = out_dir / CHECKPOINT_DIR / LAST
    if mode == "false":
        return None
    if mode == "true" and not last.is_file():
        raise ConfigError(f"resume=true but {last} does not exist; pass resume=auto to start a new run there")
    return last if last.is_file() else None


def set_aside_old_checkpoints(out_dir: Path) -> Path | None:
    """``resume=false`` in a directory with checkpoints: move them aside (never delete) so this run starts clean."""
    old = out_dir / CHECKPOINT_DIR
    if not old.is_dir() or not any(old.iterdir()):
        return None
    aside = out_dir / f"{CHECKPOINT_DIR}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    old.rename(aside)
    log.info("resume=false: moved the old checkpoints to %s", aside)
    return aside


def run_signature(
    student: str, teacher: str, num_classes: int, in_chans: int, terms: Mapping[str, Any]
) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run: the architectures, the classes and the terms."""
    return {
        "format": SIGNATURE_FORMAT,
        "student": student,
        "teacher": teacher,
        "num_classes": int(num_classes),
        "in_chans": int(in_chans),
        "terms": sorted(terms),
    }


FIX = "pass resume=false to start over (the old checkpoints are moved aside), or choose another hydra.run.dir"


def check_checkpoint(
    path: Path, signature: Mapping[str, Any], state: Mapping[str, Tensor], config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Load ``path`` (``weights_only``), check it was written by this run's architecture and, given this run's
    resolved ``config``, by the same settings (:func:`check_same_settings`); return it."""
    checkpoint = load_training_checkpoint(path)
    found = checkpoint.get("kdlab")
    if not isinstance(found, dict) or found.get("format") != SIGNATURE_FORMAT:
        raise ConfigError(f"checkpoint {path} was not written by a kdlab run (no run signature); {FIX}")
    diff = [f"{k}={found.get(k)} (this run has {v})" for k, v in signature.items() if found.get(k) != v]
    if diff:
        raise ConfigError(f"checkpoint {path} belongs to another run: {', '.join(diff)}; {FIX}")
    saved = checkpoint["state_dict"]
    wrong = [k for k, v in state.items() if k not in saved or tuple(saved[k].shape) != tuple(v.shape)]
    wrong += [k for k in saved if k not in state]
    if wrong:
        raise ConfigError(f"checkpoint {path} does not fit this run's model (e.g. {wrong[0]}); {FIX}")
    if config is not None and "config" in found:
        check_same_settings(path, json.loads(found["config"]), config, epochs_started(checkpoint))
    return checkpoint


# Settings a resumed run may change: they decide how a run is watched, logged, stored or sped up, never a number in
# results.json. Every other key of the resolved config (data, augmentation, kd, optim, teacher, student, seeds,
# trainer, post) must be what the checkpoint's run had. A key here also covers the keys below it.
MAY_CHANGE = (
    "resume",  # how this start treats the checkpoint
    "logger",  # where metrics are sent
    "cache_dir",  # where the teacher is looked up; the cache key itself covers what made the teacher
    "paths",  # where data, cache and outputs live (the data itself is named by the data keys)
    "tags",  # W&B labels
    "callbacks.lr_monitor",  # the learning rate sent to the logger
    "checkpoint_every_n_steps",  # how often last.ckpt is written
    "compile",  # torch.compile: the same computation, fused (rounding in the last bits only)
    "channels_last",  # memory layout of the weights: the same values
    "data.num_workers",  # loader processes
    "data.download",  # whether a missing data set may be fetched; which data is used is in the other data keys
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "hydra",  # output dir, launcher, job name
)
# May differ while it still covers every epoch the checkpoint has started: a longer schedule continues training as
# a longer run from the start would have (when nothing derived from it changes: a cosine T_max that follows it does,
# and is refused by name), a shorter one stops after the current epoch. Fewer epochs than were started: refused.
MAX_EPOCHS = "trainer.max_epochs"
SHOWN_CHANGES = 8  # changed keys named in the refusal; the rest are counted
_UNSET = object()  # the value of a key one of the two configs does not have


def epochs_started(checkpoint: Mapping[str, Any]) -> int:
    """How many epochs the checkpoint's run had begun (the last one possibly unfinished), from Lightning's loops."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["ready"])
    except (KeyError, TypeError, ValueError):
        return int(checkpoint.get("epoch", 0)) + 1


def check_same_settings(path: Path, old: Mapping[str, Any], new: Mapping[str, Any], started: int) -> None:
    """Refuse to resume ``path`` (written by a run with config ``old`` that had begun ``started`` epochs) with
    config ``new`` when a setting that changes the result differs: the student would continue, or be tested and
    reported, under settings it was not trained with."""
    before, after = _flat(old), _flat(json.loads(json.dumps(new, default=str)))
    changed = [key for key in sorted(set(before) | set(after)) if before.get(key, _UNSET) != after.get(key, _UNSET)]
    changed = [key for key in changed if not _may_change(key, after.get(key, _UNSET), started)]
    if not changed:
        return
    shown = [f"{key} {_show(before.get(key, _UNSET))} -> {_show(after.get(key, _UNSET))}" for key in changed]
    more = f" and {len(shown) - SHOWN_CHANGES} more" if len(shown) > SHOWN_CHANGES else ""
    raise ConfigError(
        f"cannot resume {path}: it was trained with other settings ({', '.join(shown[:SHOWN_CHANGES])}{more}); "
        "resuming would report its student under settings it was not trained with. Pass hydra.run.dir=<new dir> "
        "to run these settings in a new directory, or resume=false to start this one over (the old checkpoints "
        "are moved aside)"
    )


def _may_change(key: str, new_value: Any, started: int) -> bool:
    if key == MAX_EPOCHS:
        return isinstance(new_value, int) and new_value >= started
    return any(key == allowed or key.startswith(f"{allowed}.") for allowed in MAY_CHANGE)


def _show(value: Any) -> str:
    text = "(unset)" if value is _UNSET else json.dumps(value, default=str)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``; lists and empty mappings are values of their own."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    return {k: v for key, child in node.items() for k, v in _flat(child, f"{prefix}.{key}" if prefix else key).items()}


def resumable_state(student: nn.Module, terms: Mapping[str, nn.Module]) -> dict[str, Tensor]:
    """The tensors a kdlab checkpoint holds, keyed as in ``DistillationModule``: student and terms, no teacher."""
    state = {f"student.{k}": v for k, v in student.state_dict().items()}
    state.update({f"terms.{k}": v for k, v in nn.ModuleDict(dict(terms)).state_dict().items()})
    return state


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class ResumeState(Callback):
    """Stamps each checkpoint with the run signature, saves/restores the RNG, and never saves non-finite weights.

    Lightning calls :meth:`state_dict` when it writes a checkpoint and :meth:`load_state_dict` when it resumes, so
    the random stream after a resume continues exactly where the killed run was (shuffling has its own seeded
    generator; this covers augmentation, dropout and sampling inside terms).
    """

    def __init__(self, signature: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        self.signature = dict(signature)
        self.config_json = json.dumps(config, sort_keys=True, default=str)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _set_rng_state(state_dict["rng"])

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        bad = first_non_finite(checkpoint["state_dict"])
        if bad is not None:  # raising here aborts the write, so the last good checkpoint stays on disk
            raise NonFiniteLossError(
                f"weights went non-finite ({bad}) by global step {trainer.global_step}; "
                "not saving this checkpoint. Lower optim.optimizer.lr or the kd.weights"
            )
        checkpoint["kdlab"] = {**self.signature, "config": self.config_json}


def resume_callbacks(
    dirpath: Path, signature: Mapping[str, Any], config: Mapping[str, Any], every_n_steps: int | None
) -> list[Callback]:
    """:class:`ResumeState`, plus ``last.ckpt`` every ``every_n_steps`` optimiser steps so a kill mid-epoch loses
    at most that many (the epoch-end ``last.ckpt`` comes from the run's best-model checkpoint callback)."""
    callbacks: list[Callback] = [ResumeState(signature, config)]
    if every_n_steps:
        callbacks.append(
            ModelCheckpoint(
                dirpath, every_n_train_steps=every_n_steps, save_top_k=0, save_last=True, enable_version_counter=False
            )
        )
    return callbacks


@dataclass(frozen=True)
class ResumePlan:
    """The checkpoint this run continues from (``None``: a fresh start) and the step it stood at."""

    checkpoint: Path | None = None
    global_step: int | None = None

    def results(self) -> dict[str, Any]:
        return {
            "resumed_from": str(self.checkpoint) if self.checkpoint else None,
            result_keys.RESUMED_AT_STEP: self.global_step,
        }


def plan_resume(
    out_dir: Path, mode: str, signature: Mapping[str, Any], state: Mapping[str, Tensor], config: Mapping[str, Any]
) -> ResumePlan:
    """Find and check the checkpoint to continue (``auto``/``true``), or set old ones aside (``false``)."""
    if mode == "false":
        set_aside_old_checkpoints(out_dir)
        return ResumePlan()
    for stale in (out_dir / CHECKPOINT_DIR).glob(".*.tmp"):  # half-written temp files of a killed run
        stale.unlink(missing_ok=True)
    checkpoint = find_checkpoint(out_dir, mode)
    if checkpoint is None:
        return ResumePlan()
    stamp = check_checkpoint(checkpoint, signature, state, config)
    step = int(stamp.get("global_step", 0))
    log.info("resuming from %s (epoch %d, global step %d)", checkpoint, int(stamp.get("epoch", 0)), step)
    return ResumePlan(checkpoint, step)
