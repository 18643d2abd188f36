"""Teachers saved the way other projects save them load onto kdlab's models with identical logits."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import timm
import torch
import torchvision

from kdlab.errors import ConfigError
from kdlab.models.files import save_model
from kdlab.models.foreign import load_foreign

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def trained_a_little(model: torch.nn.Module) -> tuple[torch.nn.Module, dict]:
    """One SGD step and changed BN statistics, so the saved weights and buffers differ from a fresh init."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()
    model(X).logsumexp(dim=1).mean().backward()
    optimizer.step()
    return model.eval(), optimizer.state_dict()


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        out = model.eval()(X)
    assert torch.isfinite(out).all()
    return out


def cifar(name: str = "cifar_resnet8x4", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(name, num_classes=100)


def repdistiller_layout(model, optimizer_state, prefix: str = "") -> dict:
    """RepDistiller's train_teacher.py / mdistiller's save_checkpoint: the state dict under "model" with extras."""
    state = {prefix + k: v for k, v in model.state_dict().items()}
    return {"epoch": 240, "model": state, "best_acc": torch.tensor(73.3), "optimizer": optimizer_state}


@pytest.mark.parametrize(("fmt", "prefix"), [("repdistiller", ""), ("mdistiller", "module."), ("auto", "")])
def test_repdistiller_and_mdistiller_teachers_round_trip(fmt: str, prefix: str, tmp_path: Path):
    source, optimizer_state = trained_a_little(cifar())
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save(repdistiller_layout(source, optimizer_state, prefix), path)
    target = cifar(seed=1)
    assert not torch.equal(logits(target), logits(source))
    assert load_foreign(target, path, fmt) == ("repdistiller" if fmt == "auto" else fmt)
    assert torch.equal(logits(target), logits(source))


def test_torchvision_resnet_loads_into_timm_resnet(tmp_path: Path):
    torch.manual_seed(0)
    source, _ = trained_a_little(torchvision.models.resnet18(num_classes=10))
    path = tmp_path / "resnet18-torchvision.pth"
    torch.save(source.state_dict(), path)
    target = timm.create_model("resnet18", num_classes=10)
    assert load_foreign(target, path) == "torchvision"
    assert torch.equal(logits(target), logits(source))


@pytest.mark.parametrize("wrapped", [False, True])
def test_timm_checkpoints_round_trip(wrapped: bool, tmp_path: Path):
    torch.manual_seed(0)
    source, _ = trained_a_little(timm.create_model("test_resnet", num_classes=10))
    path = tmp_path / "model.pth"
    state = source.state_dict()
    torch.save({"epoch": 3, "arch": "test_resnet", "state_dict": state, "metric": 0.5} if wrapped else state, path)
    target = timm.create_model("test_resnet", num_classes=10)
    assert load_foreign(target, path, "timm") == "timm"
    assert torch.equal(logits(target), logits(source))


def test_kdlab_files_load_too(tmp_path: Path):
    source = cifar()
    path = save_model(tmp_path / "teacher.pt", source, "cifar_resnet8x4", 100, 3)
    target = cifar(seed=1)
    assert load_foreign(target, path) == "kdlab" and torch.equal(logits(target), logits(source))


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path: Path):
    source, optimizer_state = trained_a_little(cifar())
    path = tmp_path / "ckpt.pth"
    torch.save(repdistiller_layout(source, optimizer_state), path)
    with pytest.raises(ConfigError, match=r"ckpt.pth \(repdistiller\) does not fit"):
        load_foreign(cifar("cifar_resnet32x4"), path)
    torch.save(repdistiller_layout(cifar("cifar_vgg8"), {}), path)  # other module names
    with pytest.raises(ConfigError, match=r"does not fit CifarResNet: missing \['conv1.weight'.*unexpected"):
        load_foreign(cifar(), path)


def test_bad_format_name_and_pickled_objects_are_refused(tmp_path: Path):
    path = tmp_path / "ckpt.pth"
    torch.save({"model": cifar().state_dict()}, path)
    with pytest.raises(ConfigError, match=r"checkpoint_format must be one of .*got 'repdistler'"):
        load_foreign(cifar(), path, "repdistler")
    torch.save({"state_dict": cifar().state_dict(), "args": argparse.Namespace(model="x")}, path)
    with pytest.raises(ConfigError, match="cannot be read with weights_only=True"):
        load_foreign(cifar(), path)
