"""Inheritance diagnostics on hand-made logits, where the answer is known: a student that copies every teacher
mistake, one that copies none, one that is wrong elsewhere; calibration of known confidences; the summary line."""

from __future__ import annotations

import math

import pytest
import torch

from kdlab import result_keys
from kdlab.measure.inheritance import calibration, error_inheritance, per_class_accuracy
from kdlab.report.inheritance import inheritance_metrics, is_inheritance_key
from kdlab.run.summary import inherited_line

TARGETS = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
TEACHER = torch.tensor([0, 1, 1, 2, 2, 2, 2, 0])  # wrong on samples 1 (says 1), 3 (says 2), 7 (says 0)
COPIES_ALL = TEACHER.clone()  # every mistake, with the teacher's wrong label
COPIES_NONE = TARGETS.clone()  # right wherever the teacher is wrong (and everywhere else)
WRONG_ELSEWHERE = torch.tensor([0, 2, 1, 0, 1, 2, 2, 1])  # wrong where the teacher is, other labels; and on sample 4


def one_hot_logits(predictions: torch.Tensor, num_classes: int = 3, scale: float = 10.0) -> torch.Tensor:
    return scale * torch.nn.functional.one_hot(predictions, num_classes).float()


def test_a_student_that_copies_every_mistake() -> None:
    rates = error_inheritance(COPIES_ALL, TEACHER, TARGETS)
    assert rates == {"p_wrong_given_teacher_wrong": 1.0, "p_wrong_given_teacher_right": 0.0, "copied_error_rate": 1.0}


def test_a_student_that_copies_no_mistake() -> None:
    rates = error_inheritance(COPIES_NONE, TEACHER, TARGETS)
    assert rates == {"p_wrong_given_teacher_wrong": 0.0, "p_wrong_given_teacher_right": 0.0, "copied_error_rate": 0.0}


def test_wrong_with_another_label_is_not_a_copied_mistake() -> None:
    rates = error_inheritance(WRONG_ELSEWHERE, TEACHER, TARGETS)
    assert rates["p_wrong_given_teacher_wrong"] == 1.0
    assert rates["copied_error_rate"] == 0.0
    assert rates["p_wrong_given_teacher_right"] == pytest.approx(1 / 5)  # sample 4 of the five the teacher got right


def test_a_teacher_without_mistakes_has_nothing_to_copy() -> None:
    rates = error_inheritance(TARGETS, TARGETS, TARGETS)
    assert rates["copied_error_rate"] is None and rates["p_wrong_given_teacher_wrong"] is None


def test_per_class_accuracy_counts_each_class_and_marks_absent_ones() -> None:
    accuracy = per_class_accuracy(TEACHER, TARGETS, num_classes=4)
    assert accuracy[:3].tolist() == [0.5, 0.5, 0.75]
    assert math.isnan(accuracy[3])


def test_ece_is_the_gap_between_confidence_and_accuracy() -> None:
    """Every sample at confidence 0.9 (one bin), half of them right: ECE = |0.5 − 0.9| = 0.4."""
    p = 0.9
    logit = math.log(p / ((1 - p) / 2))  # softmax([logit, 0, 0]) puts p on the first class
    logits = torch.zeros(8, 3)
    logits[:, 0] = logit
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    measured = calibration(logits, targets, num_classes=3)
    assert measured["test_mean_confidence"] == pytest.approx(p, abs=1e-5)
    assert measured["test_ece"] == pytest.approx(0.4, abs=1e-5)
    right = calibration(one_hot_logits(TARGETS, scale=50.0), TARGETS, num_classes=3)
    assert right["test_ece"] == pytest.approx(0.0, abs=1e-5)


def test_flat_keys_copier_against_a_baseline_that_copies_none() -> None:
    logits = {"teacher": one_hot_logits(TEACHER), "baseline": one_hot_logits(COPIES_NONE)}
    logits["student"] = one_hot_logits(COPIES_ALL)
    flat = inheritance_metrics(logits, TARGETS, num_classes=3)
    assert flat[result_keys.STUDENT_COPIED_ERROR_RATE] == 1.0
    assert flat[result_keys.BASELINE_COPIED_ERROR_RATE] == 0.0
    assert flat[result_keys.STUDENT_COPIED_ERROR_RATE_VS_BASELINE] == 1.0
    assert flat[result_keys.per_class_key("student", "acc", "2")] == 0.75
    assert flat[result_keys.per_class_key("baseline", "acc", "2")] == 1.0
    assert flat[result_keys.per_class_key("student", "delta_vs_teacher", "0")] == 0.0
    assert flat[result_keys.per_class_key("student", "delta_vs_baseline", "1")] == -0.5
    for key in (result_keys.TEACHER_TEST_ECE, result_keys.STUDENT_TEST_ECE, result_keys.BASELINE_TEST_ECE):
        assert 0.0 <= flat[key] <= 1.0
    assert all(is_inheritance_key(key) for key in flat)  # kdlab.report.evaluate replaces them with the report


def test_without_a_baseline_there_are_no_baseline_keys() -> None:
    flat = inheritance_metrics({"teacher": one_hot_logits(TEACHER), "student": one_hot_logits(COPIES_NONE)}, TARGETS, 3)
    assert flat[result_keys.STUDENT_COPIED_ERROR_RATE] == 0.0
    assert not any(key.startswith("baseline/") for key in flat)
    assert result_keys.STUDENT_COPIED_ERROR_RATE_VS_BASELINE not in flat


def test_summary_shows_three_inherited_numbers() -> None:
    line = inherited_line(
        {
            result_keys.STUDENT_COPIED_ERROR_RATE: 0.5,
            result_keys.BASELINE_COPIED_ERROR_RATE: 0.25,
            result_keys.STUDENT_P_WRONG_GIVEN_TEACHER_WRONG: 0.75,
            result_keys.STUDENT_TEST_ECE: 0.02,
            result_keys.TEACHER_TEST_ECE: 0.01,
        }
    )
    assert line == (
        "inherited: copied mistakes 50.00% (alone 25.00%) · P(wrong | teacher wrong) 75.00% · ECE 2.00% (teacher 1.00%)"
    )
