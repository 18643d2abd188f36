"""Experiment tracking: the W&B logger, what a run is called and holds (flat config, name, job type, tags), its
artifacts and images (teacher -> student lineage), and reading an offline run back.

Public names: the logger (``wandb_logger``, ``resolve_wandb_mode``, ``sweep_group``, ``finish_wandb``, ``is_wandb``,
``outside_sweep``), the run's identity and config (``run_config``, ``flat_config``, ``log_config``, ``run_name``,
``run_tags``, ``JOB_TYPES``), lineage and summaries (``artifact_name``, ``teacher_artifact_name``,
``log_output_model``, ``use_input_model``, ``log_image``, ``define_summaries``, ``update_summary``) and
``read_offline_run``.
"""

from kdlab.tracking.config import JOB_TYPES, flat_config, log_config, run_config, run_name, run_tags
from kdlab.tracking.lineage import (
    artifact_name,
    define_summaries,
    log_image,
    log_output_model,
    teacher_artifact_name,
    update_summary,
    use_input_model,
)
from kdlab.tracking.logger import (
    WANDB_MODES,
    finish_wandb,
    is_wandb,
    outside_sweep,
    resolve_wandb_mode,
    sweep_group,
    wandb_logger,
)
from kdlab.tracking.offline import read_offline_run

__all__ = [
    "JOB_TYPES",
    "WANDB_MODES",
    "artifact_name",
    "define_summaries",
    "finish_wandb",
    "flat_config",
    "is_wandb",
    "log_config",
    "log_image",
    "log_output_model",
    "outside_sweep",
    "read_offline_run",
    "resolve_wandb_mode",
    "run_config",
    "run_name",
    "run_tags",
    "sweep_group",
    "teacher_artifact_name",
    "update_summary",
    "use_input_model",
    "wandb_logger",
]
