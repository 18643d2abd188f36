"""One kdlab run: check the config, get the teacher, distil the student, test both, write results once."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from kdlab import result_keys
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.data.transfer import data_source_config, omitted_classes, restrict_transfer_set
from kdlab.datafree import DataFreeTransfer, GeneratorSettings, data_free_transfer, log_synthesis, transfer_mode
from kdlab.instantiate import build, build_optim
from kdlab.measure.params import count_parameters
from kdlab.models import build_model
from kdlab.models.files import save_model
from kdlab.post.finetune import check_fine_tunes_fit_terms
from kdlab.post.settings import finetune_settings
from kdlab.report.omitted_bias import omitted_bias_metrics
from kdlab.report.run_report import finish_report
from kdlab.report.settings import report_settings
from kdlab.run.results import hydra_choices, write_results
from kdlab.run.summary import print_summary
from kdlab.run.validate import has_teacher, validate_config
from kdlab.run.wandb_run import finish_run, make_logger, start_run
from kdlab.teacher.cache import teacher_seed
from kdlab.teacher.output_cache import TeacherOutputsPlan, teacher_outputs_plan
from kdlab.teacher.prepare import prepare_teacher
from kdlab.teacher.recipe import outputs_settings, teacher_recipe
from kdlab.teacher.replay import replay_plan
from kdlab.teacher.source import TeacherSource
from kdlab.terms.pairing import build_terms
from kdlab.tracking import finish_wandb
from kdlab.training.callbacks import build_callbacks
from kdlab.training.checkpoint_io import AtomicCheckpointIO, best_score
from kdlab.training.evaluator import evaluate_model
from kdlab.training.module import DistillationModule, check_weights, metric_collection
from kdlab.training.resume import (
    CHECKPOINT_DIR,
    ResumePlan,
    plan_resume,
    resumable_state,
    resume_callbacks,
    resume_mode,
    run_signature,
)
from kdlab.training.seeding import seeded
from kdlab.training.speed import compile_model, to_channels_last, to_contiguous
from kdlab.training.teacher_outputs import TeacherOutputTable, TeacherTaps
from kdlab.training.trainer import leave_process_group, make_trainer

log = logging.getLogger(__name__)

FIT_LOSSES = ("train/loss_epoch", "val/loss_ce")  # last epoch's means, synced over DDP ranks


@dataclass
class RunSetup:
    """What a run builds before the student's first step. Every config error is raised while building it."""

    datamodule: InMemoryDataModule
    shape: dict[str, int]
    student: nn.Module
    teacher: nn.Module | None
    terms: dict[str, nn.Module]
    optim: dict[str, Any]
    signature: dict[str, Any]
    config: dict[str, Any]
    resume: ResumePlan
    source: TeacherSource
    outputs: TeacherOutputsPlan
    teacher_metrics: dict[str, float]
    omitted: list[int]  # classes the student's transfer set leaves out (data.transfer_*_classes)
    data_free: DataFreeTransfer | None = None  # kd.transfer=generator: the generator phase and its records


