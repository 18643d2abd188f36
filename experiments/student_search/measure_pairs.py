"""Candidate default pairs: teachers and students timed in interleaved rounds, so that a load change on a shared
machine hits every model alike; each cell is the median over rounds of ``kdlab.measure.measure_latency`` medians.

Usage: python experiments/student_search/measure_pairs.py PX THREADS name,name,... ROUNDS
"""

from __future__ import annotations

import statistics
import sys

import timm

from kdlab.measure import count_macs, count_parameters, measure_latency


def main(px: int, threads: int, names: list[str], rounds: int) -> None:
    models = {name: timm.create_model(name, num_classes=10, in_chans=1) for name in names}
    shape = (1, px, px)  # digits: one channel
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    for _ in range(rounds):
        for name, model in models.items():
            times[name][0].append(measure_latency(model, shape, 1, warmup=3, repeats=10, threads=threads).median_ms)
            times[name][1].append(measure_latency(model, shape, 32, warmup=1, repeats=4, threads=threads).median_ms)
    for name, model in models.items():
        b1, b32 = statistics.median(times[name][0]), statistics.median(times[name][1])
        params, macs = count_parameters(model) / 1e6, count_macs(model, shape) / 1e6
        print(f"| {px} | {name} | {params:.2f}M | {macs:.2f}M | {b1:.2f} | {b32:.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4]))
