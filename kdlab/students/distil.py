"""Distil the fastest candidates in one kdlab multirun, then weigh accuracy against latency (the Pareto front)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kdlab import result_keys
from kdlab.errors import ConfigError

STUDENT_LATENCY_B1 = "report/student/latency_b1_ms"


@dataclass(frozen=True)
class DistilledStudent:
    """One job of the multirun: the student's accuracies and its latency as measured by the run's own report."""

    name: str
    test_acc: float
    best_val_acc: float
    latency_b1_ms: float
    run_dir: str


def multirun_command(names: Sequence[str], overrides: Sequence[str], sweep_dir: Path) -> list[str]:
    """``python -m kdlab -m student.name=a,b,…`` with the search's own data/teacher/… overrides, into ``sweep_dir``.

    Every job shares the teacher config, data and seed, so the teacher is trained at most once and then read from
    the cache (``$KDLAB_CACHE``)."""
    if not names:
        raise ConfigError("no candidate is within budget: nothing to distil (raise budget.latency_ms / budget.params)")
    return [
        sys.executable,
        "-m",
        "kdlab",
        "-m",
        *overrides,
        f"student.name={','.join(names)}",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweep.subdir=${student.name}",
    ]


def run_multirun(command: Sequence[str]) -> int:
    """Run the multirun in a child process (Hydra owns the process it sweeps in); returns its exit status."""
    return subprocess.run(list(command), check=False).returncode


def read_distilled(sweep_dir: Path, names: Sequence[str]) -> list[DistilledStudent]:
    """The completed jobs' results (a failed or missing job is left out; the multirun already said why)."""
    found = []
    for name in names:
        path = sweep_dir / name / "results.json"
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        if results.get(result_keys.STATUS) != "completed" or STUDENT_LATENCY_B1 not in results:
            continue
        found.append(
            DistilledStudent(
                name=name,
                test_acc=float(results[result_keys.STUDENT_TEST_ACC]),
                best_val_acc=float(results[result_keys.STUDENT_BEST_VAL_ACC]),
                latency_b1_ms=float(results[STUDENT_LATENCY_B1]),
                run_dir=str(path.parent),
            )
        )
    return found


def pareto_front(students: Sequence[DistilledStudent]) -> list[DistilledStudent]:
    """Students that no other student beats on both counts (faster or equal, and at least as accurate on test),
    fastest first."""
    front = []
    for student in sorted(students, key=lambda s: (s.latency_b1_ms, -s.test_acc)):
        if not front or student.test_acc > front[-1].test_acc:
            front.append(student)
    return front


def best_choice(students: Sequence[DistilledStudent], tolerance: float = 0.01) -> DistilledStudent | None:
    """The fastest student whose validation accuracy is within ``tolerance`` of the best one's: chosen on validation,
    never on test, so the choice does not overfit the test split."""
    if not students:
        return None
    top = max(s.best_val_acc for s in students)
    close = [s for s in students if s.best_val_acc >= top - tolerance]
    return min(close, key=lambda s: (s.latency_b1_ms, -s.best_val_acc, s.name))
