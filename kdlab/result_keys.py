"""The flat keys of ``results.json`` (and of the W&B summary), defined once.

Flat ``role/metric`` keys let a sweep report, a dashboard or pandas read a run without knowing its config. Every fixed
key is a constant here and is listed, with what it means, in :data:`DOCUMENTED` (README's results table is checked
against it); keys with a name inside (a report role, an ensemble member, a generation) are built by the functions below.
"""

from __future__ import annotations

STATUS = "status"
SEED = "seed"
DATA_NAME = "data/name"
KD_METHOD = "kd/method"
WALL_TIME = "wall_time_s"
RETENTION = "retention"
PARAM_RATIO = "param_ratio"
WANDB_DIR = "wandb/dir"
RESUMED_FROM = "resumed_from"
RESUMED_AT_STEP = "resumed_at_step"

TEACHER_NAME = "teacher/name"
TEACHER_SOURCE = "teacher/source"
TEACHER_PATH = "teacher/path"
TEACHER_TEST_ACC = "teacher/test_acc"
TEACHER_TEST_ACC_TOP5 = "teacher/test_acc_top5"
TEACHER_PARAMS = "teacher/params"
TEACHER_OUTPUTS_SOURCE = "teacher/outputs_source"
TEACHER_MEMBERS = "teacher/members"

STUDENT_NAME = "student/name"
STUDENT_TEST_ACC = "student/test_acc"
STUDENT_TEST_ACC_TOP5 = "student/test_acc_top5"
STUDENT_TEST_ACC_BEST_CKPT = "student/test_acc_best_ckpt"
STUDENT_BEST_VAL_ACC = "student/best_val_acc"
STUDENT_VAL_ACC = "student/val_acc"
STUDENT_TEST_AGREEMENT = "student/test_agreement"
STUDENT_TEST_KL = "student/test_kl_to_teacher"
STUDENT_PARAMS = "student/params"
STUDENT_CHECKPOINT = "student/checkpoint"
STUDENT_TRAIN_LOSS = "student/train_loss"
STUDENT_VAL_LOSS = "student/val_loss"

GENERATIONS = "generations"
GENERATIONS_ENSEMBLE_TEST_ACC = "generations/ensemble_test_acc"
GENERATIONS_ENSEMBLE_ALL_TEST_ACC = "generations/ensemble_all_test_acc"

REPORT_SOURCE = "report/source"

DOCUMENTED: dict[str, str] = {
    STATUS: "completed | failed",
    SEED: "the run's seed",
    DATA_NAME: "the data set",
    KD_METHOD: "the `kd=` choice (or the term names)",
    WALL_TIME: "seconds from start to results",
    RETENTION: "student / teacher test accuracy",
    PARAM_RATIO: "teacher / student parameters",
    WANDB_DIR: "the W&B run folder (offline runs sync from there)",
    RESUMED_FROM: "the checkpoint the run continued from, or null",
    RESUMED_AT_STEP: "the optimiser step it continued at",
    TEACHER_NAME: "the teacher's timm name (`ensemble` for an ensemble)",
    TEACHER_SOURCE: "trained | cache | checkpoint | pretrained+finetuned | ensemble",
    TEACHER_PATH: "the teacher's weights file",
    TEACHER_TEST_ACC: "teacher top-1 on the test split",
    TEACHER_TEST_ACC_TOP5: "teacher top-5 (more than 5 classes)",
    TEACHER_PARAMS: "teacher parameters",
    TEACHER_OUTPUTS_SOURCE: "online | computed | cache | replay: where the teacher's outputs came from",
    TEACHER_MEMBERS: "an ensemble's member names",
    STUDENT_NAME: "the student's timm name",
    STUDENT_TEST_ACC: "student top-1 on the test split, last epoch",
    STUDENT_TEST_ACC_TOP5: "student top-5 (more than 5 classes)",
    STUDENT_TEST_ACC_BEST_CKPT: "student top-1 of the best-validation epoch",
    STUDENT_BEST_VAL_ACC: "best validation accuracy over epochs (what sweeps rank on)",
    STUDENT_VAL_ACC: "validation accuracy of the last epoch",
    STUDENT_TEST_AGREEMENT: "fraction of test images where student and teacher predict the same class",
    STUDENT_TEST_KL: "KL(teacher ‖ student) at T = 1 on the test split",
    STUDENT_PARAMS: "student parameters",
    STUDENT_CHECKPOINT: "the distilled student's weights (`student.pt`)",
    STUDENT_TRAIN_LOSS: "last epoch's mean training loss",
    STUDENT_VAL_LOSS: "last epoch's validation cross-entropy",
    GENERATIONS: "born-again generations after generation 0",
    GENERATIONS_ENSEMBLE_TEST_ACC: "born-again: ensemble of generations 1..N",
    GENERATIONS_ENSEMBLE_ALL_TEST_ACC: "born-again: ensemble of generations 0..N",
    REPORT_SOURCE: "`kdlab.report.evaluate` when the report was recomputed later",
}


def member_key(label: str, field: str) -> str:
    """An ensemble member's value: ``teacher/members/<label>/<field>`` (test_acc, source, path, params)."""
    return f"teacher/members/{label}/{field}"


def generation_key(generation: int, field: str) -> str:
    """A born-again generation's value: ``generations/<k>/<field>`` (test_acc, checkpoint)."""
    return f"{GENERATIONS}/{generation}/{field}"


def report_key(role: str, field: str) -> str:
    """A compression-report cell: ``report/<role>/<field>`` (role: teacher, student, baseline, student+int8 …)."""
    return f"report/{role}/{field}"