def set_up(cfg: DictConfig, out_dir: Path) -> RunSetup:
    """Check the config, build data, models and terms, find the checkpoint to resume, then get the teacher."""
    validate_config(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule: InMemoryDataModule = build(data_source_config(cfg.data))
    omitted = omitted_classes(cfg.data, datamodule.num_classes)
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    student = build_model(cfg.student.model, role="student", **shape)
    teacher = None  # teacher=none: self-distillation (kd=tfkd) or the plain baseline
    if has_teacher(cfg):
        with seeded(teacher_seed(cfg)):  # the teacher's init and training follow teacher_seed only
            teacher = build_model(cfg.teacher.model, role="teacher", **shape)
    names = {"student_name": str(cfg.student.name), "teacher_name": str(cfg.teacher.name)}
    terms = build_terms(cfg.kd.terms, student, teacher, datamodule, **names)  # bad stages, dims, teacher=none fail
    qat = (cfg.get("post") or {}).get("quantize") == "qat"
    check_fine_tunes_fit_terms(finetune_settings(cfg), qat, terms, teacher is not None)  # not after the training
    optim = build_optim(cfg.optim)
    check_weights(terms, cfg.kd.weights, cfg.kd.alpha)
    signature = run_signature(cfg.student.name, cfg.teacher.name, **shape, terms=terms)
    config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "resume"}
    mode = resume_mode(cfg.get("resume", "auto"))  # a foreign or torn checkpoint fails here, before the teacher
    resume = plan_resume(out_dir, mode, signature, resumable_state(student, terms), config)
    if cfg.get("channels_last") and "ddp" not in str(cfg.trainer.get("strategy", "")):
        # single process only: under DDP, NHWC weights' gradients no longer match the bucket views exactly
        for model in (student, teacher):
            if model is not None:
                to_channels_last(model)
    source, outputs, teacher_metrics = TeacherSource("none", Path()), TeacherOutputsPlan("none"), {}
    if teacher is not None:
        with seeded(teacher_seed(cfg)):
            source = prepare_teacher(teacher, teacher_recipe(cfg), datamodule, out_dir)
    restrict_transfer_set(datamodule, omitted)  # the student's training split only; the teacher saw every class
    data_free = None
    if teacher is not None and transfer_mode(cfg.kd) == "generator":  # from here on no real training image is read
        generator = GeneratorSettings.of(cfg.kd)
        accelerator = str(cfg.trainer.get("accelerator", "auto"))
        data_free = data_free_transfer(generator, int(cfg.seed), accelerator, teacher, datamodule, out_dir)
        datamodule = data_free.datamodule
    if teacher is not None:
        taps = TeacherTaps.of(terms.values())
        # replay (random augmentation, logits only) first; else the output cache (fixed inputs) or the teacher online
        plan = outputs_settings(cfg)
        outputs = replay_plan(plan, teacher, datamodule, taps) or teacher_outputs_plan(plan, teacher, datamodule, taps)
        teacher_metrics = teacher_test_metrics(teacher, datamodule, outputs.table, cfg.trainer)
    return RunSetup(
        datamodule,
        shape,
        student,
        teacher,
        terms,
        optim,
        signature,
        config,
        resume,
        source,
        outputs,
        teacher_metrics,
        omitted,
        data_free,
    )


def teacher_test_metrics(teacher, datamodule, table: TeacherOutputTable | None, trainer_cfg) -> dict:
    """The teacher's test metrics: from its cached test logits when the output table has them and the whole test
    split is tested (as the student is), else a test pass."""
    limit = trainer_cfg.get("limit_test_batches", 1.0)  # Lightning: an int counts batches, a float is a fraction
    whole_split = limit is None or (isinstance(limit, float) and limit == 1.0)
    if table is not None and table.covers("test") and whole_split:
        metrics = metric_collection(datamodule.num_classes, "test/")
        index = torch.arange(len(datamodule.test))
        metrics.update(table.lookup(index, "test").logits.float(), datamodule.test.targets)
        return {k: float(v) for k, v in metrics.compute().items()}
    return evaluate_model(teacher, datamodule, trainer_cfg)


