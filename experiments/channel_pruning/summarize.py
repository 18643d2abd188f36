"""The table and plot of experiments/channel_pruning/README.md from the folders run.sh leaves: accuracy against MACs
and batch-1 latency for channel-pruned students healed by KD and by cross-entropy, mean over seeds (the same table and
figure as the report of ``python -m kdlab -m hparams_search=prune_ratio``)."""

from __future__ import annotations

import sys
from pathlib import Path

from kdlab.sweeps.compare.collect import collect_runs
from kdlab.sweeps.compare.pruning import accuracy_vs_cost, markdown_rows, pruned_points


def main(folder: Path, plot_name: str = "accuracy_vs_cost.png") -> None:
    unpruned, pruned = pruned_points(collect_runs([folder]))
    if unpruned is None:
        sys.exit(f"no pruned student evaluated under {folder} yet")
    print("\n".join(markdown_rows(unpruned, pruned)))
    print(f"plot: {accuracy_vs_cost(unpruned, pruned, Path(__file__).with_name(plot_name))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "accuracy_vs_cost.png")
