"""The Lightning side of one fit: the distillation module, the Trainer, resuming, checkpoint files, step logging,
numerical faults, speed switches, seeding, and a plain evaluator for models that are only tested."""

from kdlab.training.evaluator import evaluate_model
from kdlab.training.module import DistillationModule
from kdlab.training.trainer import make_trainer

__all__ = ["DistillationModule", "evaluate_model", "make_trainer"]
