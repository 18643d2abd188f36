"""``kdlab.students``: the budget filter and ranking on injected fake timings, the Pareto front and the choice, the
refusals before any timing, one real search over two tiny models, and the report's speed-up line and warning."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from kdlab.errors import ConfigError
from kdlab.report.run_report import speed_lines
from kdlab.report.table import ModelReport, add_ratios
from kdlab.students import Budget, Candidate, DistilledStudent, best_choice, pareto_front, rank_within_budget
from kdlab.students.candidates import candidate_names
from kdlab.students.cli import compose_search, search
from kdlab.students.distil import multirun_command, read_distilled
from kdlab.students.search import measure_all

# name: (params, latency b1 ms, latency b32 ms)
FAKE = {"slow": (1_000, 9.0, 50.0), "big": (9_000_000, 1.0, 10.0), "fast": (2_000, 2.0, 30.0), "mid": (3_000, 4.0, 5.0)}
FAKE |= {"tie": (3_000, 2.0, 20.0)}


def fake_measure(name: str) -> Candidate:
    params, b1, b32 = FAKE[name]
    return Candidate(name, params, 10 * params, 4 * params, b1, b32, batch_size=32, threads=1, device="cpu")


def test_budget_drops_over_limit_and_ranks_the_rest_fastest_first() -> None:
    measured = measure_all(list(FAKE), fake_measure)
    result = rank_within_budget(measured, Budget(latency_ms=5.0, params=1_000_000))
    assert [c.name for c in result.kept] == ["tie", "fast", "mid"]  # 2.0 ms twice: the faster batch-32 first
    assert {c.name: reason for c, reason in result.dropped} == {
        "slow": "latency 9.00 ms > 5 ms",
        "big": "params 9,000,000 > 1,000,000",
    }


def test_no_budget_keeps_every_candidate() -> None:
    result = rank_within_budget(measure_all(list(FAKE), fake_measure), Budget())
    assert [c.name for c in result.kept] == ["big", "tie", "fast", "mid", "slow"] and not result.dropped


@pytest.mark.parametrize("budget", [{"latency_ms": 0}, {"params": -5}])
def test_a_budget_that_nothing_can_meet_is_refused(budget: dict) -> None:
    with pytest.raises(ConfigError, match=r"budget\.\w+ must be a positive number or null, got"):
        Budget(**budget)


def distilled(name: str, test: float, val: float, ms: float) -> DistilledStudent:
    return DistilledStudent(name, test, val, ms, run_dir=name)


def test_pareto_front_keeps_only_students_nobody_beats_on_both() -> None:
    students = [distilled("a", 0.90, 0.9, 1.0), distilled("b", 0.85, 0.9, 2.0), distilled("c", 0.95, 0.9, 3.0)]
    students += [distilled("d", 0.95, 0.9, 4.0), distilled("e", 0.97, 0.9, 5.0)]
    assert [s.name for s in pareto_front(students)] == ["a", "c", "e"]


def test_best_is_the_fastest_within_a_point_of_the_best_validation_accuracy() -> None:
    students = [distilled("fast_weak", 0.99, 0.90, 1.0), distilled("close", 0.90, 0.965, 2.0)]
    students += [distilled("top", 0.96, 0.97, 6.0)]
    assert best_choice(students).name == "close"  # validation decides; fast_weak's test score does not
    assert best_choice([]) is None


def test_candidates_are_refused_before_any_timing() -> None:
    with pytest.raises(ConfigError, match=r"students: mobilenetv3_smal_100 is not a timm model name"):
        candidate_names(["resnet18", "mobilenetv3_smal_100"], None, 40)
    with pytest.raises(ConfigError, match=r"pattern='nothing_like_this\*' matches no timm model"):
        candidate_names(None, "nothing_like_this*", 40)
    with pytest.raises(ConfigError, match=r"\d+ candidates \(.*\) exceed max_candidates=3"):
        candidate_names(None, "resnet*", 3)
    assert candidate_names(None, "mobilenetv3_small_0*", 40) == ["mobilenetv3_small_050", "mobilenetv3_small_075"]


def test_search_times_real_models_at_the_data_shape_and_writes_table_and_plot(tmp_path: Path) -> None:
    overrides = ["teacher=tiny", "students=[test_resnet,test_efficientnet]", "repeats=2", "warmup=1"]
    overrides += ["batch_size=4", "budget.params=1000000000", f"out_dir={tmp_path}"]
    result = search(compose_search(overrides), overrides, distil=0)
    assert sorted(c.name for c in result.kept) == ["test_efficientnet", "test_resnet"]
    assert result.kept[0].latency_b1_ms <= result.kept[1].latency_b1_ms
    rows = list(csv.DictReader((tmp_path / "students.csv").open()))
    assert [r["name"] for r in rows] == [c.name for c in result.kept] and rows[0]["batch_size"] == "4"
    assert all(float(r["speedup_b1"]) > 0 and r["within_budget"] == "True" for r in rows)
    assert "| teacher | test_resnet |" in (tmp_path / "students.md").read_text()
    assert (tmp_path / "latency_vs_macs.png").stat().st_size > 1000


def test_distil_command_sweeps_the_chosen_students_and_drops_search_keys(tmp_path: Path) -> None:
    command = multirun_command(["a", "b"], ["data=digits", "teacher=tiny"], tmp_path)
    assert command[1:4] == ["-m", "kdlab", "-m"] and "student.name=a,b" in command
    assert "data=digits" in command and f"hydra.sweep.dir={tmp_path}" in command
    with pytest.raises(ConfigError, match="no candidate is within budget"):
        multirun_command([], [], tmp_path)


def test_read_distilled_skips_failed_jobs(tmp_path: Path) -> None:
    ok = {"status": "completed", "student/test_acc": 0.9, "student/best_val_acc": 0.8}
    ok["report/student/latency_b1_ms"] = 3.0
    for name, results in (("ok", ok), ("failed", {"status": "failed"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    found = read_distilled(tmp_path, ["ok", "failed", "missing"])
    assert [(s.name, s.test_acc, s.best_val_acc, s.latency_b1_ms) for s in found] == [("ok", 0.9, 0.8, 3.0)]


def report_rows(student_b1_ms: float, student_b32_ms: float) -> list[ModelReport]:
    teacher = ModelReport("teacher", "t", 0.9, None, 10, 10, 100, 40, 10.0, 100.0, threads=2)
    student = replace(teacher, role="student", name="s", latency_b1_ms=student_b1_ms, latency_b32_ms=student_b32_ms)
    return add_ratios([teacher, student])


def test_report_states_the_speedup_at_both_batches() -> None:
    lines = speed_lines(report_rows(2.5, 20.0))
    assert lines == ["student vs teacher: 4.00× faster at batch 1, 5.00× at batch 32 (2 CPU thread(s))"]


def test_report_warns_in_one_line_when_the_student_is_not_faster() -> None:
    lines = speed_lines(report_rows(12.5, 50.0))
    assert len(lines) == 2 and lines[0].startswith("student vs teacher: 0.80× faster at batch 1, 2.00× at batch 32")
    assert lines[1] == (
        "warning: the student is not faster than the teacher on this device at batch 1 (0.80×): "
        "choose a student by measured latency with `python -m kdlab.students`"
    )
