"""The W&B side of one run: a findable run (name, job type, tags), its flat config, the teacher it learned from as
input, and at the end the student artifact, the report image and the final numbers in the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from kdlab.instantiate import build
from kdlab.run.results import hydra_choices
from kdlab.tracking import (
    artifact_name,
    define_summaries,
    is_wandb,
    log_config,
    log_image,
    log_output_model,
    run_config,
    run_name,
    run_tags,
    teacher_artifact_name,
    update_summary,
    use_input_model,
)

REPORT_IMAGE_KEY = "report/plot"


def make_logger(cfg: DictConfig, out_dir: Path, terms: dict[str, nn.Module] | None = None) -> Any:
    """The configured experiment logger (False for none); a W&B run gets its name, job type and tags."""
    if not cfg.get("logger") or cfg.logger.get("_target_") is None:
        return False
    if not is_wandb(cfg.logger):
        return build(cfg.logger, save_dir=str(out_dir))
    identity = {"name": run_name(run_choices(cfg), cfg.seed), "job_type": job_type(cfg)}
    return build(cfg.logger, save_dir=str(out_dir), tags=run_tags(cfg.get("tags"), families(terms or {})), **identity)


def run_choices(cfg: DictConfig) -> dict[str, str]:
    """Hydra's group choices; composed without Hydra (tests, ``kdlab.run.run``), the method and the two models."""
    fallback = {"kd": ",".join(cfg.kd.terms or {}) or "none", "teacher": cfg.teacher.name, "student": cfg.student.name}
    return hydra_choices() or fallback


def job_type(cfg: DictConfig) -> str:
    """``baseline`` for the student trained alone (no terms, alpha 0), else ``distill``."""
    return "baseline" if not cfg.kd.terms and not cfg.kd.alpha else "distill"


def families(terms: dict[str, nn.Module]) -> list[str]:
    """The knowledge families of the run's terms: the ``kdlab.terms`` module each comes from."""
    return sorted({type(term).__module__.rsplit(".", 1)[-1] for term in terms.values()})


def start_run(logger: Any, cfg: DictConfig, teacher_files: list[tuple[str, Path]], data_name: str) -> None:
    """Flat config with the group choices, best-of summaries, and the teacher's weight files (an ensemble's
    members) as the run's inputs: ``teacher_files`` holds (teacher name, file) pairs."""
    if not is_wandb(cfg.logger):
        if logger:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        return
    run = logger.experiment
    if not _is_live(run):
        return
    log_config(run, run_config(OmegaConf.to_container(cfg, resolve=True), run_choices(cfg)))
    define_summaries(run)
    if job_type(cfg) != "distill":
        return
    for name, path in teacher_files:
        if Path(path).is_file():
            metadata = {"teacher": name, "data": data_name}
            use_input_model(run, teacher_artifact_name(name, data_name), Path(path), metadata)


def finish_run(logger: Any, cfg: DictConfig, out_dir: Path, metrics: dict[str, Any]) -> None:
    """The student as an output artifact, ``report.png`` as an image, the final numbers in the summary only."""
    if not is_wandb(cfg.logger):
        if logger:
            logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        return
    run = logger.experiment
    if not _is_live(run):
        return
    student = out_dir / "student.pt"
    if student.is_file():
        metadata = {"student": str(cfg.student.name), "teacher": str(cfg.teacher.name), "seed": cfg.seed}
        log_output_model(run, artifact_name("student", run.name or str(cfg.student.name)), student, metadata)
    log_image(run, REPORT_IMAGE_KEY, out_dir / "report.png")
    update_summary(run, metrics)


def _is_live(run: Any) -> bool:
    """A real W&B run: not Lightning's stand-in on DDP ranks other than 0, whose every attribute is a no-op function."""
    return not callable(getattr(run, "config", None))
