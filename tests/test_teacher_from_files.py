"""A run's teacher from files other projects wrote: ``teacher.checkpoint`` in a foreign layout (loaded as it is) and
``teacher.pretrained_file`` (a state dict to start from, head fine-tuned), each through ``python -m kdlab``'s path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from conftest import FAST, WHOLE_TEACHER, compose_config
from reference import accuracy
from safetensors.torch import save_file

from kdlab.data.digits import digits_data
from kdlab.errors import ConfigError
from kdlab.models.files import load_model_file
from kdlab.run import run
from kdlab.run.validate import validate_config
from kdlab.teacher.cache import teacher_cache_key

SHORT = [*FAST, "trainer.max_epochs=1"]


def _digits():
    data = digits_data(image_size=32, batch_size=64)
    data.setup("fit")
    return data


def _model(num_classes: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model("test_resnet", num_classes=num_classes, in_chans=1)


def _test_accuracy(model: torch.nn.Module, data) -> float:
    batch = next(data.model_batches("test", batch_size=len(data.test)))
    with torch.no_grad():
        return accuracy(model.eval()(batch["image"]), batch["target"])


def test_a_repdistiller_layout_teacher_is_used_as_it_is(tmp_path: Path) -> None:
    data, teacher = _digits(), _model(10, seed=3)
    state = {f"module.{k}": v for k, v in teacher.state_dict().items()}  # mdistiller: DataParallel names
    torch.save({"epoch": 240, "model": state, "best_acc": torch.tensor(0.1)}, tmp_path / "ckpt_epoch_240.pth")
    checkpoint = f"teacher.checkpoint={tmp_path / 'ckpt_epoch_240.pth'}"
    cfg = compose_config(*SHORT, checkpoint, "trainer.limit_test_batches=null")  # every test image
    results = run(cfg, tmp_path / "run")
    assert results["teacher/source"] == "checkpoint"
    assert results["teacher/checkpoint_format"] == "repdistiller"
    assert results["teacher/test_acc"] == pytest.approx(_test_accuracy(teacher, data), abs=1e-6)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["teacher/checkpoint_format"] == "repdistiller"


def test_a_checkpoint_in_another_layout_than_named_is_refused(tmp_path: Path) -> None:
    torch.save(_model(10, seed=0).state_dict(), tmp_path / "bare.pth")  # a bare state dict, not RepDistiller's
    cfg = compose_config(*SHORT, f"teacher.checkpoint={tmp_path / 'bare.pth'}", "teacher.checkpoint_format=kdlab")
    with pytest.raises(ConfigError, match="not a kdlab model file"):
        run(cfg, tmp_path / "run")


def test_a_pretrained_file_starts_the_teacher_and_only_its_head_trains(tmp_path: Path) -> None:
    start = _model(7, seed=5)  # another class count: the head is replaced
    save_file(start.state_dict(), str(tmp_path / "start.safetensors"))
    overrides = [*SHORT, *WHOLE_TEACHER, f"teacher.pretrained_file={tmp_path / 'start.safetensors'}"]
    results = run(compose_config(*overrides), tmp_path / "run")
    assert results["teacher/source"] == "pretrained+finetuned"
    assert results["teacher/head_replaced"] is True
    assert results["teacher/pretrained_file"] == str(tmp_path / "start.safetensors")
    trained = load_model_file(results["teacher/path"])["state_dict"]
    frozen = [k for k, v in start.named_parameters() if not k.startswith("fc.")]
    assert frozen and all(torch.equal(trained[k], start.state_dict()[k]) for k in frozen)
    assert trained["fc.weight"].shape[0] == 10

    again = run(compose_config(*overrides), tmp_path / "again")  # from the cache: what the start was is kept
    assert again["teacher/source"] == "cache" and again["teacher/head_replaced"] is True


def test_the_pretrained_file_is_in_the_teacher_cache_key_by_content(tmp_path: Path) -> None:
    path = tmp_path / "start.pth"
    torch.save(_model(10, seed=0).state_dict(), path)
    plain = teacher_cache_key(compose_config(*SHORT))
    first = teacher_cache_key(compose_config(*SHORT, f"teacher.pretrained_file={path}"))
    torch.save(_model(10, seed=1).state_dict(), path)  # the same name, other weights
    second = teacher_cache_key(compose_config(*SHORT, f"teacher.pretrained_file={path}"))
    assert len({plain, first, second}) == 3
    assert teacher_cache_key(compose_config(*SHORT, "teacher.checkpoint_format=timm")) == plain  # loading only


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["teacher.pretrained_file=/nonexistent/start.pth"], r"pretrained_file /nonexistent/start.pth does not"),
        (["teacher.checkpoint_format=caffe"], r"teacher.checkpoint_format must be one of .*got 'caffe'"),
        (["teacher.pretrained=true", "teacher.pretrained_file={file}"], r"both give the teacher weights"),
        (["teacher.checkpoint={file}", "teacher.pretrained_file={file}"], r"both give the teacher weights"),
    ],
)
def test_bad_teacher_file_settings_are_one_line_errors(overrides: list[str], message: str, tmp_path: Path) -> None:
    file = tmp_path / "w.pth"
    torch.save({}, file)
    cfg = compose_config(*SHORT, *(o.format(file=file) for o in overrides))
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)
