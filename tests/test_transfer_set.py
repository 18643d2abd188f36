"""Hinton et al. 2015 §3's transfer set without some classes: the student never sees them, the teacher sees all,
validation and test keep them; the bias fix is chosen on validation; bad class lists fail before any training."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config

from kdlab import result_keys
from kdlab.errors import ConfigError
from kdlab.report.omitted_bias import best_bias, shifted
from kdlab.run import run
from kdlab.run.single import set_up
from kdlab.teacher.cache import teacher_cache_key


def test_the_students_train_loader_never_yields_an_excluded_class(tmp_path: Path) -> None:
    setup = set_up(compose_config(*FAST, "+data.transfer_exclude_classes=[3,5]"), tmp_path)
    seen = torch.cat([batch["target"] for batch in setup.datamodule.train_dataloader()])
    assert len(seen) > 0 and not torch.isin(seen, torch.tensor([3, 5])).any()
    assert set(seen.tolist()) == set(range(10)) - {3, 5}
    assert {3, 5} <= set(setup.datamodule.val.targets.tolist())  # the bias fix is chosen on a validation with them
    assert {3, 5} <= set(setup.datamodule.test.targets.tolist())
    assert setup.omitted == [3, 5]


def test_include_keeps_only_the_listed_classes(tmp_path: Path) -> None:
    setup = set_up(compose_config(*FAST, "+data.transfer_include_classes=[7,8]"), tmp_path)
    assert set(setup.datamodule.train.targets.tolist()) == {7, 8}
    assert setup.omitted == [0, 1, 2, 3, 4, 5, 6, 9]


def test_the_teacher_is_shared_with_the_plain_run() -> None:
    """The transfer set is the student's: it does not change which teacher is trained (and cached)."""
    plain = teacher_cache_key(compose_config(*FAST))
    assert teacher_cache_key(compose_config(*FAST, "+data.transfer_exclude_classes=[3]")) == plain


def test_the_teacher_trains_on_every_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kdlab.teacher.single as single

    trained_on: list[set[int]] = []
    fit = single.make_trainer

    def recording_trainer(*args, **kwargs):
        trainer = fit(*args, **kwargs)
        original = trainer.fit

        def record(module, datamodule, **kw):
            trained_on.append(set(datamodule.train.targets.tolist()))
            return original(module, datamodule=datamodule, **kw)

        trainer.fit = record
        return trainer

    monkeypatch.setattr(single, "make_trainer", recording_trainer)
    set_up(compose_config(*FAST, "+data.transfer_exclude_classes=[3]"), tmp_path)
    assert trained_on == [set(range(10))]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+data.transfer_exclude_classes=[12]", "class indices in [0, 10)"),
        ("+data.transfer_include_classes=[7]", "leaves 1 of 10 classes"),
        ("+data.transfer_exclude_classes=[0,1,2,3,4,5,6,7,8]", "leaves 1 of 10 classes"),
        ("+data.transfer_exclude_classes=[]", "non-empty list"),
    ],
)
def test_bad_class_lists_fail_before_the_teacher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, override: str, message: str
) -> None:
    import kdlab.run.single as single

    monkeypatch.setattr(single, "prepare_teacher", lambda *a: pytest.fail("the teacher was reached"))
    with pytest.raises(ConfigError, match=re.escape(message)):
        set_up(compose_config(*FAST, override), tmp_path)


def test_exclude_and_include_together_are_refused(tmp_path: Path) -> None:
    overrides = ("+data.transfer_exclude_classes=[3]", "+data.transfer_include_classes=[7,8]")
    with pytest.raises(ConfigError, match="not both"):
        set_up(compose_config(*FAST, *overrides), tmp_path)


def test_best_bias_is_chosen_on_the_logits_it_is_given() -> None:
    """Class 2 was never trained on: its logit sits 3 below the winner on its own samples, so b = 3.25 (the first grid
    value above 3) fixes them, and a larger b starts stealing the others' samples (their margin is 5)."""
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [3.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    targets = torch.tensor([2, 2, 2, 0, 1])
    assert best_bias(logits, targets, [2]) == 3.25
    assert (shifted(logits, [2], 3.25).argmax(dim=1) == targets).all()
    assert best_bias(logits[3:], targets[3:], [2]) == 0.0  # no omitted-class sample: no reason to move


def test_an_omitted_class_run_reports_the_bias_fix(tmp_path: Path) -> None:
    results = run(compose_config(*FAST, "+data.transfer_exclude_classes=[3]"), tmp_path / "run")
    assert results[result_keys.OMITTED_CLASSES] == [3]
    assert results[result_keys.OMITTED_BIAS] >= 0.0
    test_size = results["report/test_samples"]
    corrected = 1 - results[result_keys.OMITTED_TEST_ERRORS_CORRECTED] / test_size
    assert results[result_keys.OMITTED_TEST_ACC_CORRECTED] == pytest.approx(corrected)
    assert results[result_keys.OMITTED_TEST_ERRORS] == round((1 - results["report/student/top1"]) * test_size)
    assert results[result_keys.OMITTED_TEST_ACC_TEST_CHOSEN] >= results[result_keys.OMITTED_TEST_ACC_CORRECTED]


def test_the_hinton_omitted_class_presets_share_the_distilled_presets_teacher() -> None:
    distilled = compose_config("experiment=hinton_mnist_distilled")
    omit3, only78 = compose_config("experiment=hinton_mnist_omit3"), compose_config("experiment=hinton_mnist_only78")
    assert list(omit3.data.transfer_exclude_classes) == [3] and "transfer_include_classes" not in omit3.data
    assert list(only78.data.transfer_include_classes) == [7, 8] and "transfer_exclude_classes" not in only78.data
    assert teacher_cache_key(omit3) == teacher_cache_key(only78) == teacher_cache_key(distilled)
    assert omit3.kd.temperature == distilled.kd.temperature == 20.0
