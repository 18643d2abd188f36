"""The teacher-output cache: reused across runs, recomputed when teacher, data or transform change, refused with
random augmentation, and numerically the same training as running the teacher online."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import pytorch_lightning as pl
import timm
import torch
from conftest import CONF, FAST, compose_config
from hydra import compose, initialize_config_dir

from kdlab.errors import ConfigError
from kdlab.instantiate import build, build_optim
from kdlab.models import embedding_dim, stage_infos
from kdlab.run import run
from kdlab.run.single import teacher_test_metrics
from kdlab.teacher import output_cache as teacher_output_cache
from kdlab.teacher.cache import teacher_cache_key
from kdlab.teacher.output_cache import load_table, output_cache_key, teacher_outputs_plan
from kdlab.teacher.recipe import outputs_settings
from kdlab.terms import RKD, FitNetHints, PairSpec, SoftTargets
from kdlab.training.evaluator import evaluate_model
from kdlab.training.module import DistillationModule
from kdlab.training.speed import resolve_precision, to_channels_last
from kdlab.training.step_log import RunningLosses
from kdlab.training.teacher_outputs import TeacherTaps


def tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model("test_resnet", num_classes=10, in_chans=1)


def test_second_run_loads_the_teacher_outputs_from_disk(tmp_path: Path) -> None:
    first = run(compose_config(*FAST), tmp_path / "a")
    second = run(compose_config(*FAST, "kd.alpha=0.5"), tmp_path / "b")  # a sweep job with another alpha
    assert first["teacher/outputs_source"] == "computed" and second["teacher/outputs_source"] == "cache"
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["teacher/outputs_source"] == "cache"
    assert results["config"]["kd"]["cache_teacher"] == "auto"
    assert second["teacher/test_acc"] == first["teacher/test_acc"]
    assert len(list((tmp_path / "kdlab-cache" / "teacher_outputs").glob("*.pt"))) == 1


def test_key_changes_with_teacher_data_and_transform() -> None:
    taps = TeacherTaps()
    data = build(compose_config("data.batch_size=32").data)
    key = output_cache_key(tiny(), data, taps)
    assert output_cache_key(tiny(), build(compose_config("data.batch_size=64").data), taps) == key  # same outputs
    assert output_cache_key(tiny(seed=1), data, taps) != key  # other teacher weights
    assert output_cache_key(tiny(), build(compose_config("data.split_seed=1").data), taps) != key  # other data
    assert output_cache_key(tiny(), build(compose_config("data.image_size=16").data), taps) != key  # transform
    assert output_cache_key(tiny(), data, TeacherTaps((1,), True)) != key  # other taps


def test_changed_teacher_or_transform_is_recomputed(tmp_path: Path) -> None:
    cfg = compose_config(*FAST)
    data, teacher = build(cfg.data), tiny()
    first = teacher_outputs_plan(outputs_settings(cfg), teacher, data, TeacherTaps())
    assert (
        first.source == "computed"
        and teacher_outputs_plan(outputs_settings(cfg), teacher, data, TeacherTaps()).source == "cache"
    )
    other = teacher_outputs_plan(outputs_settings(cfg), tiny(seed=1), data, TeacherTaps())
    resized = compose_config(*FAST, "data.image_size=16")
    moved = teacher_outputs_plan(outputs_settings(resized), teacher, build(resized.data), TeacherTaps())
    assert other.source == moved.source == "computed"
    assert len({first.path, other.path, moved.path}) == 3
    assert not torch.equal(first.table.tensors()["logits_train"], other.table.tensors()["logits_train"])


@pytest.mark.parametrize("augment", ["crop_flip", "jitter"])
def test_cache_true_with_random_augmentation_is_refused(augment: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"kd\.cache_teacher=true.*data\.augment={augment}"):
        run(compose_config(*FAST, "kd.cache_teacher=true", f"data.augment={augment}"), tmp_path)
    assert not (tmp_path / "kdlab-cache").exists()  # refused before any teacher work


def test_auto_runs_feature_terms_online_with_random_augmentation(tmp_path: Path, caplog) -> None:
    """Feature maps are not replayed (logits are, see test_teacher_replay.py): the teacher runs online."""
    with caplog.at_level("INFO", logger="kdlab.teacher"):  # the replay planner says why it runs the teacher online
        metrics = run(compose_config(*FAST, "kd=fitnet", "data.augment=crop_flip"), tmp_path)
    assert metrics["teacher/outputs_source"] == "online"
    assert sum("teacher outputs: online" in r.getMessage() for r in caplog.records) == 1


def test_bad_mode_and_corrupt_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kd\.cache_teacher must be auto, true, false or replay, got 'sometimes'"):
        run(compose_config(*FAST, "kd.cache_teacher=sometimes"), tmp_path)
    cfg = compose_config(*FAST)
    data, teacher = build(cfg.data), tiny()
    path = teacher_outputs_plan(outputs_settings(cfg), teacher, data, TeacherTaps()).path
    path.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match=re.escape(f"teacher output cache {path} is corrupt")):
        load_table(path, data, TeacherTaps())


def test_tables_too_large_for_memory_run_online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teacher_output_cache, "MAX_TABLE_BYTES", 1000)
    data, teacher = build(compose_config(*FAST).data), tiny()
    assert (
        teacher_outputs_plan(outputs_settings(compose_config(*FAST)), teacher, data, TeacherTaps()).source == "online"
    )
    with pytest.raises(ConfigError, match="GiB"):
        teacher_outputs_plan(
            outputs_settings(compose_config(*FAST, "kd.cache_teacher=true")), teacher, data, TeacherTaps()
        )


class LossRecorder(pl.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def first_losses(cfg, data, teacher: torch.nn.Module, cached: bool, tmp_path: Path) -> list[float]:
    """Three training steps of a feature + relation + soft-target student, the teacher online or from the table."""
    student = tiny(seed=2)
    pair = PairSpec(
        "test_resnet", "test_resnet", tuple(stage_infos(student)), tuple(stage_infos(teacher)),
        embedding_dim(student), embedding_dim(teacher), 10, data.num_train,
    )  # fmt: skip
    terms = {"soft": SoftTargets(pair, 4.0), "hints": FitNetHints(pair, [1, -1]), "rkd": RKD(pair)}
    table = (
        teacher_outputs_plan(outputs_settings(cfg), teacher, data, TeacherTaps.of(terms.values())).table
        if cached
        else None
    )
    weights = {"kd": 0.5, "hint": 1.0, "rkd_distance": 1.0, "rkd_angle": 1.0}
    module = DistillationModule(
        student, 10, teacher=teacher, terms=terms, weights=weights, alpha=0.5, teacher_outputs=table,
        **build_optim(cfg.optim),
    )  # fmt: skip
    recorder = LossRecorder()
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(
        max_steps=3, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[recorder], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    epoch_mean = float(trainer.callback_metrics["train/loss_epoch"])  # logged once per epoch, see training.step_log
    assert epoch_mean == pytest.approx(sum(recorder.losses) / len(recorder.losses), rel=1e-5)
    return recorder.losses


def test_cached_and_online_runs_have_the_same_first_losses(tmp_path: Path) -> None:
    cfg = compose_config(*FAST, "data.batch_size=32")
    data, teacher = build(cfg.data), tiny(seed=1)
    online = first_losses(cfg, data, teacher, cached=False, tmp_path=tmp_path)
    cached = first_losses(cfg, data, teacher, cached=True, tmp_path=tmp_path)
    assert len(online) == len(cached) == 3
    assert cached == pytest.approx(online, abs=1e-5, rel=1e-5)
    assert len(set(online)) == 3  # the steps really differ: the comparison is not of constants


@pytest.mark.parametrize("kd", sorted(p.stem for p in (CONF / "kd").glob("*.yaml")))
def test_every_kd_method_has_a_valid_cache_switch(kd: str) -> None:
    cfg = compose_config(f"kd={kd}")
    assert cfg.kd.cache_teacher in ("auto", True, False)
    assert teacher_output_cache.cache_mode(outputs_settings(cfg)) == (
        cfg.kd.cache_teacher is not False
    )  # data.augment=none


def test_a_kd_files_own_cache_switch_wins_over_the_default(tmp_path: Path) -> None:
    """config.yaml holds defaults only: a kd method whose file sets ``cache_teacher`` gets its own value."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "kd" / "no_cache.yaml").write_text((CONF / "kd" / "response.yaml").read_text() + "cache_teacher: false\n")
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        assert compose("config", overrides=["kd=no_cache"]).kd.cache_teacher is False
        assert compose("config", overrides=["kd=response"]).kd.cache_teacher == "auto"


