"""Data-free distillation (kd=dafl, kd.transfer=generator): DAFL's losses against hand-computed values, a run on
tiny data whose student never reads a real training image, the generator's losses logged by name, the image grid,
a frozen teacher through the generator phase, LeNet-5's sizes and bad input."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config
from PIL import Image

from kdlab import result_keys
from kdlab.datafree import GeneratorSettings, SealedTrainSplit, TrainingSplitRead, train_generator
from kdlab.datafree.synthesis import weighted_total
from kdlab.errors import ConfigError
from kdlab.losses.data_free import dafl_activation_loss, dafl_information_entropy_loss, dafl_one_hot_loss
from kdlab.measure.params import count_parameters
from kdlab.models.generator import DAFLGenerator
from kdlab.models.lenet import LeNet5
from kdlab.run import run
from kdlab.run.validate import validate_config

TINY_GENERATOR = [
    "kd=dafl",
    "kd.generator.steps=3",
    "kd.generator.batch_size=8",
    "kd.generator.width=8",
    "kd.generator.student_steps_per_epoch=2",
    "kd.generator.log_every=1",
    "kd.generator.grid_images=2",
]
LOSS_KEYS = (
    result_keys.GENERATOR_LOSS,
    result_keys.GENERATOR_LOSS_ONE_HOT,
    result_keys.GENERATOR_LOSS_ACTIVATION,
    result_keys.GENERATOR_LOSS_INFORMATION_ENTROPY,
)


# --- DAFL's loss functions, against values worked out by hand ------------------------------------------------------


def test_one_hot_loss_is_cross_entropy_to_the_teachers_own_argmax() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])  # argmax 0 and 1
    by_hand = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))) / 2  # 0.2200948
    assert dafl_one_hot_loss(logits).item() == pytest.approx(by_hand, abs=1e-6)
    assert by_hand == pytest.approx(0.2200948, abs=1e-6)


def test_activation_loss_is_minus_the_mean_absolute_feature() -> None:
    assert dafl_activation_loss(torch.tensor([[1.0, -2.0], [3.0, 0.0]])).item() == pytest.approx(-1.5)


def test_information_entropy_loss_is_minus_the_log10_entropy_of_the_mean_prediction() -> None:
    # two samples whose mean prediction is (0.75, 0.25): softmax(log 3, 0) = (3/4, 1/4), twice
    logits = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    by_hand = 0.75 * math.log10(0.75) + 0.25 * math.log10(0.25)  # -0.2442190
    assert dafl_information_entropy_loss(logits).item() == pytest.approx(by_hand, abs=1e-6)
    assert by_hand == pytest.approx(-0.2442190, abs=1e-6)
    # one-hot predictions of two different classes average to uniform: the minimum, -log10(2)
    balanced = torch.tensor([[30.0, 0.0], [0.0, 30.0]])
    assert dafl_information_entropy_loss(balanced).item() == pytest.approx(-math.log10(2.0), abs=1e-6)


def test_the_generator_loss_weighs_the_three_terms_with_the_papers_mnist_weights() -> None:
    settings = GeneratorSettings.of(compose_config("kd=dafl").kd)
    assert (settings.weight_one_hot, settings.weight_activation, settings.weight_information_entropy) == (1, 0.1, 5)
    losses = {"one_hot": torch.tensor(0.5), "activation": torch.tensor(-2.0), "information_entropy": torch.tensor(-0.9)}
    assert weighted_total(losses, settings).item() == pytest.approx(0.5 + 0.1 * -2.0 + 5 * -0.9)


# --- the run: the student never reads a training image -------------------------------------------------------------


class Tripwire:
    """Put where the real training split was once the teacher is trained: any read is recorded and raises."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def __len__(self) -> int:
        self.reads.append("len")
        raise AssertionError("the real training split's length was read after the teacher")

    def __getattr__(self, name: str):
        self.reads.append(name)
        raise AssertionError(f"the real training split's {name} was read after the teacher")


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    """The teacher trains on the real training split; from then on the split is a tripwire."""
    import kdlab.run.single as single

    wire, prepare = Tripwire(), single.prepare_teacher

    def prepare_then_seal(teacher, cfg, datamodule, out_dir):
        source = prepare(teacher, cfg, datamodule, out_dir)
        datamodule.train = wire
        return source

    monkeypatch.setattr(single, "prepare_teacher", prepare_then_seal)
    return wire


def test_the_data_free_student_never_reads_the_training_split(tmp_path: Path, tripwire: Tripwire) -> None:
    """Fit, test, best-checkpoint test, report and int8 calibration all run without one real training image."""
    metrics = run(compose_config(*FAST, *TINY_GENERATOR, "post.quantize=int8"), tmp_path)
    assert tripwire.reads == []
    assert metrics[result_keys.KD_TRANSFER] == "generator"
    assert metrics[result_keys.GENERATOR_SOURCE] == "trained" and metrics[result_keys.GENERATOR_STEPS] == 3
    assert 0.0 <= metrics[result_keys.STUDENT_TEST_ACC] <= 1.0
    assert sum(metrics[result_keys.GENERATOR_TEACHER_CLASS_SHARES]) == pytest.approx(1.0, abs=1e-3)


