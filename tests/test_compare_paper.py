"""``kdlab-compare --paper crd|dkd``: a sweep's CIFAR-100 numbers beside the published table rows, on a fake sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdlab.sweeps.compare.cli import main
from kdlab.sweeps.compare.collect import collect_runs
from kdlab.sweeps.compare.published import PAIRS, PAPERS, comparison_rows

PAIR = ("cifar_resnet32x4", "cifar_resnet8x4")


def fake_job(root: Path, name: str, kd: str, seed: int, last: float, best: float, **extra: object) -> None:
    """A results.json as a finished kdlab job writes it (only the keys the comparison reads)."""
    job = root / name
    job.mkdir(parents=True)
    results = {
        "status": "completed",
        "choices": {"kd": kd},
        "config": {"seed": seed, "kd": {"name": kd}},
        "kd/method": kd,
        "seed": seed,
        "data/name": "cifar100",
        "teacher/name": PAIR[0],
        "student/name": PAIR[1],
        "teacher/test_acc": 0.79,
        "student/test_acc": last,
        "student/test_acc_best_ckpt": best,
        **extra,
    }
    (job / "results.json").write_text(json.dumps(results))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    fake_job(root, "0", "response", 0, 0.7300, 0.7350)
    fake_job(root, "1", "response", 1, 0.7400, 0.7450)
    fake_job(root, "2", "dkd", 0, 0.7600, 0.7650)
    fake_job(root, "3", "dkd", 1, 0.7580, 0.7670)
    fake_job(root, "4", "none", 0, 0.7200, 0.7210)
    fake_job(root, "5", "response", 0, 0.9, 0.9, **{"data/name": "digits"})  # not CIFAR-100: left out
    fake_job(root, "6", "response", 0, 0.5, 0.5, **{"student/name": "cifar_resnet20"})  # a pair no paper has
    return root


def by_method(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["method"]: row for row in rows}


def test_crd_compares_last_epoch_means_with_the_published_rows(sweep: Path) -> None:
    rows = by_method(comparison_rows(collect_runs([sweep]), "crd"))
    assert set(rows) == {"teacher", "student (vanilla)", "KD", "DKD"}  # DKD is not in the CRD table
    kd = rows["KD"]
    assert kd["teacher → student"] == "cifar_resnet32x4 → cifar_resnet8x4" and kd["published"] == "73.33"
    assert kd["kdlab last epoch"] == "73.50 ± 0.71" and kd["kdlab best-val epoch"] == "74.00 ± 0.71"
    assert kd["Δ"] == "+0.17" and kd["seeds"] == "2"  # CRD reports the last epoch: 73.50 − 73.33
    assert rows["student (vanilla)"]["published"] == "72.50" and rows["student (vanilla)"]["Δ"] == "-0.50"
    assert rows["teacher"]["published"] == "79.42" and rows["teacher"]["kdlab last epoch"] == "79.00 ± 0.00"
    assert rows["DKD"]["published"] == "—" and rows["DKD"]["Δ"] == "—"


def test_dkd_compares_best_epoch_means_with_the_published_rows(sweep: Path) -> None:
    rows = by_method(comparison_rows(collect_runs([sweep]), "dkd"))
    dkd = rows["DKD"]
    assert dkd["published"] == "76.32" and dkd["kdlab best-val epoch"] == "76.60 ± 0.14"
    assert dkd["Δ"] == "+0.28"  # DKD reports the best epoch: 76.60 − 76.32
    assert rows["KD"]["Δ"] == "+0.67"  # 74.00 − 73.33, on the best-validation epoch


def test_cli_writes_and_prints_the_paper_table(sweep: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(sweep), "--paper", "dkd"]) == 0
    text = (sweep / "paper_dkd.md").read_text()
    assert "best test epoch, mean of 5 runs" in text and "| cifar_resnet32x4 → cifar_resnet8x4 | DKD | 76.32 |" in text
    assert "76.32" in capsys.readouterr().out
    assert not (sweep / "report.md").exists()  # --paper writes only the comparison


def test_a_sweep_without_cifar100_pairs_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fake_job(tmp_path / "s", "0", "response", 0, 0.9, 0.9, **{"data/name": "digits"})
    assert main([str(tmp_path / "s"), "--paper", "crd"]) == 0
    assert "No CIFAR-100 run" in (tmp_path / "s" / "paper_crd.md").read_text()


def test_an_unknown_paper_is_refused(sweep: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main([str(sweep), "--paper", "ofd"])
    assert "invalid choice: 'ofd'" in capsys.readouterr().err


def test_every_published_row_has_one_value_per_pair() -> None:
    for paper in PAPERS.values():
        for row, values in paper.rows.items():
            assert len(values) == len(PAIRS), row