def test_teacher_key_ignores_the_students_epochs() -> None:
    key = teacher_cache_key(compose_config())
    assert teacher_cache_key(compose_config("trainer.max_epochs=7")) == key  # the teacher trains the same
    assert teacher_cache_key(compose_config("teacher.max_epochs=7")) != key


def test_speed_switches_keep_values_and_precision_auto_is_fp32_on_cpu() -> None:
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 1, 32, 32)
    expected = model.eval()(x)
    to_channels_last(model)
    assert model.conv1[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.allclose(model(x), expected, atol=1e-5)
    assert resolve_precision("auto", "cpu") == "32-true" and resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    assert compose_config().compile is False


def test_running_losses_give_batch_weighted_epoch_means() -> None:
    losses = RunningLosses()
    losses.add({"a": torch.tensor(1.0), "b": torch.tensor(2.0)}, batch_size=2)
    losses.add({"a": torch.tensor(4.0), "b": torch.tensor(0.0)}, batch_size=1)
    assert {k: float(v) for k, v in losses.step_values().items()} == {"a_step": 4.0, "b_step": 0.0}
    means = {k: float(v) for k, v in losses.pop_epoch_means().items()}
    assert means == pytest.approx({"a_epoch": 2.0, "b_epoch": 4 / 3})
    assert losses.pop_epoch_means() == {}


def test_teacher_test_metrics_from_the_table_equal_a_test_pass() -> None:
    """The cached test logits stand in for the teacher's test pass only when the whole test split is tested."""
    cfg = compose_config(*FAST, "trainer.limit_test_batches=1.0")
    data, teacher = build(cfg.data), tiny().eval()
    table = teacher_outputs_plan(outputs_settings(cfg), teacher, data, TeacherTaps()).table
    from_table = teacher_test_metrics(teacher, data, table, cfg.trainer)
    tested = evaluate_model(teacher, data, cfg.trainer)
    assert from_table["test/acc"] == pytest.approx(tested["test/acc"], abs=1e-6)
    assert from_table["test/acc_top5"] == pytest.approx(tested["test/acc_top5"], abs=1e-6)
    one_batch = compose_config(*FAST).trainer  # limit_test_batches=1: one batch, so the table is not used
    assert teacher_test_metrics(teacher, data, table, one_batch) == evaluate_model(teacher, data, one_batch)