def test_a_plain_run_trips_the_wire(tmp_path: Path, tripwire: Tripwire) -> None:
    """The tripwire is live: a run that distils on the training split reads it and fails."""
    with pytest.raises(AssertionError, match="training split"):
        run(compose_config(*FAST, "kd=response", "kd.cache_teacher=false"), tmp_path)
    assert tripwire.reads


def test_generator_losses_are_logged_by_name_with_the_image_grid(tmp_path: Path) -> None:
    metrics = run(compose_config(*FAST, *TINY_GENERATOR, "logger=csv"), tmp_path)
    with (tmp_path / "generator_losses.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["generator/step"]) for r in rows] == [1.0, 2.0, 3.0]
    assert set(LOSS_KEYS) <= set(rows[0])
    for key in LOSS_KEYS:
        assert metrics[key] == pytest.approx(float(rows[-1][key]))
    logged = (next(tmp_path.rglob("metrics.csv"))).read_text().splitlines()[0].split(",")
    assert set(LOSS_KEYS) <= set(logged)  # the experiment logger got the curves too
    grid = Image.open(metrics[result_keys.GENERATOR_IMAGES])
    # 10 classes × 2 images of 32 px, with make_grid's 2-px padding
    assert grid.format == "PNG" and grid.size == (2 + 2 * 34, 2 + 10 * 34)


def test_a_rerun_in_the_same_folder_reuses_the_generator(tmp_path: Path) -> None:
    run(compose_config(*FAST, *TINY_GENERATOR), tmp_path)
    weights = torch.load(tmp_path / "generator.pt", weights_only=True)
    again = run(compose_config(*FAST, *TINY_GENERATOR, "resume=false"), tmp_path)
    assert again[result_keys.GENERATOR_SOURCE] == "run folder"
    reused = torch.load(tmp_path / "generator.pt", weights_only=True)
    assert all(torch.equal(weights[k], reused[k]) for k in weights)


# --- the generator phase -----------------------------------------------------------------------------------------


def test_the_generator_trains_and_the_teacher_stays_frozen() -> None:
    torch.manual_seed(0)
    teacher = LeNet5(widths=(3, 8, 60, 42)).eval()
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    generator = DAFLGenerator(latent_dim=8, image_size=32, channels=1, width=8)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    settings = GeneratorSettings.of(compose_config(*TINY_GENERATOR, "kd.generator.steps=30").kd)
    history = train_generator(generator, teacher, settings, seed=0, device=torch.device("cpu"))
    assert all(torch.equal(teacher_state[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())
    assert any(not torch.equal(before[k], v) for k, v in generator.state_dict().items())
    first, last = history.rows[0], history.rows[-1]
    assert last["generator/loss"] < first["generator/loss"]  # 30 Adam steps at DAFL's lr lower L_G


def test_sealed_split_has_nothing_to_read() -> None:
    sealed = SealedTrainSplit(12)
    assert len(sealed) == 12
    for read in (lambda: sealed.images, lambda: sealed.targets, lambda: sealed.subset([0])):
        with pytest.raises(TrainingSplitRead, match=re.escape("kd.transfer=generator")):
            read()


# --- models and presets ------------------------------------------------------------------------------------------


def test_lenet5_and_its_half_have_the_dafl_sizes() -> None:
    teacher, student = LeNet5(), LeNet5(widths=(3, 8, 60, 42))
    assert count_parameters(teacher) == 61_706  # LeNet-5 at 32×32, 10 classes
    assert count_parameters(student) == 15_738
    assert teacher(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(ConfigError, match=re.escape("data.image_size=32")):
        LeNet5(image_size=28)


@pytest.mark.parametrize("preset", ["dafl_mnist_lenet5", "dafl_cifar10_wrn"])
def test_presets_compose_to_a_data_free_run(preset: str) -> None:
    cfg = compose_config(f"experiment={preset}", "data.download=false", "data.root=/tmp")
    validate_config(cfg)
    assert cfg.kd.transfer == "generator" and cfg.kd.cache_teacher is False and cfg.data.image_size == 32


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("kd.transfer=nowhere", "kd.transfer must be one of data, generator, got 'nowhere'"),
        ("kd.cache_teacher=auto", "kd.cache_teacher=auto caches the teacher's outputs on the training split"),
        ("kd.generator.steps=0", "kd.generator.steps must be > 0, got 0"),
        ("kd.generator.lr=fast", "kd.generator.lr must be a positive float, got 'fast'"),
        ("kd.generator.weights.activation=-1", "kd.generator.weights.activation must be a number >= 0, got -1"),
    ],
)
def test_bad_data_free_settings_fail_in_one_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(compose_config("kd=dafl", override))
