"""Every file in every config group composes and instantiates: a new YAML is tested the moment it exists."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, compose_config
from hydra.utils import instantiate
from pytorch_lightning.strategies import DDPStrategy

from kdlab.models import build_model
from kdlab.run.validate import validate_config
from kdlab.training.trainer import make_trainer

GROUPS = ["data", "teacher", "student", "kd", "optim", "trainer", "logger", "paths", "callbacks"]
NEEDS_FILES = {"data": {"imagefolder", "imagenet", "cifar10", "cifar100", "mnist"}}  # instantiated in their own tests


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in options(g)])
def test_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_config(f"{group}={option}", *(["data.root=/tmp"] if option in ("imagefolder", "imagenet") else []))
    validate_config(cfg)
    assert cfg[group] is not None


@pytest.mark.parametrize("option", [o for o in options("data") if o not in NEEDS_FILES["data"]])
def test_data_instantiates(option: str) -> None:
    datamodule = instantiate(compose_config(f"data={option}").data)
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)  # model-ready
    assert batch["image"].shape[1:] == (datamodule.in_chans, datamodule.image_size, datamodule.image_size)
    assert batch["target"].max() < datamodule.num_classes


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g in ("teacher", "student") for o in options(g) if o != "none"]
)  # teacher=none has no model
def test_model_instantiates_and_runs(group: str, option: str) -> None:
    cfg = compose_config(f"{group}={option}")
    model = build_model(cfg[group].model, num_classes=10, in_chans=1, role=group).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("option", options("optim"))
def test_optim_instantiates(option: str) -> None:
    cfg = compose_config(f"optim={option}")
    optimizer = instantiate(cfg.optim.optimizer)([torch.nn.Parameter(torch.zeros(3))])
    if cfg.optim.get("scheduler"):
        instantiate(cfg.optim.scheduler)(optimizer)


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_instantiates_as_configured(option: str, tmp_path) -> None:
    """The main fit's Trainer (not a quiet helper phase, which always runs in one process) is what the file says."""
    cfg = compose_config(f"trainer={option}").trainer
    trainer = make_trainer(cfg, tmp_path)
    assert trainer.max_epochs == cfg.max_epochs
    assert trainer.limit_train_batches == cfg.get("limit_train_batches", 1.0)
    distributed = cfg.get("strategy", "auto") == "ddp"
    assert isinstance(trainer.strategy, DDPStrategy) == distributed
    assert trainer.num_devices == (cfg.devices if distributed else 1)
