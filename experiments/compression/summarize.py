"""Rows of experiments/compression/README.md from the results.json copies that run.sh leaves in a folder: one table
per weight bit-width, and how much of PTQ's drop each QAT row wins back."""

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
    runs = {tuple(path.stem.split("-")): json.loads(path.read_text()) for path in folder.glob("seed*-w*-qat_*.json")}
    for bits in sorted({bits for _, bits, _ in runs}, key=_order):
        seeds = sorted({seed for seed, b, _ in runs if b == bits})
        weight_bits, epochs = _order(bits)
        print(f"\n{-weight_bits}-bit weights, {epochs} QAT epochs\n")
        print("| row | " + " | ".join(f"top-1 % {s}" for s in seeds) + " | mean | size MB | latency ms b1 / b32 |")
        print("|---|" + "---|" * (len(seeds) + 3))
        top1s = {}
        for label, role, variant in ROWS:
            cells = [runs[(seed, bits, variant)] for seed in seeds]
            top1 = top1s[label] = [100 * r[f"report/{role}/top1"] for r in cells]
            size = statistics.mean(r[f"report/{role}/size_bytes"] for r in cells) / 1e6
            b1 = statistics.mean(r[f"report/{role}/latency_b1_ms"] for r in cells)
            b32 = statistics.mean(r[f"report/{role}/latency_b32_ms"] for r in cells)
            values = " | ".join(f"{t:.2f}" for t in top1)
            print(f"| {label} | {values} | {statistics.mean(top1):.2f} | {size:.2f} | {b1:.2f} / {b32:.2f} |")
        print()
        fp32, ptq = top1s[ROWS[0][0]], top1s[ROWS[1][0]]
        for label, _, _ in ROWS[2:]:
            shares = [_recovered(f, p, q) for f, p, q in zip(fp32, ptq, top1s[label], strict=True)]
            print(f"- {label}: share of PTQ's drop recovered per seed: " + ", ".join(shares))
        if min(top1s[ROWS[0][0]]) > max(top1s[ROWS[1][0]]):
            for label, _, _ in ROWS[2:]:
                mean = _recovered(statistics.mean(fp32), statistics.mean(ptq), statistics.mean(top1s[label]))
                print(f"- {label}: share of the mean drop recovered by the mean: {mean}")


def _order(tag: str) -> tuple[int, int]:
    """``w4e6`` → (-4, 6): wider weights first, then fewer QAT epochs (``w4`` is run.sh's default of 2 epochs)."""
    bits, _, epochs = tag[1:].partition("e")
    return -int(bits), int(epochs or 2)


def _recovered(fp32: float, ptq: float, qat: float) -> str:
    drop = fp32 - ptq
    if drop <= 0:
        return "no drop to recover"
    return f"{(qat - ptq) / drop:.2f} (drop {drop:.2f} pts)"


if __name__ == "__main__":
    main(Path(sys.argv[1]))
