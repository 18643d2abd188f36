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
TEACHER_CHECKPOINT_FORMAT = "teacher/checkpoint_format"
TEACHER_PRETRAINED_FILE = "teacher/pretrained_file"
TEACHER_HEAD_REPLACED = "teacher/head_replaced"

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

COHORT = "cohort"  # deep mutual learning (kd=dml)
CHAIN = "chain"  # teacher-assistant chains (kd=takd)

REPORT_SOURCE = "report/source"

# What the student inherits (kdlab.measure.inheritance), from the report's test logits; baseline keys need a kd=none job
TEACHER_TEST_ECE = "teacher/test_ece"
TEACHER_TEST_MEAN_CONFIDENCE = "teacher/test_mean_confidence"
STUDENT_TEST_ECE = "student/test_ece"
STUDENT_TEST_MEAN_CONFIDENCE = "student/test_mean_confidence"
STUDENT_P_WRONG_GIVEN_TEACHER_WRONG = "student/p_wrong_given_teacher_wrong"
STUDENT_P_WRONG_GIVEN_TEACHER_RIGHT = "student/p_wrong_given_teacher_right"
STUDENT_COPIED_ERROR_RATE = "student/copied_error_rate"
STUDENT_COPIED_ERROR_RATE_VS_BASELINE = "student/copied_error_rate_vs_baseline"
BASELINE_TEST_ECE = "baseline/test_ece"
BASELINE_TEST_MEAN_CONFIDENCE = "baseline/test_mean_confidence"
BASELINE_P_WRONG_GIVEN_TEACHER_WRONG = "baseline/p_wrong_given_teacher_wrong"
BASELINE_P_WRONG_GIVEN_TEACHER_RIGHT = "baseline/p_wrong_given_teacher_right"
BASELINE_COPIED_ERROR_RATE = "baseline/copied_error_rate"
CONFUSION_PLOT = "report/confusion_plot"
INHERITANCE_KEYS = (
    TEACHER_TEST_ECE,
    TEACHER_TEST_MEAN_CONFIDENCE,
    STUDENT_TEST_ECE,
    STUDENT_TEST_MEAN_CONFIDENCE,
    STUDENT_P_WRONG_GIVEN_TEACHER_WRONG,
    STUDENT_P_WRONG_GIVEN_TEACHER_RIGHT,
    STUDENT_COPIED_ERROR_RATE,
    STUDENT_COPIED_ERROR_RATE_VS_BASELINE,
    BASELINE_TEST_ECE,
    BASELINE_TEST_MEAN_CONFIDENCE,
    BASELINE_P_WRONG_GIVEN_TEACHER_WRONG,
    BASELINE_P_WRONG_GIVEN_TEACHER_RIGHT,
    BASELINE_COPIED_ERROR_RATE,
)
PER_CLASS_MARK = "/per_class_"  # every per-class key has it: <role>/per_class_acc/<class>, student/per_class_delta_…