def run_single(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run one experiment into ``out_dir`` and return its flat metrics (also written to ``results.json``)."""
    started = time.perf_counter()
    setup = set_up(cfg, out_dir)
    if cfg.get("compile"):
        compile_model(setup.student)
        if setup.outputs.table is None and setup.teacher is not None:
            compile_model(setup.teacher)
    module = DistillationModule(
        setup.student,
        setup.datamodule.num_classes,
        teacher=setup.teacher,
        terms=setup.terms,
        weights=cfg.kd.weights,
        alpha=cfg.kd.alpha,
        teacher_outputs=setup.outputs.table,
        **setup.optim,
    )
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    logger = make_logger(cfg, out_dir, setup.terms)
    if logger:
        teacher_files = setup.source.members or [(str(cfg.teacher.name), setup.source.path)]
        start_run(logger, cfg, teacher_files, setup.datamodule.name)
        if setup.data_free is not None:
            log_synthesis(logger, setup.data_free)
    best, configured = build_callbacks(cfg.get("callbacks"), out_dir / CHECKPOINT_DIR, has_logger=bool(logger))
    every = cfg.get("checkpoint_every_n_steps")
    callbacks = [best, *configured, *resume_callbacks(out_dir / CHECKPOINT_DIR, setup.signature, setup.config, every)]
    trainer = make_trainer(cfg.trainer, out_dir, logger=logger, callbacks=callbacks, plugins=[AtomicCheckpointIO()])
    try:
        trainer.fit(module, datamodule=setup.datamodule, ckpt_path=setup.resume.checkpoint, weights_only=True)
        fitted = trainer.callback_metrics  # empty when a finished run is resumed: nothing left to train
        last_epoch = {f"student/{k.split('/')[0]}_loss": float(fitted[k]) if k in fitted else None for k in FIT_LOSSES}
        final_val_acc = fitted.get("val/acc")
        trainer.loggers = []  # test numbers go to the summary at the end, not into history as one-point charts
        student_metrics = trainer.test(module, datamodule=setup.datamodule, verbose=False)[0]
        leave_process_group()  # from here on rank 0 works alone
        for model in (setup.student, setup.teacher):  # the report times both, pruning and export need NCHW
            if model is not None:
                to_contiguous(model)
        if not trainer.is_global_zero:  # under DDP every rank runs this function; rank 0 alone writes
            return {}
        metrics = _collect(cfg, setup, module, student_metrics, best, started)
        metrics.update({**last_epoch, **setup.resume.results()})
        student_path = save_model(out_dir / "student.pt", setup.student, cfg.student.name, **setup.shape)
        metrics[result_keys.STUDENT_CHECKPOINT] = str(student_path)
        metrics[result_keys.STUDENT_VAL_ACC] = float(final_val_acc) if final_val_acc is not None else None
        metrics.update(finish_report(report_settings(cfg), out_dir, module, setup.datamodule, logger))
        if setup.omitted:  # Hinton et al. 2015 §3's bias fix, on the last epoch's weights like student/test_acc
            metrics.update(omitted_bias_metrics(setup.student, setup.datamodule, setup.omitted))
        # last: testing the best checkpoint loads its weights into the module
        metrics[result_keys.STUDENT_TEST_ACC_BEST_CKPT] = _test_best_checkpoint(cfg, module, setup.datamodule, best)
        if logger:
            metrics[result_keys.WANDB_DIR] = getattr(getattr(logger, "experiment", None), "dir", None)
            finish_run(logger, cfg, out_dir, metrics)
    except BaseException:
        finish_wandb(exit_code=1)  # the dashboard shows a crashed job as failed, not finished
        raise
    finish_wandb()
    write_results(cfg, out_dir, metrics)
    print_summary(metrics)
    return metrics


def _test_best_checkpoint(cfg, module, datamodule, best: ModelCheckpoint) -> float | None:
    """Test accuracy of the best-val epoch's weights: the "best" number a sweep reports, chosen on val, not test."""
    if not best.best_model_path:
        return None
    tester = make_trainer(cfg.trainer, Path(best.dirpath), quiet=True, enable_progress_bar=False)
    with warnings.catch_warnings():  # Lightning asks for the ModelCheckpoint callback, which testing does not need
        warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint.*")
        return tester.test(
            module, datamodule=datamodule, ckpt_path=best.best_model_path, verbose=False, weights_only=True
        )[0]["test/acc"]


def _collect(cfg, setup: RunSetup, module, student_metrics, best, started) -> dict[str, Any]:
    teacher_metrics, source, datamodule = setup.teacher_metrics, setup.source, setup.datamodule
    teacher_acc, student_acc = teacher_metrics.get("test/acc"), student_metrics["test/acc"]
    s_params = count_parameters(module.student)
    t_params = count_parameters(module.teacher.model) if module.teacher is not None else None
    metrics = {
        result_keys.DATA_NAME: datamodule.name,
        result_keys.KD_METHOD: hydra_choices().get("kd", ",".join(cfg.kd.terms or {}) or "none"),
        "seed": cfg.seed,
        result_keys.TEACHER_NAME: cfg.teacher.name,
        result_keys.TEACHER_SOURCE: source.kind,
        result_keys.TEACHER_PATH: str(source.path),
        result_keys.TEACHER_TEST_ACC: teacher_acc,
        result_keys.TEACHER_TEST_ACC_TOP5: teacher_metrics.get("test/acc_top5"),
        result_keys.TEACHER_PARAMS: t_params,
        result_keys.STUDENT_NAME: cfg.student.name,
        result_keys.STUDENT_TEST_ACC: student_acc,
        result_keys.STUDENT_TEST_ACC_TOP5: student_metrics.get("test/acc_top5"),
        result_keys.STUDENT_TEST_AGREEMENT: student_metrics.get("test/agreement"),
        result_keys.STUDENT_TEST_KL: student_metrics.get("test/kl_to_teacher"),
        result_keys.STUDENT_BEST_VAL_ACC: best_score(best),
        result_keys.STUDENT_PARAMS: s_params,
        result_keys.RETENTION: student_acc / teacher_acc if teacher_acc else None,
        result_keys.PARAM_RATIO: t_params / s_params if t_params is not None else None,
        result_keys.WALL_TIME: time.perf_counter() - started,
    }
    metrics.update(source.report)
    metrics[result_keys.TEACHER_OUTPUTS_SOURCE] = setup.outputs.source
    metrics[result_keys.KD_TRANSFER] = transfer_mode(cfg.kd)
    if setup.data_free is not None:
        metrics.update(setup.data_free.metrics)
    return metrics
