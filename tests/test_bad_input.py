"""Bad input fails before any training, with one line naming the bad value and what is allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, REPO, compose_config

from kdlab.errors import ConfigError
from kdlab.pipeline import run

BAD_INPUTS = [
    (["student.name=resnet_does_not_exist"], r"unknown student model 'resnet_does_not_exist'"),
    (["teacher.name=mobilenetv3_smal_100"], r"unknown teacher model .*did you mean mobilenetv3_small_100"),
    (["kd.temperature=0"], r"kd.temperature must be > 0, got 0"),
    (["kd.temperature=-2"], r"kd.temperature must be > 0, got -2"),
    (["kd.alpha=1.5"], r"kd.alpha must be in \[0, 1\], got 1.5"),
    (["kd=feature", "kd.stages=[9]"], r"stage 9 does not exist in student model test_resnet: it has 5 stages"),
    (["kd=feature", "kd.stages=[]"], r"stages` must name at least one stage, got \[\]"),
    (["data=imagefolder", "data.root=/no/such/dir"], r"data.root /no/such/dir does not exist"),
    (["teacher.checkpoint=/no/such/teacher.pt"], r"teacher.checkpoint /no/such/teacher.pt does not exist"),
    (["trainer.max_epochs=0"], r"trainer.max_epochs must be an integer >= 1, got 0"),
    (["logger=wandb", "logger.mode=sometimes"], r"logger.mode must be one of auto, online, offline, disabled"),
    (["data.augment=mixup"], r"data.augment must be one of none, crop_flip, jitter, got 'mixup'"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=[" ".join(o) for o, _ in BAD_INPUTS])
def test_bad_input_raises_a_clear_config_error(overrides: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        run(compose_config(*FAST, *overrides), tmp_path)
    assert not (tmp_path / "results.json").exists()
    assert not any(tmp_path.rglob("*.ckpt"))


def test_teacher_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    first = run(compose_config(*FAST), tmp_path / "a")
    with pytest.raises(ConfigError, match=r"does not match this run: name=test_resnet \(this run needs resnet18\)"):
        run(compose_config(*FAST, "teacher=resnet18", f"teacher.checkpoint={first['teacher/path']}"), tmp_path / "b")


def test_corrupt_teacher_checkpoint_is_refused(tmp_path: Path) -> None:
    torn = tmp_path / "torn.pt"
    torn.write_bytes(b"PK\x03\x04 this is not a whole checkpoint")
    with pytest.raises(ConfigError, match=rf"checkpoint {torn} is corrupt or not a kdlab model file"):
        run(compose_config(*FAST, f"teacher.checkpoint={torn}"), tmp_path / "run")


def test_cli_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab", *FAST, "kd.alpha=2", f"hydra.run.dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "kdlab: error: kd.alpha must be in [0, 1], got 2"
    assert "Traceback" not in proc.stderr


def test_unknown_override_key_gives_hydras_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab", "kd.temprature=3"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0
    assert "Could not override 'kd.temprature'" in proc.stderr and "Traceback" not in proc.stderr


def test_pretrained_teacher_offline_gives_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match=r"could not load pretrained weights for teacher model resnet18: .*hub"):
        run(compose_config(*FAST, "teacher=resnet18", "teacher.pretrained=true"), tmp_path)