# Hinton et al. 2015 §3: a transfer set without some classes, and the output-bias fix chosen afterwards
OMITTED_CLASSES = "student/omitted_classes"
OMITTED_BIAS = "student/omitted_bias"
OMITTED_TEST_ACC_CORRECTED = "student/test_acc_bias_corrected"
OMITTED_TEST_ERRORS = "student/test_errors"
OMITTED_TEST_ERRORS_CORRECTED = "student/test_errors_bias_corrected"
OMITTED_TEST_ERRORS_ON_OMITTED = "student/test_errors_on_omitted"
OMITTED_TEST_ERRORS_ON_OMITTED_CORRECTED = "student/test_errors_on_omitted_bias_corrected"
OMITTED_BIAS_TEST_CHOSEN = "student/omitted_bias_test_chosen"
OMITTED_TEST_ACC_TEST_CHOSEN = "student/test_acc_bias_test_chosen"
# data-free distillation (kd.transfer=generator, kd=dafl)
KD_TRANSFER = "kd/transfer"
GENERATOR_SOURCE = "generator/source"
GENERATOR_STEPS = "generator/steps"
GENERATOR_SECONDS = "generator/seconds"
GENERATOR_LOSS = "generator/loss"
GENERATOR_LOSS_ONE_HOT = "generator/loss_one_hot"
GENERATOR_LOSS_ACTIVATION = "generator/loss_activation"
GENERATOR_LOSS_INFORMATION_ENTROPY = "generator/loss_information_entropy"
GENERATOR_IMAGES = "generator/images"
GENERATOR_TEACHER_CLASS_SHARES = "generator/teacher_class_shares"

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
    TEACHER_CHECKPOINT_FORMAT: "`teacher.checkpoint`'s layout: kdlab | repdistiller | mdistiller | timm | torchvision",
    TEACHER_PRETRAINED_FILE: "the state dict `teacher.pretrained_file` started the teacher from",
    TEACHER_HEAD_REPLACED: "true when that file's classifier had another class count and was replaced",
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
    COHORT: "deep mutual learning (`kd=dml`): cohort size K; member 0 is the run's student",
    CHAIN: "teacher-assistant chain (`kd=takd`): number of links after the teacher (assistants + student)",
    REPORT_SOURCE: "`kdlab.report.evaluate` when the report was recomputed later",
    TEACHER_TEST_ECE: "teacher expected calibration error on test (15 bins, torchmetrics)",
    TEACHER_TEST_MEAN_CONFIDENCE: "teacher mean top-1 softmax probability on test",
    STUDENT_TEST_ECE: "student expected calibration error on test",
    STUDENT_TEST_MEAN_CONFIDENCE: "student mean top-1 softmax probability on test",
    STUDENT_P_WRONG_GIVEN_TEACHER_WRONG: "P(student wrong | teacher wrong) on test",
    STUDENT_P_WRONG_GIVEN_TEACHER_RIGHT: "P(student wrong | teacher right) on test",
    STUDENT_COPIED_ERROR_RATE: "fraction of the teacher's test mistakes the student makes with the same wrong label",
    STUDENT_COPIED_ERROR_RATE_VS_BASELINE: "student − baseline copied-error rate: what distillation transferred",
    BASELINE_TEST_ECE: "the sweep's `kd=none` student: expected calibration error on test",
    BASELINE_TEST_MEAN_CONFIDENCE: "the `kd=none` student: mean top-1 confidence on test",
    BASELINE_P_WRONG_GIVEN_TEACHER_WRONG: "the `kd=none` student: P(wrong | teacher wrong)",
    BASELINE_P_WRONG_GIVEN_TEACHER_RIGHT: "the `kd=none` student: P(wrong | teacher right)",
    BASELINE_COPIED_ERROR_RATE: "the `kd=none` student: copied-error rate",
    CONFUSION_PLOT: "`confusion.png`: test confusion matrices of teacher, baseline and student",
    OMITTED_CLASSES: "classes left out of the student's transfer set (`data.transfer_*_classes`)",
    OMITTED_BIAS: "bias added to the omitted classes' logits, chosen on the validation split",
    OMITTED_TEST_ACC_CORRECTED: "student top-1 on test with that bias",
    OMITTED_TEST_ERRORS: "student test errors before the bias fix",
    OMITTED_TEST_ERRORS_CORRECTED: "student test errors with the validation-chosen bias",
    OMITTED_TEST_ERRORS_ON_OMITTED: "of those, errors on test images of the omitted classes (before the fix)",
    OMITTED_TEST_ERRORS_ON_OMITTED_CORRECTED: "errors on the omitted classes with the validation-chosen bias",
    OMITTED_BIAS_TEST_CHOSEN: "the bias Hinton et al. would pick (best on test; optimistic, reported for comparison)",
    OMITTED_TEST_ACC_TEST_CHOSEN: "student top-1 on test with the test-chosen bias",
    KD_TRANSFER: "data (the training split) | generator (data-free: the student saw only generated images)",
    GENERATOR_SOURCE: "trained | run folder (`generator.pt` reused by a rerun in the same folder)",
    GENERATOR_STEPS: "the generator's optimiser steps against the frozen teacher",
    GENERATOR_SECONDS: "seconds the generator trained",
    GENERATOR_LOSS: "the generator's last logged weighted loss (DAFL's L_G)",
    GENERATOR_LOSS_ONE_HOT: "its last one-hot loss (unweighted)",
    GENERATOR_LOSS_ACTIVATION: "its last activation loss (unweighted)",
    GENERATOR_LOSS_INFORMATION_ENTROPY: "its last information-entropy loss (unweighted)",
    GENERATOR_IMAGES: "`generated.png`: a grid of generated images, one row per teacher-predicted class",
    GENERATOR_TEACHER_CLASS_SHARES: "share of each class in the teacher's predictions on 1,000 generated images",
}


def member_key(label: str, field: str) -> str:
    """An ensemble member's value: ``teacher/members/<label>/<field>`` (test_acc, source, path, params)."""
    return f"teacher/members/{label}/{field}"


def generation_key(generation: int, field: str) -> str:
    """A born-again generation's value: ``generations/<k>/<field>`` (test_acc, checkpoint)."""
    return f"{GENERATIONS}/{generation}/{field}"


def cohort_key(member: int, field: str) -> str:
    """A deep-mutual-learning cohort member's value: ``cohort/<k>/<field>`` (name, test_acc, params, checkpoint …)."""
    return f"{COHORT}/{member}/{field}"


def chain_key(link: int, field: str) -> str:
    """A teacher-assistant chain link's value: ``chain/<k>/<field>`` (k = 0 the teacher, then the assistants, last
    the student; name, test_acc, checkpoint)."""
    return f"{CHAIN}/{link}/{field}"


def per_class_key(role: str, field: str, label: str) -> str:
    """A per-class value: ``<role>/per_class_acc/<class>`` (teacher, baseline, student) and
    ``student/per_class_delta_vs_teacher/<class>``, ``student/per_class_delta_vs_baseline/<class>``."""
    return f"{role}/per_class_{field}/{label}"


def report_key(role: str, field: str) -> str:
    """A compression-report cell: ``report/<role>/<field>`` (role: teacher, student, baseline, student+int8 …)."""
    return f"report/{role}/{field}"
