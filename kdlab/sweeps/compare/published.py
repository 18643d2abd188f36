"""Published CIFAR-100 top-1 (%) of the CRD and DKD papers, and a sweep's numbers beside them.

Sources (copied from the developers' reference notes, ``kd_methods.md`` §4.1–4.2, which name each number's origin):
Tian, Krishnan & Isola, "Contrastive Representation Distillation", ICLR 2020, arXiv:1910.10699 (its README table:
teacher, vanilla student, KD … CRD, CRD+KD), and Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022,
arXiv:2203.08679 (OFD, ReviewKD, DKD; baselines as in the CRD table). The papers report differently:
RepDistiller/CRD the **last** epoch of one run; mdistiller/DKD the **best** epoch (highest test accuracy over the
epochs) averaged over 5 runs. kdlab has no "best test epoch" (choosing on test would tune on test): its nearest
number is the test accuracy of the best-validation epoch (``student/test_acc_best_ckpt``). Both are shown.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from kdlab import result_keys
from kdlab.errors import ConfigError
from kdlab.sweeps.compare.collect import Run

# (teacher, student) as kdlab's timm names, the papers' column order (same family, then different families)
PAIRS: tuple[tuple[str, str], ...] = (
    ("cifar_wrn_40_2", "cifar_wrn_16_2"),
    ("cifar_wrn_40_2", "cifar_wrn_40_1"),
    ("cifar_resnet56", "cifar_resnet20"),
    ("cifar_resnet110", "cifar_resnet20"),
    ("cifar_resnet110", "cifar_resnet32"),
    ("cifar_resnet32x4", "cifar_resnet8x4"),
    ("cifar_vgg13", "cifar_vgg8"),
    ("cifar_vgg13", "cifar_mobilenetv2_half"),
    ("cifar_resnet50", "cifar_mobilenetv2_half"),
    ("cifar_resnet50", "cifar_vgg8"),
    ("cifar_resnet32x4", "cifar_shufflev1"),
    ("cifar_resnet32x4", "cifar_shufflev2"),
    ("cifar_wrn_40_2", "cifar_shufflev1"),
)
_ = None  # not reported for that pair
TEACHER, STUDENT = "teacher", "student (vanilla)"
# row → value per pair in PAIRS order
BASELINES = {
    TEACHER: (75.61, 75.61, 72.34, 74.31, 74.31, 79.42, 74.64, 74.64, 79.34, 79.34, 79.42, 79.42, 75.61),
    STUDENT: (73.26, 71.98, 69.06, 69.06, 71.14, 72.50, 70.36, 64.60, 64.60, 70.36, 70.50, 71.82, 70.50),
    "KD": (74.92, 73.54, 70.66, 70.67, 73.08, 73.33, 72.98, 67.37, 67.35, 73.81, 74.07, 74.45, 74.83),
}
CRD_ROWS = {
    "FitNet": (73.58, 72.24, 69.21, 68.99, 71.06, 73.50, 71.02, 64.14, 63.16, 70.69, 73.59, 73.54, 73.73),
    "AT": (74.08, 72.77, 70.55, 70.22, 72.31, 73.44, 71.43, 59.40, 58.58, 71.84, 71.73, 72.73, 73.32),
    "SP": (73.83, 72.43, 69.67, 70.04, 72.69, 72.94, 72.68, 66.30, 68.08, 73.34, 73.48, 74.56, 74.52),
    "CC": (73.56, 72.21, 69.63, 69.48, 71.48, 72.97, 70.71, 64.86, 65.43, 70.25, 71.14, 71.29, 71.38),
    "PKT": (74.54, 73.45, 70.34, 70.25, 72.61, 73.64, 72.88, 67.13, 66.52, 73.01, 74.10, 74.69, 73.89),
    "NST": (73.68, 72.24, 69.60, 69.53, 71.96, 73.30, 71.53, 58.16, 64.96, 71.28, 74.12, 74.68, 74.89),
    "CRD": (75.48, 74.14, 71.16, 71.46, 73.48, 75.51, 73.94, 69.73, 69.11, 74.30, 75.11, 75.65, 76.05),
}
DKD_ROWS = {
    "OFD": (75.24, 74.33, 70.98, _, 73.23, 74.95, 73.95, 69.48, 69.04, _, 75.98, 76.82, 75.85),
    "ReviewKD": (76.12, 75.09, 71.89, _, 73.89, 75.63, 74.84, 70.37, 69.89, _, 77.45, 77.78, 77.14),
    "DKD": (76.24, 74.81, 71.97, _, 74.11, 76.32, 74.68, 69.71, 70.35, _, 76.45, 77.07, 76.70),
}


@dataclass(frozen=True)
class Paper:
    """One paper's table and how it reports a number."""

    title: str
    rows: dict[str, tuple[float | None, ...]]
    reports: str  # "last" or "best"
    protocol: str


