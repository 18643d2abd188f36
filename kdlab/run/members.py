"""Extra networks a method trains beside the student (DML's peers, TAKD's assistants), named as a Hydra user names a
student: a file of ``conf/student/`` (``resnet8x4``) or, failing that, a timm model name (``resnet10t``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from kdlab.errors import ConfigError
from kdlab.models.factory import check_timm_name
from kdlab.paths import config_dir


def student_configs() -> list[str]:
    return sorted(p.stem for p in (Path(config_dir()) / "student").glob("*.yaml"))


def member_node(name: Any, key: str) -> DictConfig:
    """The ``student``-shaped node (``name``, ``model``) of ``conf/student/<name>.yaml``, else of a timm name."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key} entries must be student config names or timm model names, got {name!r}")
    path = Path(config_dir()) / "student" / f"{name}.yaml"
    if path.is_file():
        return OmegaConf.create(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
    try:
        check_timm_name(name, key)
    except ConfigError as error:
        raise ConfigError(f"{error} (nor a student config: {', '.join(student_configs())})") from None
    model = {"_target_": "timm.create_model", "_partial_": True, "model_name": name}
    return OmegaConf.create({"name": name, "model": model})


def member_nodes(names: Any, key: str) -> list[DictConfig]:
    """Every entry of the list ``names`` (``kd.peers``, ``kd.assistants``) as a student node; a bad one fails first."""
    if not isinstance(names, list | tuple | ListConfig) or not names:
        raise ConfigError(f"{key} must be a non-empty list of student config or timm model names, got {names!r}")
    return [member_node(name, key) for name in names]
