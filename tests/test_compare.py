"""Sweep comparison on results.json trees written here: a T × alpha grid over seeds, a kd=none baseline, failures."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import yaml

from kdlab.sweeps.compare.cli import main
from kdlab.sweeps.compare.collect import canonical, collect_runs
from kdlab.sweeps.compare.plots import heatmap_cells

TEMPERATURES, ALPHAS, SEEDS = (2, 4), (0.5, 0.9), (0, 1)
BASELINE_ACCS = {0: 0.70, 1: 0.72}


def grid_acc(temperature: float, alpha: float, seed: int) -> float:
    return 0.80 + 0.01 * temperature + 0.1 * alpha + 0.004 * seed


def write_job(
    job: Path,
    overrides: list[str],
    *,
    kd: str = "response",
    temperature: float = 4.0,
    alpha: float = 0.9,
    seed: int = 0,
    acc: float | None = None,
    student: str = "test_resnet",
    params: int = 1000,
    epochs: int = 1,
    error: str | None = None,
) -> None:
    """A results.json shaped like the pipeline's (or like cli.record_failure's when ``error`` is given)."""
    job.mkdir(parents=True)
    (job / ".hydra").mkdir()
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    config = {
        "data": {"name": "digits"},
        "teacher": {"name": "test_resnet"},
        "student": {"name": student},
        "kd": {"temperature": temperature, "alpha": alpha},
        "optim": {"lr": 0.003},
        "trainer": {"max_epochs": epochs},
        "seed": seed,
        "teacher_seed": "${seed}" if error else seed,
    }
    results = {"status": "failed", "error": error} if error else {"status": "completed"}
    results.update(overrides=overrides, choices={"kd": kd, "student": student}, config=config)
    if not error:
        results.update({
            "kd/method": kd, "seed": seed, "student/name": student, "teacher/name": "test_resnet",
            "student/test_acc": acc, "student/best_val_acc": acc - 0.01, "student/test_acc_best_ckpt": acc,
            "student/val_acc": acc - 0.02, "teacher/test_acc": 0.95, "retention": acc / 0.95,
            "student/test_agreement": 0.9, "student/params": params, "teacher/params": 5000, "wall_time_s": 1.0,
        })  # fmt: skip
    (job / "results.json").write_text(json.dumps(results))


@pytest.fixture
def sweep_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A 2 × 2 × 2-seed grid with one failed and one unfinished job, and a kd=none sweep over the same seeds."""
    grid, baseline = tmp_path / "multirun" / "kd_grid-x", tmp_path / "multirun" / "kd_seeds-x"
    number = 0
    for temperature in TEMPERATURES:
        for alpha in ALPHAS:
            for seed in SEEDS:
                overrides = [f"kd.temperature={temperature}", f"kd.alpha={alpha}", f"seed={seed}"]
                acc = grid_acc(temperature, alpha, seed)
                write_job(grid / str(number), overrides, temperature=temperature, alpha=alpha, seed=seed, acc=acc)
                number += 1
    write_job(
        grid / str(number),
        ["kd.temperature=-1", "kd.alpha=0.5", "seed=0"],
        temperature=-1,
        alpha=0.5,
        error="ConfigError: kd.temperature must be > 0, got -1",
    )
    unfinished = grid / str(number + 1) / ".hydra"
    unfinished.mkdir(parents=True)
    (unfinished / "overrides.yaml").write_text(yaml.safe_dump(["kd.temperature=8", "kd.alpha=0.9", "seed=0"]))
    for seed, acc in BASELINE_ACCS.items():
        write_job(baseline / str(seed), ["kd=none", f"seed={seed}"], kd="none", alpha=0.0, seed=seed, acc=acc)
    return grid, baseline


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_report_over_grid_and_baseline(sweep_dirs: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    grid, baseline = sweep_dirs
    assert main([str(grid), str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "best by student/best_val_acc: kd=response kd.temperature=4 kd.alpha=0.9" in out
    assert "failed" in out and "kd.temperature must be > 0" in out and "no results.json" in out

    runs = read_csv(grid / "runs.csv")
    assert len(runs) == 8 + 1 + 1 + 2
    assert sorted(r["status"] for r in runs).count("completed") == 10
    assert {r["status"] for r in runs} == {"completed", "failed", "missing"}
    baseline_mean = statistics.fmean(BASELINE_ACCS.values())
    for row in runs:
        if row["status"] == "completed" and row["kd"] == "response":
            expected = grid_acc(float(row["kd.temperature"]), float(row["kd.alpha"]), int(row["seed"]))
            assert float(row["student/test_acc"]) == pytest.approx(expected)
            assert float(row["delta_vs_baseline"]) == pytest.approx(expected - baseline_mean)

    groups = {(g["kd"], g["kd.temperature"], g["kd.alpha"]): g for g in read_csv(grid / "summary.csv")}
    best = groups[("response", "4", "0.9")]
    accs = [grid_acc(4, 0.9, seed) for seed in SEEDS]
    assert (best["completed"], best["runs"]) == ("2", "2")
    assert float(best["student/test_acc_mean"]) == pytest.approx(statistics.fmean(accs))
    assert float(best["student/test_acc_std"]) == pytest.approx(statistics.stdev(accs))
    assert float(best["delta_vs_baseline_mean"]) == pytest.approx(statistics.fmean(accs) - baseline_mean)
    assert float(groups[("none", "4", "0")]["student/test_acc_mean"]) == pytest.approx(baseline_mean)
    assert (groups[("response", "-1", "0.5")]["completed"], groups[("response", "-1", "0.5")]["runs"]) == ("0", "1")

    report = (grid / "report.md").read_text()
    assert "## Configurations (mean ± std over seeds)" in report and "![Student accuracy](heatmap.png)" in report
    assert (
        f"| response | 4 | 0.9 | 2/2 | {100 * statistics.fmean(accs):.2f} ± {100 * statistics.stdev(accs):.2f} |"
        in (report)
    )
    assert "ConfigError: kd.temperature must be > 0, got -1" in report
    assert (grid / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert not (grid / "accuracy_vs_size.png").exists()  # one student only


def test_heatmap_cells_hold_each_seed_of_each_grid_point(sweep_dirs: tuple[Path, Path]) -> None:
    grid, baseline = sweep_dirs
    panels = heatmap_cells(collect_runs([grid, baseline]), "kd.temperature", "kd.alpha")
    assert list(panels) == ["kd=response"]  # the baseline has no place on a T × alpha grid; failed runs neither
    cells = panels["kd=response"]
    assert set(cells) == {(str(t), str(a)) for t in TEMPERATURES for a in ALPHAS}
    assert cells[("2", "0.5")] == pytest.approx([grid_acc(2, 0.5, seed) for seed in SEEDS])


def test_without_a_matching_baseline_delta_stays_empty(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_job(tmp_path / "a", ["kd.alpha=0.5"], alpha=0.5, acc=0.9)
    write_job(tmp_path / "b", ["kd.alpha=0.9"], alpha=0.9, acc=0.8)
    write_job(tmp_path / "c", ["kd=none"], kd="none", alpha=0.0, acc=0.7, epochs=5)  # trained longer: not comparable
    assert main([str(tmp_path), "--metric", "student/test_acc"]) == 0
    out = capsys.readouterr().out
    assert "best by student/test_acc: kd=response kd.alpha=0.5" in out
    assert "2 distilled run(s) have no kd=none run" in out
    deltas = {row["job"]: row["delta_vs_baseline"] for row in read_csv(tmp_path / "runs.csv")}
    assert deltas == {"a": "", "b": "", "c": "0.0"}


def test_several_students_get_an_accuracy_against_size_plot(tmp_path: Path) -> None:
    for i, (student, params, acc) in enumerate([("small", 1_000, 0.8), ("large", 50_000, 0.9)]):
        write_job(tmp_path / str(i), [f"student={student}"], student=student, params=params, acc=acc)
    assert main([str(tmp_path), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "accuracy_vs_size.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "report" / "heatmap.png").exists()  # T and alpha do not vary


def test_empty_dir_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


@pytest.mark.parametrize(("a", "b"), [("2", 2.0), ("0.30", 0.3), ("[1,2]", [1, 2]), ("none", "none"), ("1e3", 1000)])
def test_override_text_and_config_values_compare_equal(a: str, b: object) -> None:
    assert canonical(a) == canonical(b)


def test_a_run_repeated_by_a_later_sweep_counts_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The grid's seed-0 point and the seeds sweep's seed-0 run are one experiment, not two seeds."""
    write_job(tmp_path / "grid" / "0", ["kd.temperature=4", "kd.alpha=0.9"], temperature=4, acc=0.90)  # int 4
    for seed, acc in ((0, 0.90), (1, 0.94)):
        write_job(tmp_path / "seeds" / str(seed), ["kd=response", f"seed={seed}"], seed=seed, acc=acc)
    assert main([str(tmp_path / "grid"), str(tmp_path / "seeds"), "--out", str(tmp_path)]) == 0
    assert "1 run(s) repeat the config and seed of a later run: counted once" in capsys.readouterr().out
    (group,) = read_csv(tmp_path / "summary.csv")
    assert (group["completed"], group["runs"]) == ("2", "3")
    assert float(group["student/test_acc_mean"]) == pytest.approx(0.92)
    repeats = {row["job"]: row["repeat_of"] for row in read_csv(tmp_path / "runs.csv")}
    assert repeats == {"grid/0": "seeds/0", "seeds/0": "", "seeds/1": ""}


def write_pruned_job(job: Path, ratio: float, healer: str, seed: int, top1: float) -> None:
    """A prune-ratio sweep job: the unpruned student's report row and the pruned one (MACs shrink with the ratio)."""
    overrides = [f"post.prune={ratio}", f"post.prune_teacher={healer == 'KD'}", f"seed={seed}"]
    write_job(job, overrides, seed=seed, acc=0.99)
    results = json.loads((job / "results.json").read_text())
    results["config"]["post"] = {"prune": ratio, "prune_teacher": healer == "KD", "prune_kind": "channel"}
    results.update({
        "post/prune_amount": ratio, "post/prune_healer": healer,
        "report/student/top1": 0.99, "report/student/macs": 4e6, "report/student/latency_b1_ms": 2.0,
        "report/student+pruned/top1": top1, "report/student+pruned/macs": 4e6 * (1 - ratio) ** 2,
        "report/student+pruned/params": 1e5, "report/student+pruned/latency_b1_ms": 2.0 - ratio,
    })  # fmt: skip
    (job / "results.json").write_text(json.dumps(results))


def test_a_prune_ratio_sweep_reports_accuracy_against_cost(tmp_path: Path) -> None:
    """hparams_search=prune_ratio's report: each (ratio, healer) as mean ± std over seeds beside the unpruned student,
    and accuracy_vs_cost.png; a T × alpha sweep has neither."""
    top1 = {(0.3, "KD"): (0.98, 0.96), (0.3, "CE"): (0.97, 0.95), (0.7, "KD"): (0.90, 0.80), (0.7, "CE"): (0.85, 0.75)}
    for (ratio, healer), accs in top1.items():
        for seed, acc in enumerate(accs):
            write_pruned_job(tmp_path / f"{ratio}-{healer}-{seed}", ratio, healer, seed, acc)
    assert main([str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "| 0 % | — | 8 | 99.00 ± 0.00 | 100.0 % | — | 4.00M | 2.00 / — |" in report
    assert "| 70 % | KD | 2 | 85.00 ± 7.07 | 85.9 % | 100.0K | 0.36M | 1.30 / — |" in report
    assert "| 30 % | CE | 2 | 96.00 ± 1.41 | 97.0 % |" in report
    assert (tmp_path / "accuracy_vs_cost.png").read_bytes()[:4] == b"\x89PNG"
    assert "![Pruned student accuracy](heatmap.png)" in report  # ratio × healer of the pruned top-1, not the unpruned
    cells = heatmap_cells(collect_runs([tmp_path]), "post.prune", "post.prune_teacher", "report/student+pruned/top1")
    assert cells["kd=response"][("0.7", "true")] == pytest.approx([0.90, 0.80])


def test_a_sweep_over_students_that_also_prunes_gets_no_pooled_pruning_table(tmp_path: Path) -> None:
    for i, student in enumerate(("small", "large")):  # post.prune=0.5 in both, but two different networks
        write_pruned_job(tmp_path / str(i), 0.5, "KD", 0, 0.9 + 0.05 * i)
        path = tmp_path / str(i) / "results.json"
        results = json.loads(path.read_text())
        results["overrides"].append(f"student={student}")
        results["choices"]["student"] = student
        path.write_text(json.dumps(results))
    assert main([str(tmp_path)]) == 0
    assert "Pruned students" not in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "accuracy_vs_cost.png").exists()


def test_a_sweep_without_pruning_has_no_cost_plot(sweep_dirs: tuple[Path, Path]) -> None:
    grid, _ = sweep_dirs
    assert main([str(grid)]) == 0
    assert not (grid / "accuracy_vs_cost.png").exists() and "Pruned students" not in (grid / "report.md").read_text()
