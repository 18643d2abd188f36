"""``kdlab-evaluate RUN_DIR [post.key=value …]``: the compression report of a finished run, recomputed.

For runs made before the report existed, to add post steps afterwards (``post.quantize=int8 post.prune=0.5``), or to
pick up the sweep's baseline student once its job has finished. Data and models are rebuilt from the config stored in
``results.json`` (only the callables kdlab's own config groups build: see :func:`check_targets`); the student comes
from ``student.pt`` and the teacher from ``teacher/path``. The new report replaces
the old ``report/*``, ``post/*`` and ``student/onnx_*`` keys of ``results.json`` (written atomically, other keys
kept) and ``report.png`` is redrawn.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from kdlab import result_keys
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.transfer import data_source_config
from kdlab.errors import ConfigError
from kdlab.instantiate import build, build_optim
from kdlab.io import write_json
from kdlab.models import build_model
from kdlab.models.files import load_into
from kdlab.paths import config_dir
from kdlab.post.settings import check_post_config
from kdlab.report.run_report import build_report, is_report_key
from kdlab.report.settings import EvaluationLogSettings, ReportSettings, evaluation_log_settings, report_settings
from kdlab.terms.base import DistillationTerm
from kdlab.terms.pairing import build_terms
from kdlab.tracking import (
    artifact_name,
    finish_wandb,
    flat_config,
    is_wandb,
    log_config,
    log_image,
    run_name,
    run_tags,
    update_summary,
    use_input_model,
)
from kdlab.training.module import DistillationModule

log = logging.getLogger("kdlab.report.evaluate")

# The _target_s a stored config may name: the callables kdlab's own config groups build. results.json is a plain file
# anyone can edit, and Hydra calls whatever a _target_ names (os.system; torch.hub.load runs a local hubconf.py), so
# every other target is refused before anything is built. A dotted path with a private part (``_internal``) never is.
ALLOWED_TARGET_PREFIXES = (
    "kdlab.data.",
    "kdlab.models.",
    "kdlab.terms.",
    "torch.optim.",
    "torch.nn.",
    "torchvision.models.",
    "pytorch_lightning.callbacks.",  # conf/callbacks/: checkpointing and LR monitoring, never run by evaluate
    "kdlab.training.callbacks.",
)
ALLOWED_TARGETS = (
    "timm.create_model",
    "kdlab.teacher.members.build_ensemble_teacher",
    "kdlab.tracking.wandb_logger",
    "pytorch_lightning.Trainer",
    "pytorch_lightning.loggers.CSVLogger",
)


def evaluate_run(run_dir: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Recompute ``run_dir``'s report (with ``post.*`` ``overrides``), store it in its results.json and return it."""
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    cfg = run_config(results, overrides)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule: InMemoryDataModule = build(data_source_config(cfg.data))
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    student = build_model(cfg.student.model, role="student", **shape)
    load_into(student, run_dir / "student.pt", cfg.student.name, **shape)
    teacher = build_model(cfg.teacher.model, role="teacher", **shape)
    load_into(teacher, _teacher_path(results), cfg.teacher.name, **shape)
    settings = report_settings(cfg)
    names = {"student_name": settings.student_name, "teacher_name": settings.teacher_name}
    terms = build_terms(cfg.kd.terms, student, teacher, datamodule, **names) if _fine_tunes(settings) else {}
    module = _distillation_module(settings, terms, student, teacher, datamodule)
    _, flat = build_report(settings, run_dir, module, datamodule, reuse_pruned=True)
    kept = {key: value for key, value in results.items() if not is_report_key(key)}
    kept["config"] = {**results["config"], "post": OmegaConf.to_container(cfg.post, resolve=True)}
    write_json(run_dir / "results.json", {**kept, **flat, result_keys.REPORT_SOURCE: "kdlab.report.evaluate"})
    log_evaluation(evaluation_log_settings(cfg), run_dir, results, flat)
    return flat


def log_evaluation(
    settings: EvaluationLogSettings, run_dir: Path, results: dict[str, Any], flat: dict[str, Any]
) -> None:
    """With a W&B logger: a ``job_type=evaluate`` run (folder ``<run dir>/evaluate/``) whose input is the run's
    student artifact, holding the post settings, the redrawn ``report.png`` and the new numbers in its summary."""
    if not is_wandb(settings.logger):
        return
    choices = results.get("choices") or {  # as kdlab.run.wandb_run named the run when Hydra was not there
        "kd": ",".join(settings.kd_terms) or "none", "teacher": settings.teacher_name, "student": settings.student_name
    }  # fmt: skip
    producer = run_name(choices, settings.seed)  # the distilling run's name, which its student artifact carries
    save_dir = run_dir / "evaluate"
    save_dir.mkdir(exist_ok=True)
    tags = run_tags(settings.tags, ["evaluate"])
    logger = build(settings.logger, save_dir=str(save_dir), name=f"evaluate-{producer}", job_type="evaluate", tags=tags)
    try:
        run = logger.experiment
        log_config(run, {**flat_config({"post": settings.post}), "source_run": str(run_dir)})
        metadata = {"student": settings.student_name, "teacher": settings.teacher_name, "seed": settings.seed}
        use_input_model(run, artifact_name("student", producer), run_dir / "student.pt", metadata)
        log_image(run, "report/plot", run_dir / "report.png")
        update_summary(run, flat)
    except BaseException:
        finish_wandb(exit_code=1)
        raise
    finish_wandb()


