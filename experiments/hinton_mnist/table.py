"""Print the Hinton et al. 2015 MNIST table from kdlab run folders (their results.json), beside the paper's errors.

Usage: python experiments/hinton_mnist/table.py RUN_DIR [RUN_DIR ...]
The first run's teacher row is printed once (every run shares the cached teacher); each run adds a student row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PAPER = {"teacher": 67, "alone": 146, "distilled": 74}
TEST_IMAGES = 10_000


def errors(acc: float) -> int:
    return round((1.0 - acc) * TEST_IMAGES)


def row(label: str, paper: int, acc: float, cfg: dict, epochs: int, optim: dict, wall: str) -> str:
    lr = optim["optimizer"]["lr"]
    return f"| {label} | {paper} | **{errors(acc)}** | {acc:.2%} | {epochs} | {lr:g} | {cfg['seed']} | {wall} |"


def main(run_dirs: list[str]) -> None:
    found = [Path(d) / "results.json" for d in run_dirs if (Path(d) / "results.json").is_file()]
    for d in sorted(set(run_dirs) - {str(f.parent) for f in found}):
        print(f"skipping {d}: no results.json (a run that did not complete)", file=sys.stderr)
    runs = [json.loads(f.read_text()) for f in found]
    print("| model | paper errors | kdlab errors | test acc | epochs | lr | seed | run wall time |")
    print("|---|---|---|---|---|---|---|---|")
    first = runs[0]
    teacher_accs = {r["teacher/test_acc"] for r in runs}
    assert len(teacher_accs) == 1, f"runs do not share one teacher: {teacher_accs}"
    cfg = first["config"]
    teacher_optim = cfg["teacher"].get("optim") or cfg["optim"]
    print(row(f"teacher {cfg['teacher']['name']}", PAPER["teacher"], first["teacher/test_acc"], cfg,
              cfg["teacher"]["max_epochs"], teacher_optim, "trained once, cached"))  # fmt: skip
    for r in runs:
        cfg, kd = r["config"], r["config"]["kd"]
        distilled = bool(kd["terms"])
        label = f"{cfg['student']['name']} " + (f"distilled, T={kd['temperature']:g}, α={kd['alpha']:g}" if distilled
                                                 else "alone")  # fmt: skip
        paper = PAPER["distilled"] if distilled else PAPER["alone"]
        wall = f"{r['wall_time_s'] / 60:.0f} min"
        print(row(label, paper, r["student/test_acc"], cfg, cfg["trainer"]["max_epochs"], cfg["optim"], wall))


if __name__ == "__main__":
    main(sys.argv[1:])
