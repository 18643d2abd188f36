"""``teacher.bias``: a teacher trained on a deliberately skewed copy of the training split, cached under its own key,
while the student's data stays whole; bad bias settings fail before any training."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config

import kdlab.teacher.single as single
from kdlab.data.bias import biased_split, check_bias
from kdlab.data.tensors import Split
from kdlab.errors import ConfigError
from kdlab.run.single import set_up
from kdlab.teacher.cache import teacher_cache_key

RELABEL = "+teacher.bias.relabel={source:4,target:9,fraction:0.5}"


def split_of(targets: list[int]) -> Split:
    return Split(torch.arange(len(targets), dtype=torch.float32).view(-1, 1, 1, 1), torch.tensor(targets))


def test_drop_removes_that_fraction_of_a_class() -> None:
    split = split_of([3] * 10 + [1] * 10)
    skewed = biased_split(split, check_bias({"drop": {3: 0.8}}, 10))
    assert (skewed.targets == 3).sum() == 2 and (skewed.targets == 1).sum() == 10
    assert set(skewed.images.flatten().tolist()) <= set(split.images.flatten().tolist())


def test_relabel_moves_that_fraction_of_the_source_class_to_the_target() -> None:
    split = split_of([4] * 10 + [9] * 10 + [0] * 4)
    skewed = biased_split(split, check_bias({"relabel": {"source": 4, "target": 9, "fraction": 0.3}}, 10))
    assert (skewed.targets == 4).sum() == 7 and (skewed.targets == 9).sum() == 13 and (skewed.targets == 0).sum() == 4
    moved = skewed.images.flatten()[(skewed.targets == 9)].long()
    assert (moved < 10).sum() == 3  # the relabelled images are images of 4s (indices 0..9)
    again = biased_split(split, check_bias({"relabel": {"source": 4, "target": 9, "fraction": 0.3}}, 10))
    assert torch.equal(again.targets, skewed.targets)  # seeded: a cached teacher is reproducible


@pytest.mark.parametrize(
    ("bias", "message"),
    [
        ({"drop": {12: 0.5}}, "teacher.bias.drop key 12 must be a class index in [0, 10)"),
        ({"drop": {3: 1.5}}, "teacher.bias.drop.3 must be a fraction in (0, 1]"),
        ({"relabel": {"source": 4, "target": 4, "fraction": 0.5}}, "source and target must differ"),
        ({"relabel": {"source": 4, "fraction": 0.5}}, "must have exactly the keys"),
        ({"noise": 0.5}, "teacher.bias must be a mapping with keys from"),
    ],
)
def test_bad_bias_is_a_config_error(bias: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_bias(bias, 10)


def test_a_biased_teacher_has_its_own_cache_key() -> None:
    plain = teacher_cache_key(compose_config(*FAST))
    assert teacher_cache_key(compose_config(*FAST, RELABEL)) != plain
    assert teacher_cache_key(compose_config(*FAST, "+teacher.bias.drop={3:0.9}")) != plain
    assert teacher_cache_key(compose_config(*FAST, "+teacher.bias=null")) == plain  # unset: the existing entries


def test_the_teacher_trains_on_the_skewed_split_and_the_student_on_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[torch.Tensor] = []
    make = single.make_trainer

    def recording_trainer(*args, **kwargs):
        trainer = make(*args, **kwargs)
        fit = trainer.fit

        def record(module, datamodule, **kw):
            seen.append(datamodule.train.targets.clone())
            return fit(module, datamodule=datamodule, **kw)

        trainer.fit = record
        return trainer

    monkeypatch.setattr(single, "make_trainer", recording_trainer)
    setup = set_up(compose_config(*FAST, "+teacher.bias.drop={3:1.0}"), tmp_path)
    (teacher_targets,) = seen
    assert (teacher_targets == 3).sum() == 0
    assert (setup.datamodule.train.targets == 3).sum() > 0  # the student's transfer set is untouched
    assert len(setup.datamodule.train) == len(teacher_targets) + int((setup.datamodule.train.targets == 3).sum())