def read_results(run_dir: Path) -> dict[str, Any]:
    """The run's results.json, checked to be a completed kdlab run with its student weights beside it."""
    path = run_dir / "results.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no results.json: not a kdlab run dir (pass the folder a run wrote)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from exc
    if results.get("status") != "completed" or "config" not in results:
        raise ConfigError(
            f"{run_dir} holds a run with status '{results.get('status')}': only completed runs have a report"
        )
    if not (run_dir / "student.pt").is_file():
        raise ConfigError(f"{run_dir} has no student.pt: the distilled student's weights are needed for the report")
    return results


def run_config(results: dict[str, Any], overrides: Sequence[str] = ()) -> DictConfig:
    """The stored config, with the default ``post`` node for runs older than it and ``post.*`` overrides on top."""
    bad = [item for item in overrides if not item.startswith("post.") or "=" not in item]
    if bad:
        raise ConfigError(
            f"kdlab-evaluate takes only post.<key>=<value> overrides (model and data are fixed), got {bad}"
        )
    defaults = OmegaConf.load(Path(config_dir()) / "post" / "default.yaml")
    cfg = OmegaConf.merge(
        {"post": defaults}, OmegaConf.create(results["config"]), OmegaConf.from_dotlist(list(overrides))
    )
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the config stored in results.json does not resolve: {exc}") from exc
    check_targets(resolved)
    check_post_config(cfg.post)
    changed = _non_default(OmegaConf.to_container(cfg.post, resolve=True), OmegaConf.to_container(defaults))
    log.info("post settings (the last report's, then the overrides): %s", changed or "all defaults")
    return cfg


def _non_default(post: dict[str, Any], defaults: dict[str, Any], prefix: str = "post.") -> str:
    """``post.quantize=qat post.qat_teacher=False``: what this report runs with beyond the defaults. results.json keeps
    the post settings of its last report, so an earlier evaluation's ``post.qat_teacher=false`` still holds."""
    parts = []
    for key, value in post.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            parts.append(_non_default(value, default, f"{prefix}{key}."))
        elif value != default:
            parts.append(f"{prefix}{key}={value}")
    return " ".join(part for part in parts if part)


def check_targets(node: Any, where: str = "") -> None:
    """Raise :class:`ConfigError` naming the first ``_target_`` in ``node`` (a plain container) that is not one
    kdlab's config groups build (:data:`ALLOWED_TARGETS`, :data:`ALLOWED_TARGET_PREFIXES`)."""
    if isinstance(node, list):
        for i, child in enumerate(node):
            check_targets(child, f"{where}[{i}]")
        return
    if not isinstance(node, dict):
        return
    target = node.get("_target_")
    if target is not None and not is_allowed_target(target):
        key = f"{where}._target_" if where else "_target_"
        raise ConfigError(
            f"results.json sets {key}={target!r}, which kdlab-evaluate does not build: only "
            f"{', '.join(ALLOWED_TARGETS)} and {', '.join(p + '*' for p in ALLOWED_TARGET_PREFIXES)} (edited by hand?)"
        )
    for key, child in node.items():
        check_targets(child, f"{where}.{key}" if where else str(key))


def is_allowed_target(target: Any) -> bool:
    """``target`` is a dotted path kdlab's own config groups may name (no private part)."""
    if not isinstance(target, str) or any(part.startswith("_") for part in target.split(".")):
        return False
    return target in ALLOWED_TARGETS or target.startswith(ALLOWED_TARGET_PREFIXES)


def _teacher_path(results: dict[str, Any]) -> Path:
    path = results.get(result_keys.TEACHER_PATH)
    if not path or not Path(path).is_file():
        raise ConfigError(
            f"the run's teacher weights ({path}) are gone (teacher cache cleared?): rerun the run to retrain it"
        )
    return Path(path)


def _fine_tunes(settings: ReportSettings) -> bool:
    """The pruning and QAT fine-tunes train the student again, with fresh terms; the other post steps never do."""
    return settings.finetune.prune is not None or settings.quantize == "qat"


def _distillation_module(
    settings: ReportSettings,
    terms: dict[str, DistillationTerm],
    student: nn.Module,
    teacher: nn.Module,
    datamodule: InMemoryDataModule,
) -> DistillationModule:
    """The run's distillation setup again: only the pruning and QAT fine-tunes train it."""
    return DistillationModule(
        student,
        datamodule.num_classes,
        teacher=teacher,
        terms=terms,
        weights=settings.finetune.kd_weights if terms else {},
        alpha=settings.finetune.kd_alpha,
        **build_optim(settings.finetune.optim),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdlab-evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a folder written by `python -m kdlab` (holds results.json)")
    parser.add_argument("overrides", nargs="*", help="post.* overrides, e.g. post.quantize=int8 post.prune=0.5")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    try:
        evaluate_run(args.run_dir, args.overrides)
    except ConfigError as error:
        print(f"kdlab-evaluate: error: {error}", file=sys.stderr)
        return 2
    print(f"report written to {args.run_dir / 'results.json'} and {args.run_dir / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
