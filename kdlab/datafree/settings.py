"""``kd.transfer`` and ``kd.generator``: checked once, before any training."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from kdlab.errors import ConfigError

TRANSFERS = ("data", "generator")  # data: the training split (every kd method); generator: data-free (kd=dafl)


def transfer_mode(kd: DictConfig) -> str:
    """``data`` unless ``kd.transfer`` names another transfer set; a bad name is one ConfigError line."""
    mode = kd.get("transfer") or "data"
    if mode not in TRANSFERS:
        raise ConfigError(f"kd.transfer must be one of {', '.join(TRANSFERS)}, got {mode!r}")
    return str(mode)


def _positive(node: DictConfig, key: str, kind: type = int) -> float:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise ConfigError(f"kd.generator.{key} must be a positive {kind.__name__}, got {value!r}")
    if not value > 0:
        raise ConfigError(f"kd.generator.{key} must be > 0, got {value}")
    return value


@dataclass(frozen=True)
class GeneratorSettings:
    """DAFL's generator phase and the student's synthetic epochs (kd.generator in conf/kd/dafl.yaml)."""

    latent_dim: int
    width: int
    steps: int
    batch_size: int
    lr: float
    weight_one_hot: float
    weight_activation: float
    weight_information_entropy: float
    student_steps_per_epoch: int
    log_every: int
    grid_images: int

    @classmethod
    def of(cls, kd: DictConfig) -> GeneratorSettings:
        node = kd.get("generator")
        if node is None:
            raise ConfigError("kd.transfer=generator needs a kd.generator block (use kd=dafl)")
        ints = ("latent_dim", "width", "steps", "batch_size", "student_steps_per_epoch", "log_every", "grid_images")
        values = {key: int(_positive(node, key)) for key in ints}
        values["lr"] = float(_positive(node, "lr", float))
        weights = node.get("weights") or {}
        for name in ("one_hot", "activation", "information_entropy"):
            weight = weights.get(name)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise ConfigError(f"kd.generator.weights.{name} must be a number >= 0, got {weight!r}")
            values[f"weight_{name}"] = float(weight)
        return cls(**values)


def check_data_free(cfg: DictConfig) -> None:
    """With ``kd.transfer=generator`` nothing may read the training split after the teacher: no teacher-output cache
    or replay (they run the teacher over it) and no random augmentation of it; the generator block must be sound."""
    if transfer_mode(cfg.kd) != "generator":
        return
    GeneratorSettings.of(cfg.kd)
    if cfg.kd.get("cache_teacher") not in (False, "false"):
        raise ConfigError(
            f"kd.cache_teacher={cfg.kd.get('cache_teacher')} caches the teacher's outputs on the training split, "
            "which kd.transfer=generator never reads: set kd.cache_teacher=false"
        )
    if cfg.teacher.get("name") == "none" and cfg.teacher.get("model") is None:
        raise ConfigError("kd.transfer=generator trains a generator against the teacher: teacher=none has none")
