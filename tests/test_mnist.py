"""MNIST from a local root, the MLP as a non-timm ``_target_`` model, and the Hinton et al. 2015 presets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import CONF, FAST, REPO, WHOLE_TEACHER, compose_config

from kdlab.data import datamodule as datamodule_module
from kdlab.data.augment import apply_augment
from kdlab.errors import ConfigError
from kdlab.instantiate import build, build_optim
from kdlab.measure.macs import count_macs
from kdlab.models import build_model, stage_infos
from kdlab.models.files import load_into, save_model
from kdlab.models.mlp import MLP
from kdlab.run import run
from kdlab.run.validate import validate_config
from kdlab.teacher import single as teacher_module
from kdlab.teacher.cache import teacher_cache_key, teacher_phase


def _mnist_root() -> Path | None:
    """``$KDLAB_MNIST_ROOT``, else the first ``shared/data/mnist`` beside the repo or one of its parents."""
    candidates = [os.environ.get("KDLAB_MNIST_ROOT")] + [str(p / "shared/data/mnist") for p in REPO.parents]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "MNIST" / "raw").is_dir():
            return Path(candidate)
    return None


MNIST_ROOT = _mnist_root()
needs_mnist = pytest.mark.skipif(
    MNIST_ROOT is None, reason="no local MNIST copy (set KDLAB_MNIST_ROOT or keep ../shared/data/mnist beside the repo)"
)
MLP_PAIR = ["teacher=mlp1200", "student=mlp800"]
PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@needs_mnist
def test_mnist_loads_offline_from_an_existing_root() -> None:
    cfg = compose_config("data=mnist", f"data.root={MNIST_ROOT}", "data.download=false", "data.train_subset=3000")
    data = build(cfg.data)
    assert (len(data.train) + len(data.val), len(data.test)) == (3000, 10000)
    assert data.train.images.shape[1:] == (1, 28, 28) and (data.num_classes, data.in_chans) == (10, 1)
    assert set(data.train.targets.tolist()) == set(range(10))
    assert data.train.images.dtype == torch.uint8  # a quarter of float32's memory; standardised per batch
    inputs = torch.cat([batch["image"] for batch in data.model_batches("train")])
    assert abs(float(inputs.mean())) < 1e-3 and abs(float(inputs.std()) - 1) < 1e-3
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (cfg.data.batch_size, 1, 28, 28)


def test_missing_mnist_root_offline_is_a_clear_config_error(tmp_path: Path) -> None:
    cfg = compose_config("data=mnist", f"data.root={tmp_path / 'nowhere'}", "data.download=false")
    with pytest.raises(ConfigError, match=r"mnist not found under .*nowhere.*data.root=<folder that holds MNIST"):
        build(cfg.data)


@pytest.mark.parametrize(
    ("override", "message"),
    [("data.val_fraction=0", r"data.val_fraction must be in \(0, 1\)"), ("data.train_subset=0", r"train_subset")],
)
def test_bad_mnist_split_is_a_clear_config_error(override: str, message: str) -> None:
    root = MNIST_ROOT or Path("/nonexistent")
    cfg = compose_config("data=mnist", f"data.root={root}", "data.download=false", override)
    with pytest.raises(ConfigError, match=message):
        build(cfg.data)


def test_mlp_has_the_timm_head_api_and_no_feature_stages() -> None:
    model = MLP(num_classes=10, in_chans=1, image_size=28, hidden=[30, 20]).eval()
    x = torch.randn(4, 1, 28, 28)
    features = model.forward_features(x)
    assert features.shape == (4, 20) and model.get_classifier().in_features == 20
    assert torch.equal(model.forward_head(features), model(x))
    assert torch.equal(model.get_classifier()(model.forward_head(features, pre_logits=True)), model(x))
    assert sum(p.numel() for p in model.parameters()) == 784 * 30 + 30 + 30 * 20 + 20 + 20 * 10 + 10
    assert count_macs(model, (1, 28, 28)) == 784 * 30 + 30 * 20 + 20 * 10
    assert stage_infos(model) == []


def test_mlp_max_norm_bounds_every_hidden_unit() -> None:
    model = MLP(hidden=[16, 16], max_norm=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(10)
    model.train()(torch.randn(2, 1, 28, 28))
    hidden = [m.weight.detach() for m in model.features if isinstance(m, torch.nn.Linear)]
    assert all(float(w.norm(dim=1).max()) <= 0.5 + 1e-5 for w in hidden)
    assert float(model.head.weight.norm(dim=1).max()) > 0.5  # the classifier is not constrained


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"hidden": []}, r"MLP hidden must be a non-empty list"), ({"dropout": 1.0}, r"MLP dropout must be in \[0, 1\)")],
)
def test_mlp_bad_arguments_are_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MLP(**kwargs)


def test_jitter_keeps_a_standardised_background_background() -> None:
    images = torch.full((8, 1, 28, 28), -0.42)
    images[:, :, 10:18, 10:18] = 2.0
    shifted = apply_augment("jitter", images)
    assert float(shifted.min()) == pytest.approx(-0.42) and not (shifted == 0).any()
    assert ((shifted == 2.0).sum(dim=(1, 2, 3)) == 64).all()  # translated, not cut: the stroke is 2 px from the edge


@pytest.mark.parametrize("kd", ["response", "relation"])
def test_mlp_target_model_distils_end_to_end(kd: str, tmp_path: Path) -> None:
    metrics = run(compose_config(*FAST, *MLP_PAIR, f"kd={kd}"), tmp_path)
    assert metrics["teacher/source"] == "trained (partial: not cached)"
    assert (metrics["teacher/name"], metrics["student/name"]) == ("mlp1200", "mlp800")
    assert metrics["student/params"] == 32 * 32 * 800 + 800 + 800 * 800 + 800 + 800 * 10 + 10  # digits: 32×32
    assert 0.0 <= metrics["student/test_acc"] <= 1.0
    cfg = compose_config(*FAST, *MLP_PAIR)
    student = build_model(cfg.student.model, num_classes=10, in_chans=1, role="student")
    load_into(student, tmp_path / "student.pt", name="mlp800", num_classes=10, in_chans=1)


def test_cached_and_checkpointed_mlp_teacher_give_the_same_teacher(tmp_path: Path) -> None:
    first = run(compose_config(*FAST, *WHOLE_TEACHER, *MLP_PAIR), tmp_path / "a")
    cached = run(compose_config(*FAST, *WHOLE_TEACHER, *MLP_PAIR), tmp_path / "b")
    checkpoint = f"teacher.checkpoint={first['teacher/path']}"
    loaded = run(compose_config(*FAST, *WHOLE_TEACHER, *MLP_PAIR, checkpoint), tmp_path / "c")
    assert (cached["teacher/source"], loaded["teacher/source"]) == ("cache", "checkpoint")
    assert first["teacher/test_acc"] == cached["teacher/test_acc"] == loaded["teacher/test_acc"]


def test_student_epochs_do_not_retrain_the_teacher(tmp_path: Path) -> None:
    first = run(compose_config(*FAST, *WHOLE_TEACHER, *MLP_PAIR), tmp_path / "a")
    longer = run(compose_config(*FAST, *WHOLE_TEACHER, *MLP_PAIR, "trainer.max_epochs=2"), tmp_path / "b")
    assert (first["teacher/source"], longer["teacher/source"]) == ("trained", "cache")


def test_teacher_optim_is_the_teachers_recipe_and_part_of_its_cache_key() -> None:
    preset = ["experiment=hinton_mnist_distilled"]
    cfg = compose_config(*preset, "optim.optimizer.lr=0.02")  # the students' lr, apart from the teacher's 0.1
    phase = teacher_phase(cfg)
    assert (phase.optim.optimizer.lr, cfg.optim.optimizer.lr) == (0.1, 0.02)
    assert (phase.optim.warmup_epochs, cfg.optim.warmup_epochs) == (0, 5)  # the students' warm-up is theirs alone
    assert phase.optim.scheduler.T_max == cfg.teacher.max_epochs
    key = teacher_cache_key(cfg)
    assert teacher_cache_key(compose_config(*preset, "optim.optimizer.lr=0.5", "trainer.max_epochs=3")) == key
    assert teacher_cache_key(compose_config(*preset, "teacher.optim.optimizer.lr=0.05")) != key
    assert teacher_cache_key(compose_config(*preset, "teacher.max_epochs=5")) != key


def test_teacher_trains_with_teacher_optim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[float] = []

    def recording(optim):
        built.append(float(optim.optimizer.lr))
        return build_optim(optim)

    monkeypatch.setattr(teacher_module, "build_optim", recording)
    overrides = ["+optim@teacher.optim=sgd_cosine", "teacher.optim.optimizer.lr=0.07", "optim.optimizer.lr=0.001"]
    metrics = run(compose_config(*FAST, *MLP_PAIR, *overrides), tmp_path)
    assert metrics["teacher/source"] == "trained (partial: not cached)" and built == [0.07]


def test_teacher_augment_applies_to_teacher_training_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []

    def recording(name: str, images: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
        used.append(name)
        return apply_augment(name, images, keys)

    monkeypatch.setattr(datamodule_module, "apply_augment", recording)
    run(compose_config(*FAST, "teacher=mlp1200", "student=mlp800", "data.augment=none"), tmp_path)
    assert used == ["jitter", "jitter"]  # teacher: 2 jittered batches (trainer=fast); student: none


def test_bad_teacher_augment_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"teacher.augment must be one of none, crop_flip, jitter, got 'warp'"):
        run(compose_config(*FAST, "teacher=mlp1200", "teacher.augment=warp"), tmp_path)


def test_feature_kd_with_an_mlp_student_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"student model mlp800 exposes no feature stages .* use a logit method"):
        run(compose_config(*FAST, "student=mlp800", "kd=feature"), tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_alpha_without_distillation_terms_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kd.alpha=0.9 only scales the cross-entropy .* set kd.alpha=0"):
        run(compose_config(*FAST, "kd=none", "kd.alpha=0.9"), tmp_path)


def test_saved_mlp_round_trips_through_a_kdlab_model_file(tmp_path: Path) -> None:
    model = MLP(hidden=[12], dropout=0.5)
    path = save_model(tmp_path / "m.pt", model, name="mlp", num_classes=10, in_chans=1)
    again = MLP(hidden=[12], dropout=0.5)
    load_into(again, path, name="mlp", num_classes=10, in_chans=1)
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(model.eval()(x), again.eval()(x))


@pytest.mark.parametrize("preset", PRESETS)
def test_experiment_presets_compose_and_validate(preset: str) -> None:
    root = ["data.root=/tmp"] if preset.startswith("imagenet") else []  # ImageNet has no default location
    validate_config(compose_config(f"experiment={preset}", *root))


def test_hinton_presets_pin_the_papers_setup() -> None:
    distilled = compose_config("experiment=hinton_mnist_distilled")
    alone = compose_config("experiment=hinton_mnist_student")
    for cfg in (distilled, alone):
        assert (cfg.teacher.name, cfg.student.name, cfg.teacher.augment) == ("mlp1200", "mlp800", "jitter")
        assert list(cfg.teacher.model.hidden) == [1200, 1200] and list(cfg.student.model.hidden) == [800, 800]
        assert cfg.teacher.model.dropout == 0.5 and cfg.student.model.dropout == 0.0
        assert cfg.optim.optimizer.weight_decay == 0.0 and (cfg.data.name, cfg.data.augment) == ("mnist", "none")
    assert distilled.kd.temperature == 20.0 and list(distilled.kd.terms) == ["soft_targets"]
    assert alone.kd.alpha == 0.0 and not alone.kd.terms
    assert distilled.optim == alone.optim and distilled.optim.warmup_epochs > 0  # one recipe for both students
    overridden = compose_config("experiment=hinton_mnist_distilled", "kd.alpha=0.99", "trainer.max_epochs=2")
    assert (overridden.kd.alpha, overridden.kd.weights.kd, overridden.trainer.max_epochs) == (0.99, 0.99, 2)
