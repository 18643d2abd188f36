"""``load_pretrained_file``: timm / torchvision / safetensors state dicts, wrappers unwrapped, the head replaced when
the class count differs, anything else that does not fit refused with the file named."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

from kdlab.errors import ConfigError
from kdlab.models.pretrained_file import load_pretrained_file


def _same_backbone(a: torch.nn.Module, b: torch.nn.Module, head: str) -> bool:
    theirs = b.state_dict()
    return all(torch.equal(v, theirs[k]) for k, v in a.state_dict().items() if not k.startswith(head))


def test_a_wrapped_timm_checkpoint_loads_and_a_head_of_another_class_count_is_replaced(tmp_path: Path) -> None:
    source = timm.create_model("test_resnet", num_classes=10)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "teacher.pth")
    target = timm.create_model("test_resnet", num_classes=3)
    fresh_head = target.get_classifier().weight.detach().clone()
    done = load_pretrained_file(target, tmp_path / "teacher.pth")
    assert done["teacher/head_replaced"] is True
    assert _same_backbone(target, source, "fc.")
    assert torch.equal(target.get_classifier().weight, fresh_head)  # kept as initialised, 3 classes


def test_safetensors_with_the_same_class_count_loads_everything(tmp_path: Path) -> None:
    source = timm.create_model("test_resnet", num_classes=4)
    save_file(source.state_dict(), str(tmp_path / "teacher.safetensors"))
    target = timm.create_model("test_resnet", num_classes=4)
    assert load_pretrained_file(target, tmp_path / "teacher.safetensors")["teacher/head_replaced"] is False
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_torchvision_resnet_weights_load_into_timms_resnet(tmp_path: Path) -> None:
    source = torchvision.models.resnet18(num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "resnet18-torchvision.pth")
    target = timm.create_model("resnet18", num_classes=5)
    load_pretrained_file(target, tmp_path / "resnet18-torchvision.pth")
    assert torch.equal(target.conv1.weight, source.conv1.weight)
    assert torch.equal(target.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)


def test_weights_of_another_architecture_or_a_bad_file_are_refused(tmp_path: Path) -> None:
    torch.save(timm.create_model("test_resnet").state_dict(), tmp_path / "other.pth")
    with pytest.raises(ConfigError, match=r"teacher.pretrained_file .*other.pth does not fit .*(missing|unexpected)"):
        load_pretrained_file(timm.create_model("test_vit"), tmp_path / "other.pth")
    (tmp_path / "torn.pth").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(ConfigError, match=r"torn.pth is not a readable state dict"):
        load_pretrained_file(timm.create_model("test_resnet"), tmp_path / "torn.pth")
    with pytest.raises(ConfigError, match=r"nowhere.pth does not exist"):
        load_pretrained_file(timm.create_model("test_resnet"), tmp_path / "nowhere.pth")
