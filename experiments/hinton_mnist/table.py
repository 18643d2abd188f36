"""Print the Hinton et al. 2015 MNIST table from kdlab run folders (their results.json), beside the paper's errors.

Usage: python experiments/hinton_mnist/table.py RUN_DIR [RUN_DIR ...]
The first run's teacher row is printed once (every run shares the cached teacher); each run adds a student row.
With several seeds, a summary follows: mean ± std of the errors per kind of student and the gap closed,
(errors alone − errors distilled) / (errors alone − errors teacher), from the means and per seed (paper: 0.91).
"""

from __future__ import annotations

import json
import statistics
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
    summary(runs, errors(first["teacher/test_acc"]))


def summary(runs: list[dict], teacher: int) -> None:
    """Mean ± std of errors per kind over seeds, and the gap closed from the means and for each shared seed."""
    by_kind: dict[str, dict[int, int]] = {"alone": {}, "distilled": {}}
    for r in runs:
        by_kind["distilled" if r["config"]["kd"]["terms"] else "alone"][r["config"]["seed"]] = errors(
            r["student/test_acc"]
        )
    if min(len(v) for v in by_kind.values()) < 2:
        return
    print("\n| student | seeds | errors, mean ± std | per seed |\n|---|---|---|---|")
    for kind, per_seed in by_kind.items():
        values = list(per_seed.values())
        print(f"| {kind} | {len(values)} | {statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} | "
              f"{', '.join(f'{s}: {e}' for s, e in sorted(per_seed.items()))} |")  # fmt: skip
    alone, distilled = (statistics.mean(by_kind[k].values()) for k in ("alone", "distilled"))
    print(f"\ngap closed (means): ({alone:.1f} − {distilled:.1f}) / ({alone:.1f} − {teacher}) = "
          f"{(alone - distilled) / (alone - teacher):.2f} (paper 0.91)")  # fmt: skip
    shared = sorted(set(by_kind["alone"]) & set(by_kind["distilled"]))
    gaps = [(by_kind["alone"][s] - by_kind["distilled"][s]) / (by_kind["alone"][s] - teacher) for s in shared]
    print(f"gap closed per seed {shared}: {', '.join(f'{g:.2f}' for g in gaps)}")


if __name__ == "__main__":
    main(sys.argv[1:])