PAPERS = {
    "crd": Paper(
        "CRD (Tian et al., ICLR 2020)", {**BASELINES, **CRD_ROWS}, "last", "last epoch, one run (RepDistiller)"
    ),
    "dkd": Paper(
        "DKD (Zhao et al., CVPR 2022)",
        {**BASELINES, "CRD": CRD_ROWS["CRD"], **DKD_ROWS},
        "best",
        "best test epoch, mean of 5 runs (mdistiller)",
    ),
}
# kdlab's `kd=` choice → the papers' row name
METHOD_ROWS = {
    "none": STUDENT,
    "response": "KD",
    "fitnet": "FitNet",
    "at": "AT",
    "sp": "SP",
    "cc": "CC",
    "pkt": "PKT",
    "nst": "NST",
    "crd": "CRD",
    "dkd": "DKD",
    "reviewkd": "ReviewKD",
}


def paper(name: str) -> Paper:
    if name not in PAPERS:
        raise ConfigError(f"--paper must be one of {', '.join(PAPERS)}, got {name!r}")
    return PAPERS[name]


def _stats(values: list[float]) -> str:
    if not values:
        return "—"
    text = f"{100 * statistics.mean(values):.2f}"
    return f"{text} ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else text


def _values(runs: Sequence[Run], key: str) -> list[float]:
    return [v for v in (run.metric(key) for run in runs) if v is not None]


def _row(method: str, pair: tuple[str, str], published: float | None, runs: Sequence[Run], reports: str) -> dict:
    last = _values(runs, result_keys.STUDENT_TEST_ACC)
    best = _values(runs, result_keys.STUDENT_TEST_ACC_BEST_CKPT)
    ours = last if reports == "last" else best
    delta = f"{100 * statistics.mean(ours) - published:+.2f}" if ours and published is not None else "—"
    return {
        "teacher → student": f"{pair[0]} → {pair[1]}",
        "method": method,
        "published": "—" if published is None else f"{published:.2f}",
        "kdlab last epoch": _stats(last),
        "kdlab best-val epoch": _stats(best),
        "seeds": str(len(runs)),
        "Δ": delta,
    }


def _teacher_row(pair: tuple[str, str], published: float, runs: Sequence[Run]) -> dict[str, str]:
    """The teachers the pair's runs used (one per teacher seed); a teacher has no best-validation epoch here."""
    accuracies = _values(runs, result_keys.TEACHER_TEST_ACC)
    delta = f"{100 * statistics.mean(accuracies) - published:+.2f}" if accuracies else "—"
    return {
        "teacher → student": f"{pair[0]} → {pair[1]}",
        "method": TEACHER,
        "published": f"{published:.2f}",
        "kdlab last epoch": _stats(accuracies),
        "kdlab best-val epoch": "—",
        "seeds": str(len(runs)),
        "Δ": delta,
    }


def comparison_rows(runs: Sequence[Run], name: str) -> list[dict[str, str]]:
    """Per (pair, method) of the CIFAR-100 runs: the paper's number, kdlab's mean ± std over seeds, and the gap."""
    table = paper(name)
    groups: dict[tuple[tuple[str, str], str], list[Run]] = defaultdict(list)
    for run in runs:
        if not run.counted or "cifar100" not in str(run.metrics.get(result_keys.DATA_NAME, "")):
            continue
        pair = (str(run.metrics.get(result_keys.TEACHER_NAME)), str(run.metrics.get(result_keys.STUDENT_NAME)))
        groups[(pair, METHOD_ROWS.get(run.method, run.method))].append(run)
    rows = []
    for pair in PAIRS:
        methods = [m for p, m in groups if p == pair]
        if not methods:
            continue
        column = PAIRS.index(pair)
        every_run = [r for m in methods for r in groups[(pair, m)]]
        rows.append(_teacher_row(pair, table.rows[TEACHER][column], every_run))
        order = [m for m in table.rows if m in methods] + sorted(m for m in methods if m not in table.rows)
        for method in order:
            published = table.rows[method][column] if method in table.rows else None
            rows.append(_row(method, pair, published, groups[(pair, method)], table.reports))
    return rows


def comparison_markdown(rows: list[dict[str, str]], name: str) -> str:
    table = paper(name)
    head = [
        f"# kdlab beside {table.title}, CIFAR-100 top-1 %",
        "",
        f"The paper reports the {table.protocol}. kdlab: mean ± std over seeds of the last epoch "
        "(`student/test_acc`) and of the best-validation epoch (`student/test_acc_best_ckpt`); Δ compares the "
        f"paper with kdlab's {'last-epoch' if table.reports == 'last' else 'best-validation-epoch'} mean. "
        "The DKD paper's best epoch is chosen on test, so it sits above a best-validation number by construction.",
        "",
    ]
    if not rows:
        return "\n".join([*head, "No CIFAR-100 run of a pair in the paper's table was found."]) + "\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
    return "\n".join([*head, *lines]) + "\n"
