"""Tables of experiments/replay/run.sh's output: accuracy online vs replayed (mean ± std over seeds), accuracy with
V < epochs, and the 3 x 3 sweep's wall time both ways.

Usage: python experiments/replay/summarize.py OUT [SWEEP_OUT]
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def jobs(folder: Path) -> list[dict]:
    found = [json.loads(p.read_text()) for p in sorted(folder.glob("*/results.json"))]
    return [r for r in found if r.get("status") == "completed"]


def pct(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    each = ", ".join(f"{100 * v:.2f}" for v in values)
    return f"{100 * statistics.mean(values):.2f} ± {100 * spread:.2f} (seeds: {each})"


def accuracy_rows(out: Path) -> None:
    rows: dict[str, list[float]] = defaultdict(list)
    for r in jobs(out / "accuracy") + jobs(out / "views") + jobs(out / "topk"):
        replay, source = r["config"]["kd"]["replay"], r["teacher/outputs_source"]
        views = replay["views"] or r["config"]["trainer"]["max_epochs"]
        label = source if source != "replay" else f"replay, V = {views}"
        label += f", top-{replay['topk']}" if source == "replay" and replay["topk"] else ""
        rows[label].append(r["student/test_acc"])
    print("| teacher outputs | student test acc (%) |\n|---|---|")
    for label in sorted(rows):
        print(f"| {label} | {pct(rows[label])} |")


def sweep_rows(out: Path) -> None:
    times = {}
    for line in (out / "sweep_seconds.txt").read_text().splitlines():
        mode, wall, user, system = line.split()
        times[mode] = (float(wall), float(user) + float(system))
    print("\n| 3 x 3 sweep | jobs | teacher outputs | wall time (s) | CPU time, user + sys (s) | mean job (s) |")
    print("|---|---|---|---|---|---|")
    for mode, name in (("false", "online"), ("auto", "replayed, precompute included")):
        runs = jobs(out / f"sweep_{mode}")
        sources = sorted({r["teacher/outputs_source"] for r in runs})
        mean_job = statistics.mean(r["wall_time_s"] for r in runs)
        wall, cpu = times[mode]
        print(f"| {name} | {len(runs)} | {', '.join(sources)} | {wall:.0f} | {cpu:.0f} | {mean_job:.1f} |")
    (wall_on, cpu_on), (wall_re, cpu_re) = times["false"], times["auto"]
    print(f"\nreplayed / online: wall time {wall_re / wall_on:.2f}, CPU time {cpu_re / cpu_on:.2f}")


if __name__ == "__main__":
    accuracy_rows(Path(sys.argv[1]))
    sweep_rows(Path(sys.argv[-1]))  # OUT, or a second OUT that ran PARTS=sweep
