"""The table and plot of experiments/channel_pruning/README.md from the folders run.sh leaves: accuracy against MACs
and batch-1 latency for channel-pruned students healed by KD and by cross-entropy, mean over seeds."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def collect(folder: Path) -> tuple[dict, dict]:
    """(unpruned student metrics per seed, pruned metrics per (ratio, healer) -> per seed)."""
    unpruned, pruned = {}, defaultdict(dict)
    for path in sorted(folder.glob("seed*/prune*-teacher_*/results.json")):
        seed = path.parts[-3]
        ratio, healer = path.parent.name.removeprefix("prune").split("-teacher_")
        results = json.loads(path.read_text())
        if "report/student+pruned/top1" not in results:  # copied, not evaluated yet (run.sh still going)
            print(f"skipped, not evaluated: {path.parent}")
            continue
        unpruned[seed] = {k: results[f"report/student/{k}"] for k in ("top1", "macs", "params", "latency_b1_ms")}
        row = {k: results[f"report/student+pruned/{k}"] for k in ("top1", "macs", "params", "latency_b1_ms")}
        pruned[(float(ratio), "KD" if healer == "true" else "CE")][seed] = row
    return unpruned, dict(pruned)


def mean(rows: dict, key: str) -> float:
    return statistics.mean(r[key] for r in rows.values())


def main(folder: Path, plot_name: str = "accuracy_vs_cost.png") -> None:
    unpruned, pruned = collect(folder)
    base = mean(unpruned, "top1")
    seeds = sorted(unpruned)
    accuracies = " / ".join(f"{100 * unpruned[s]['top1']:.2f}" for s in seeds)
    print(
        f"unpruned student: top-1 {accuracies} % (seeds {', '.join(seeds)}), "
        f"{mean(unpruned, 'params') / 1e3:.1f}K params, {mean(unpruned, 'macs') / 1e6:.2f}M MACs, "
        f"{mean(unpruned, 'latency_b1_ms'):.2f} ms at batch 1"
    )
    print("| channels pruned | healed by | top-1 % per seed | mean | of unpruned | params | MACs | latency b1 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for (ratio, healer), rows in sorted(pruned.items()):
        top1 = [100 * rows[s]["top1"] for s in sorted(rows)]
        print(
            f"| {100 * ratio:g} % | {healer} | {' / '.join(f'{t:.2f}' for t in top1)} | {statistics.mean(top1):.2f} "
            f"| {100 * mean(rows, 'top1') / base:.1f} % | {mean(rows, 'params') / 1e3:.1f}K "
            f"| {mean(rows, 'macs') / 1e6:.2f}M | {mean(rows, 'latency_b1_ms'):.2f} |"
        )
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key, label in ((axes[0], "macs", "MACs (millions)"), (axes[1], "latency_b1_ms", "latency, batch 1 (ms)")):
        scale = 1e6 if key == "macs" else 1.0
        for healer, marker in (("KD", "o-"), ("CE", "s--")):
            chosen = [rows for (_, h), rows in pruned.items() if h == healer]
            points = sorted((mean(rows, key) / scale, 100 * mean(rows, "top1")) for rows in chosen)
            axis.plot(*zip(*points, strict=True), marker, label=f"pruned, healed by {healer}")
        axis.plot(mean(unpruned, key) / scale, 100 * base, "k*", markersize=12, label="unpruned student")
        axis.set_xlabel(label)
        axis.set_ylabel("test top-1 %")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle("Channel pruning, healed by KD or cross-entropy; mean of seeds")
    figure.tight_layout()
    out = Path(__file__).with_name(plot_name)
    figure.savefig(out, dpi=120)
    print(f"plot: {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "accuracy_vs_cost.png")
