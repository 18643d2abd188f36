"""Bad input fails before any training, with one line naming the bad value and what is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, REPO, compose_config

from kdlab.errors import ConfigError
from kdlab.run import run

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
    (["kd.temperature=hot"], r"kd.temperature must be a number > 0, got 'hot'"),
    (["kd.weights.kd=-1"], r"kd.weights.kd must be >= 0, got -1"),
    (["data.batch_size=0"], r"data.batch_size must be an integer >= 1, got 0"),
    (["data.batch_size=12.5"], r"data.batch_size must be an integer >= 1, got 12.5"),
    (["data.image_size=4"], r"data.image_size must be an integer >= 8 \(models downsample by up to 8\), got 4"),
    (["data.val_fraction=0"], r"data.val_fraction must be a number in \(0, 1\), got 0"),
    (["data.val_fraction=0.5", "data.test_fraction=0.5"], r"data.val_fraction \+ data.test_fraction must be < 1"),
    (["data=mnist", "data.root=/no/such/mnist", "data.download=false"], r"data.root /no/such/mnist does not exist"),
    (["data=imagefolder"], r"data.root is not set: pass data.root=/path/to/the/data"),
    (["optim.optimizer.lr=0"], r"optim.optimizer.lr must be > 0, got 0"),
    (["optim.optimizer.lr=fast"], r"optim.optimizer.lr must be a number > 0, got 'fast'"),
    (["optim.optimizer.weight_decay=-0.1"], r"optim.optimizer.weight_decay must be >= 0, got -0.1"),
    (["optim=sgd", "optim.optimizer.momentum=1.5"], r"optim.optimizer.momentum must be in \[0, 1\], got 1.5"),
    (["optim.warmup_epochs=-1"], r"optim.warmup_epochs must be an integer in \[0, trainer.max_epochs=\d+\), got -1"),
    (["trainer.max_epochs=3", "optim.warmup_epochs=3"], r"optim.warmup_epochs must be .*got 3"),
    (["trainer.gradient_clip_val=0"], r"trainer.gradient_clip_val must be > 0, got 0"),
    (["trainer.max_epochs=2.5"], r"trainer.max_epochs must be an integer >= 1, got 2.5"),
    (["teacher.max_epochs=0"], r"teacher.max_epochs must be an integer >= 1, got 0"),
    (["seed=-1"], r"seed must be an integer in \[0, 2\*\*32 - 1\], got -1"),
    (["resume=maybe"], r"resume must be one of auto, true, false, got 'maybe'"),
    (["checkpoint_every_n_steps=0"], r"checkpoint_every_n_steps must be an integer >= 1, got 0"),
    # NaN passes every comparison and inf every lower bound: refused by name
    (["kd.temperature=nan"], r"kd.temperature must be a finite number > 0, got nan"),
    (["kd.temperature=inf"], r"kd.temperature must be a finite number > 0, got inf"),
    (["kd.temperature=-inf"], r"kd.temperature must be a finite number > 0, got -inf"),
    (["kd.alpha=nan"], r"kd.alpha must be a finite number in \[0, 1\], got nan"),
    (["kd.weights.kd=inf"], r"kd.weights.kd must be a finite number >= 0, got inf"),
    (["kd=feature", "kd.weights.hint=nan"], r"kd.weights.hint must be a finite number >= 0, got nan"),
    (["optim.optimizer.lr=nan"], r"optim.optimizer.lr must be a finite number > 0, got nan"),
    (["optim.optimizer.lr=inf"], r"optim.optimizer.lr must be a finite number > 0, got inf"),
    (["optim.optimizer.weight_decay=inf"], r"optim.optimizer.weight_decay must be a finite number >= 0, got inf"),
    (["optim=sgd", "optim.optimizer.momentum=nan"], r"optim.optimizer.momentum must be a finite number in \[0, 1\]"),
    (["data.val_fraction=nan"], r"data.val_fraction must be a number in \(0, 1\), got nan"),
    (["data.test_fraction=inf"], r"data.test_fraction must be a number in \(0, 1\), got inf"),
    (["trainer.max_epochs=inf"], r"trainer.max_epochs must be an integer >= 1, got inf"),
    (["teacher.max_epochs=nan"], r"teacher.max_epochs must be an integer >= 1, got nan"),
    (["data.batch_size=inf"], r"data.batch_size must be an integer >= 1, got inf"),
    (["post.prune_finetune_lr_factor=inf"], r"post.prune_finetune_lr_factor must be a finite number > 0, got inf"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=[" ".join(o) for o, _ in BAD_INPUTS])
def test_bad_input_raises_a_clear_config_error(
    overrides: list[str], message: str, tmp_path: Path, _isolated_cache: Path
) -> None:
    """Fails before any training: not a file is written, in the run dir or the teacher cache (a trained teacher is
    a .pt there), nor anywhere else under tmp_path."""
    run_dir = tmp_path / "run"
    assert _isolated_cache.is_relative_to(tmp_path)
    with pytest.raises(ConfigError, match=message):
        run(compose_config(*FAST, *overrides), run_dir)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_nan_and_inf_from_yaml_are_refused() -> None:
    """YAML's .nan and .inf (a config file, an experiment preset) arrive as floats, as nan/inf overrides do."""
    from omegaconf import OmegaConf

    from kdlab.run.validate import validate_config

    for text, message in [
        ("kd: {temperature: .nan}", r"kd.temperature must be a finite number > 0, got nan"),
        ("optim: {optimizer: {lr: .inf}}", r"optim.optimizer.lr must be a finite number > 0, got inf"),
    ]:
        with pytest.raises(ConfigError, match=message):
            validate_config(OmegaConf.merge(compose_config(*FAST), OmegaConf.create(text)))


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


def test_teacher_checkpoint_with_another_class_count_is_refused(tmp_path: Path) -> None:
    import timm

    from kdlab.models.files import save_model

    other = save_model(
        tmp_path / "t.pt", timm.create_model("test_resnet", num_classes=7, in_chans=1), "test_resnet", 7, 1
    )
    with pytest.raises(ConfigError, match=r"does not match this run: num_classes=7 \(this run needs 10\)"):
        run(compose_config(*FAST, f"teacher.checkpoint={other}"), tmp_path / "run")


def test_bad_value_through_the_cli_writes_no_run_artifacts(tmp_path: Path) -> None:
    """Exit 2 and one line; no checkpoint, student, W&B run or cached teacher (the failure record aside)."""
    cache, out = tmp_path / "cache", tmp_path / "run"
    env = {**os.environ, "KDLAB_CACHE": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab", *FAST, "logger=wandb", "data.batch_size=0", f"hydra.run.dir={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "kdlab: error: data.batch_size must be an integer >= 1, got 0"
    written = {p.relative_to(out).parts[0] for p in out.rglob("*")}
    assert written <= {".hydra", "kdlab.log", "results.json"}, written
    assert json.loads((out / "results.json").read_text())["status"] == "failed"
    assert not cache.exists()


def test_a_bad_rerun_never_replaces_completed_results(tmp_path: Path) -> None:
    import json

    run(compose_config(*FAST), tmp_path)
    before = (tmp_path / "results.json").read_text()
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab", *FAST, "kd.alpha=3", f"hydra.run.dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (tmp_path / "results.json").read_text() == before
    assert json.loads((tmp_path / "results.failed.json").read_text())["status"] == "failed"
