"""Print Hinton et al. 2015 §3's omitted-class rows from kdlab run folders (``experiment=hinton_mnist_omit3`` /
``hinton_mnist_only78``), beside the paper's numbers.

Usage: python experiments/hinton_mnist/omitted_table.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PAPER = {
    (3,): "206 errors (133 on 3s) → 109 (14) with b = 3.5",
    (0, 1, 2, 3, 4, 5, 6, 9): "47.3% error → 13.2% with the bias fix",
}


def row(results: dict) -> str:
    omitted = tuple(results["student/omitted_classes"])
    test_size = results["report/test_samples"]
    before, after = results["student/test_errors"], results["student/test_errors_bias_corrected"]
    on_before, on_after = (
        results["student/test_errors_on_omitted"],
        results["student/test_errors_on_omitted_bias_corrected"],
    )
    test_chosen = round((1 - results["student/test_acc_bias_test_chosen"]) * test_size)
    return (
        f"| omitted {list(omitted)} | {PAPER.get(omitted, '—')} | {before} ({on_before} on omitted), "
        f"{before / test_size:.1%} | b = {results['student/omitted_bias']:g}: {after} ({on_after}), "
        f"{after / test_size:.1%}"
        f" | b = {results['student/omitted_bias_test_chosen']:g}: {test_chosen} | "
        f"{results['teacher/test_acc']:.2%} |"
    )


def main(run_dirs: list[str]) -> None:
    print("| transfer set | paper | student errors, no fix | bias chosen on val | bias chosen on test | teacher acc |")
    print("|---|---|---|---|---|---|")
    for run_dir in run_dirs:
        path = Path(run_dir) / "results.json"
        if not path.is_file():
            print(f"skipping {run_dir}: no results.json", file=sys.stderr)
            continue
        print(row(json.loads(path.read_text())))


if __name__ == "__main__":
    main(sys.argv[1:])
