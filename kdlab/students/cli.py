"""``python -m kdlab.students [--distil N] [overrides]``: the search from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from kdlab.errors import ConfigError
from kdlab.instantiate import build
from kdlab.models import build_model
from kdlab.paths import config_dir
from kdlab.students.candidates import candidate_names
from kdlab.students.distil import best_choice, multirun_command, pareto_front, read_distilled, run_multirun
from kdlab.students.outputs import markdown_table, plot_latency_vs_macs, plot_pareto, write_tables
from kdlab.students.search import Budget, Candidate, SearchResult, measure_all, measure_candidate, rank_within_budget

log = logging.getLogger("kdlab.students")
SEARCH_KEYS = ("students", "pattern", "max_candidates", "budget", "batch_size", "threads", "device", "warmup")
SEARCH_KEYS += ("repeats", "out_dir")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdlab-students", description=__doc__.splitlines()[0])
    parser.add_argument("--distil", type=int, default=0, metavar="N", help="distil the N fastest within budget")
    parser.add_argument("overrides", nargs="*", help="data=… teacher=… students=[…] pattern=… budget.latency_ms=…")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    try:
        search(compose_search(args.overrides), args.overrides, args.distil)
    except ConfigError as error:
        print(f"kdlab-students: error: {error}", file=sys.stderr)
        return 2
    return 0


def compose_search(overrides: Sequence[str]) -> DictConfig:
    """``conf/students.yaml`` (the main config plus the search's keys) with the command line's overrides."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("students", overrides=list(overrides))


def search(cfg: DictConfig, overrides: Sequence[str], distil: int) -> SearchResult:
    """Measure, filter, rank and write; then distil the ``distil`` fastest when asked."""
    if distil < 0:
        raise ConfigError(f"--distil must be >= 0 (the number of students to distil), got {distil}")
    names = candidate_names(cfg.students, cfg.pattern, int(cfg.max_candidates))
    budget = Budget(cfg.budget.latency_ms, cfg.budget.params)
    device = _device(str(cfg.device))
    datamodule = build(cfg.data)
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    input_shape = tuple(datamodule.test.images.shape[1:])
    out_dir = Path(cfg.out_dir or f"student_search/{time.strftime('%Y-%m-%d_%H-%M-%S')}")

    def measure(name: str, model_cfg: DictConfig | None = None) -> Candidate:
        node = model_cfg or OmegaConf.create({"_target_": "timm.create_model", "_partial_": True, "model_name": name})
        model = build_model(node, role="student", **shape).to(device)
        log.info("timing %s at %s on %s", name, "×".join(map(str, input_shape)), device)
        timing = {"threads": cfg.threads, "warmup": int(cfg.warmup), "repeats": int(cfg.repeats)}
        return measure_candidate(name, model, input_shape, batch_size=int(cfg.batch_size), **timing)

    teacher = measure(str(cfg.teacher.name), cfg.teacher.model) if _single_teacher(cfg) else None
    result = rank_within_budget(measure_all(names, measure), budget)
    write_tables(result, out_dir, teacher)
    plot_latency_vs_macs(result, out_dir, teacher)
    print(markdown_table([(c, "") for c in result.kept] + result.dropped, teacher))
    print(f"table and plot in {out_dir}")
    if distil:
        _distil([c.name for c in result.kept[:distil]], overrides, out_dir)
    return result


def _distil(names: list[str], overrides: Sequence[str], out_dir: Path) -> None:
    sweep_dir = (out_dir / "distil").resolve()
    passed = [o for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0] not in SEARCH_KEYS]
    status = run_multirun(multirun_command(names, passed, sweep_dir))
    students = read_distilled(sweep_dir, names)
    if not students:
        raise ConfigError(f"no distillation job completed in {sweep_dir} (multirun exit status {status})")
    front, best = pareto_front(students), best_choice(students)
    plot_pareto(students, front, best, out_dir)
    for s in sorted(students, key=lambda s: s.latency_b1_ms):
        mark = ("  ← best" if s is best else "") + ("  (Pareto)" if s in front else "")
        accuracy = f"test {100 * s.test_acc:.2f}%  val {100 * s.best_val_acc:.2f}%"
        print(f"{s.name}: {accuracy}  {s.latency_b1_ms:.2f} ms{mark}")
    if status:
        log.warning("the multirun exited with status %d: some jobs failed (see %s)", status, sweep_dir)


def _single_teacher(cfg: DictConfig) -> bool:
    """The teacher row needs one model; an ensemble's members are measured by the run's report instead."""
    return cfg.teacher.get("name") != "ensemble" and "model" in cfg.teacher


def _device(name: str) -> torch.device:
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device must be cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda, but torch sees no CUDA device here")
    return torch.device(name)
