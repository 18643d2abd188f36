"""What the teacher package needs from a run's config, read once where the config is composed.

Below the run layer nothing reads the Hydra config: :func:`teacher_recipe` turns it into a :class:`TeacherRecipe`
(one model's source and training recipe, its cache key content, where its W&B run goes) or an
:class:`EnsembleRecipe` (one recipe per member), :func:`outputs_settings` into the :class:`OutputsSettings` of the
teacher-output cache and replay, and the functions in :mod:`kdlab.teacher` take those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from kdlab.teacher.cache import teacher_key_content, teacher_phase, teacher_seed
from kdlab.teacher.members import member_configs, member_labels, member_run_config
from kdlab.teacher.output_cache import OutputsSettings
from kdlab.teacher.replay import DEFAULT_MAX_GB
from kdlab.tracking import flat_config


@dataclass(frozen=True)
class TeacherRecipe:
    """One teacher: where its weights come from, how it trains when they must be made, and how it is logged."""

    name: str
    checkpoint: Path | None  # a file to load (kdlab's format or a foreign one), never trained
    checkpoint_format: str  # auto | kdlab | repdistiller | mdistiller | timm | torchvision
    pretrained: bool  # timm hub weights, head fine-tuned
    pretrained_file: Path | None  # a local state dict (timm/torchvision/safetensors), head fine-tuned
    max_epochs: int
    augment: str | None  # the teacher's own data.augment while it trains (Hinton et al.'s jitter)
    bias: Any  # a deliberately skewed training set (kdlab.data.bias), or None
    seed: int
    optim: DictConfig  # the teacher phase's optimiser + scheduler node, for kdlab.instantiate.build_optim
    trainer: DictConfig  # the teacher phase's Lightning Trainer node
    key_content: dict[str, Any]  # what shapes the trained weights (the cache key hashes it); {} with a checkpoint
    cache_dir: str | None
    logger: DictConfig | None  # the run's logger node: a W&B logger gives the teacher's training its own run
    tags: tuple[str, ...]
    logged_config: dict[str, Any]  # the flat config the teacher's own W&B run records

    @property
    def fine_tunes_head(self) -> bool:
        """Starting from ImageNet-style weights, only the classifier trains."""
        return self.pretrained or self.pretrained_file is not None


@dataclass(frozen=True)
class EnsembleRecipe:
    """``teacher=ensemble``: one recipe per member (each trained and cached as a single teacher), in order."""

    name: str
    labels: tuple[str, ...]
    members: tuple[TeacherRecipe, ...]
    test_trainer: DictConfig  # the run's trainer node: each member is tested as the run tests its models


def teacher_recipe(cfg: DictConfig) -> TeacherRecipe | EnsembleRecipe:
    """The recipe of the run's teacher: an ensemble's members as ``teacher=<member>`` would compose each."""
    if cfg.teacher.get("members") is not None:
        nodes = member_configs(cfg.teacher.members, cfg.teacher.get("max_epochs"))
        members = tuple(single_recipe(member_run_config(cfg, node)) for node in nodes)
        return EnsembleRecipe(str(cfg.teacher.name), tuple(member_labels(nodes)), members, cfg.trainer)
    return single_recipe(cfg)


def single_recipe(cfg: DictConfig) -> TeacherRecipe:
    """The recipe of a single teacher from a run config whose ``teacher`` node is one model."""
    teacher = cfg.teacher
    phase = teacher_phase(cfg)
    seed = teacher_seed(cfg)
    plain_phase = OmegaConf.to_container(phase, resolve=True)
    logged = {k: plain_phase[k] for k in ("teacher", "data", "optim", "trainer") if k in plain_phase}
    return TeacherRecipe(
        name=str(teacher.name),
        checkpoint=_path(teacher.get("checkpoint")),
        checkpoint_format=str(teacher.get("checkpoint_format") or "auto"),
        pretrained=bool(teacher.get("pretrained")),
        pretrained_file=_path(teacher.get("pretrained_file")),
        max_epochs=int(teacher.max_epochs),
        augment=teacher.get("augment"),
        bias=teacher.get("bias"),
        seed=seed,
        optim=phase.optim,
        trainer=phase.trainer,
        key_content={} if teacher.get("checkpoint") else teacher_key_content(cfg),  # a loaded teacher is never cached
        cache_dir=cfg.get("cache_dir"),
        logger=cfg.get("logger"),
        tags=tuple(str(t) for t in cfg.get("tags") or ()),
        logged_config={**flat_config(logged), "teacher_seed": seed},
    )


def outputs_settings(cfg: DictConfig) -> OutputsSettings:
    """How the run's teacher outputs may be cached or replayed (``kd.cache_teacher``, ``kd.replay``) and what that
    depends on; the values are checked where they are used (:func:`cache_mode`, ``ReplaySettings.of``)."""
    replay = cfg.kd.get("replay") or {}
    return OutputsSettings(
        teacher_name=str(cfg.teacher.get("name")),
        cache_teacher=cfg.kd.get("cache_teacher", "auto"),
        augment=cfg.data.get("augment", "none"),
        replay_views=cfg.trainer.max_epochs if replay.get("views") is None else replay.views,
        replay_topk=replay.get("topk", 0),
        replay_max_gb=replay.get("max_gb", DEFAULT_MAX_GB),
        devices=cfg.trainer.get("devices", 1),
        strategy=str(cfg.trainer.get("strategy", "")),
        cache_dir=cfg.get("cache_dir"),
    )


def _path(value: Any) -> Path | None:
    return Path(str(value)).expanduser() if value else None
