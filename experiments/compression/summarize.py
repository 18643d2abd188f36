"""Rows of experiments/compression/README.md from the results.json copies that run.sh leaves in a folder."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROWS = (
    ("student (fp32)", "student", "qat_kd"),
    ("student + int8 (PTQ)", "student+int8", "qat_kd"),
    ("student + int8 (QAT + KD)", "student+int8-qat", "qat_kd"),
    ("student + int8 (QAT, no teacher)", "student+int8-qat", "qat_ce"),
)


def main(folder: Path) -> None:
    paths = sorted(folder.glob("seed*-qat_*.json"))
    runs = {tuple(path.stem.split("-")): json.loads(path.read_text()) for path in paths}
    seeds = sorted({seed for seed, _ in runs})
    print("| row | " + " | ".join(f"top-1 % {s}" for s in seeds) + " | mean | size MB | latency ms b1 / b32 |")
    print("|---|" + "---|" * (len(seeds) + 3))
    for label, role, variant in ROWS:
        cells = [runs[(seed, variant)] for seed in seeds]
        top1 = [100 * r[f"report/{role}/top1"] for r in cells]
        size = statistics.mean(r[f"report/{role}/size_bytes"] for r in cells) / 1e6
        b1 = statistics.mean(r[f"report/{role}/latency_b1_ms"] for r in cells)
        b32 = statistics.mean(r[f"report/{role}/latency_b32_ms"] for r in cells)
        values = " | ".join(f"{t:.2f}" for t in top1)
        print(f"| {label} | {values} | {statistics.mean(top1):.2f} | {size:.2f} | {b1:.2f} / {b32:.2f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
