"""Print how much of a biased teacher's known bias each student took on, from a sweep folder's job results.

Usage: python experiments/teacher_bias/table.py CLASS SWEEP_DIR [SWEEP_DIR ...]
One row per kd method: mean ± std over seeds of the student's test accuracy on CLASS (the class the teacher was
biased against), its overall top-1, and the copied-error rate (teacher's mistakes repeated with the same label).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f}"


def main(label: str, sweeps: list[str]) -> None:
    runs = [json.loads(p.read_text()) for sweep in sweeps for p in sorted(Path(sweep).glob("*/results.json"))]
    runs = [r for r in runs if r.get("status") == "completed"]
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        by_method[r["kd/method"]].append(r)
    teacher = runs[0]
    print(f"teacher: top-1 {100 * teacher['report/teacher/top1']:.1f}%, on class {label} "
          f"{100 * teacher[f'teacher/per_class_acc/{label}']:.1f}%")  # fmt: skip
    print(f"| kd | seeds | student acc on class {label} (%) | student top-1 (%) | copied-error rate (%) |")
    print("|---|---|---|---|---|")
    for method, group in sorted(by_method.items()):
        cells = (
            mean_std([r[f"student/per_class_acc/{label}"] for r in group]),
            mean_std([r["report/student/top1"] for r in group]),
            mean_std([r["student/copied_error_rate"] for r in group]),
        )
        print(f"| {method} | {len(group)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
