"""Summarise a method sweep: per kd method, the student's test accuracy (mean ± std over seeds) and seconds per epoch.

Usage: python experiments/method_table/table.py <sweep dir> [<rerun dir> ...]   (reads <dir>/*/results.json)

A job in a later directory replaces the job of the same method and seed from an earlier one (a rerun after a fix).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load(*sweeps: Path) -> dict[str, list[dict]]:
    latest: dict[tuple[str, int], dict] = {}
    for sweep in sweeps:
        for path in sorted(sweep.glob("*/results.json")):
            result = json.loads(path.read_text())
            if result.get("status") == "completed":
                latest[(result["choices"].get("kd", result.get("kd/method")), result["seed"])] = result
    runs: dict[str, list[dict]] = defaultdict(list)
    for (method, _), result in sorted(latest.items()):
        runs[method].append(result)
    return runs


def row(method: str, results: list[dict], baseline: float | None) -> str:
    accs = [100 * r["student/test_acc"] for r in results]
    mean = statistics.mean(accs)
    spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
    per_epoch = statistics.mean(r["wall_time_s"] / r["config"]["trainer"]["max_epochs"] for r in results)
    delta = "" if baseline is None or method == "none" else f"{mean - baseline:+.2f}"
    seeds = ",".join(str(r["seed"]) for r in results)
    return f"| {method} | {mean:.2f} ± {spread:.2f} | {delta} | {per_epoch:.2f} | {seeds} |"


def table(runs: dict[str, list[dict]]) -> str:
    baseline = statistics.mean(100 * r["student/test_acc"] for r in runs["none"]) if "none" in runs else None
    first = next(iter(runs.values()))[0]
    teachers = [r.get("teacher/test_acc") for rs in runs.values() for r in rs]  # kd=dml has none
    known = [100 * t for t in teachers if t is not None]
    teacher = f"{statistics.mean(known):.2f} %" if known else "— (no teacher)"
    lines = [
        f"{first['teacher/name']} → {first['student/name']} on {first['data/name']}, "
        f"{first['config']['trainer']['max_epochs']} epochs; teacher test accuracy {teacher}",
        "",
        "| kd | student test acc % (mean ± std) | Δ vs none | s / epoch | seeds |",
        "|---|---|---|---|---|",
    ]
    order = sorted(runs, key=lambda m: (m != "none", m))
    return "\n".join([*lines, *(row(m, runs[m], baseline) for m in order)])


if __name__ == "__main__":
    print(table(load(*(Path(arg) for arg in sys.argv[1:]))))
