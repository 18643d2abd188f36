"""The compression report that ends every run: what distillation bought in accuracy, size and speed.

Rows: the teacher, the sweep's baseline student (``kd=none``) when there is one, the distilled student, and, when
``post`` asks for them, its int8 (PTQ; QAT with or without the teacher) and its pruned-then-distilled versions. Every
row is measured by ``kdlab.measure`` on the same test split, input shape and thread count; ratios are against the
teacher, the way DistilBERT reports "40% smaller, 60% faster, 97% of the accuracy retained"
(Sanh et al., arXiv:1910.01108).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.utilities import rank_zero_only
from rich.console import Console
from torch import nn

from kdlab import result_keys
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.measure import is_quantized
from kdlab.measure.accuracy import predict_logits
from kdlab.measure.inference import evaluating
from kdlab.models import build_model
from kdlab.models.files import load_into, load_model_file, save_model
from kdlab.post import (
    check_onnx,
    export_onnx,
    quantization_mode,
    quantize_int8,
    simulation_gap,
    weight_codes,
    weight_sparsity,
)
from kdlab.post.channels import pruned_structure, restore_structure
from kdlab.post.finetune import prune_and_distil, qat_and_distil
from kdlab.report.baseline import load_baseline
from kdlab.report.inheritance import (
    CONFUSION_PNG,
    ROLES,
    inheritance_metrics,
    is_inheritance_key,
    log_confusion_image,
    plot_confusion_matrices,
)
from kdlab.report.plots import plot_accuracy_vs_cost
from kdlab.report.settings import ReportSettings
from kdlab.report.table import LARGE_BATCH, ModelReport, add_ratios, compression_report, render_table, report_to_dict
from kdlab.training.module import DistillationModule

log = logging.getLogger(__name__)

REPORT_PNG = "report.png"
PRUNED_FILE = "student-pruned.pt"
ONNX_FILE = "student.onnx"
ONNX_TOLERANCE = 1e-4
REPORT_KEY_PREFIXES = ("report/", "post/", "student/onnx_")
Models = dict[str, tuple[nn.Module, str]]


def finish_report(
    settings: ReportSettings,
    out_dir: Path,
    module: DistillationModule,
    datamodule: InMemoryDataModule,
    logger: Any = None,
) -> dict[str, Any]:
    """Measure the run's models, run the ``post`` steps, print the table, write ``report.png`` and log the table to
    W&B when ``logger`` is a WandbLogger. Returns flat metrics (``report/<role>/<field>``, ``post/…``) to merge
    into results.json; the pipeline's own logging then sends the numbers to the logger's summary."""
    if rank_zero_only.rank != 0:  # plain DDP runs the pipeline on every rank; one report, timed without contention
        return {}
    rows, flat = build_report(settings, Path(out_dir), module, datamodule)
    _log_wandb_table(logger, rows)
    log_confusion_image(logger, Path(flat[result_keys.CONFUSION_PLOT]))
    return flat


def build_report(
    settings: ReportSettings,
    run_dir: Path,
    module: DistillationModule,
    datamodule: InMemoryDataModule,
    *,
    reuse_pruned: bool = False,
) -> tuple[list[ModelReport], dict[str, Any]]:
    """Rows with ratios, and their flat form; ``reuse_pruned`` loads ``student-pruned.pt`` when it matches ``post``."""
    started = time.perf_counter()
    student = module.student.cpu()
    models: Models = {}
    if module.teacher is not None:  # teacher=none (self-distillation): ratios are against the baseline or student
        models["teacher"] = (module.teacher.model.cpu(), settings.teacher_name)
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    baseline = load_baseline(run_dir, settings, data_name=datamodule.name, **shape)
    if baseline is not None:
        models["baseline"] = (baseline, settings.student_name)
    models["student"] = (student, settings.student_name)
    test_batches = datamodule.split_batches("test")  # streamed sets: decoded again per pass, never held
    input_shape = datamodule.input_shape
    extras: dict[str, Any] = {}
    if settings.quantize in ("int8", "qat"):
        _run_step("int8", extras, lambda: _add_int8(models, student, settings, datamodule))
    if settings.quantize == "qat":
        _run_step("qat", extras, lambda: _add_qat(models, module, settings, datamodule, run_dir))
    if settings.finetune.prune is not None:
        _run_step("prune", extras, lambda: _add_pruned(models, module, settings, datamodule, run_dir, reuse_pruned))
    if settings.export == "onnx":
        _run_step("export", extras, lambda: _export_onnx(student, input_shape, test_batches, run_dir))
    fp32 = {role: predict_logits(model.cpu(), test_batches) for role, (model, _) in models.items() if role in ROLES}
    targets = fp32["student"][1]
    on_cpu = {role: (model if is_quantized(model) else model.cpu(), name) for role, (model, name) in models.items()}
    measured = compression_report(  # all on CPU: a fine-tune on a GPU must not leave one row timed there
        on_cpu,
        test_batches,
        input_shape,
        datamodule.num_classes,
        threads=settings.latency_threads,
        warmup=settings.latency_warmup,
        repeats=settings.latency_repeats,
        logits=fp32,
    )
    rows = add_ratios(measured, reference_role=next(iter(models)))
    flat = {
        "report/roles": [row.role for row in rows],
        "report/test_samples": len(targets),
        **{f"report/{key}": value for key, value in report_to_dict(rows).items()},
        **_versus_student(rows),
        **extras,
    }
    flat["report/plot"] = str(plot_accuracy_vs_cost([asdict(row) for row in rows], run_dir / REPORT_PNG))
    logits = {role: outputs[0] for role, outputs in fp32.items()}
    if "teacher" in logits:  # what the student inherited needs a teacher (teacher=none: self-distillation)
        flat.update(inheritance_metrics(logits, targets, datamodule.num_classes))
    confusion = plot_confusion_matrices(logits, targets, datamodule.num_classes, run_dir / CONFUSION_PNG)
    flat[result_keys.CONFUSION_PLOT] = str(confusion)
    flat["report/wall_time_s"] = time.perf_counter() - started
    print_report(rows, flat)
    return rows, flat


def is_report_key(key: str) -> bool:
    """Keys written by the report (replaced as a whole when ``kdlab.report.evaluate`` recomputes it)."""
    return key.startswith(REPORT_KEY_PREFIXES) or is_inheritance_key(key)


def print_report(rows: list[ModelReport], flat: Mapping[str, Any]) -> None:
    """The table, then one line per compressed student against the fp32 student, the ONNX check and any failure."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a log file: do not squeeze 12 columns into 80
    console.print(render_table(rows))
    for line in speed_lines(rows):
        console.print(line)
    for row in rows:
        if row.role not in ("teacher", "student") and f"report/{row.role}/vs_student_size_reduction" in flat:
            console.print(_versus_line(row.role, flat))
    if "student/onnx_max_abs_diff" in flat:
        diff, relative = flat["student/onnx_max_abs_diff"], flat["student/onnx_max_rel_diff"]
        scale = flat["student/onnx_max_abs_logit"]
        console.print(
            f"student.onnx: max |onnxruntime − torch| = {diff:.2e} on test inputs "
            f"({relative:.1e} of the largest |logit|, {scale:.1f})"
        )
    for key in [k for k in flat if k.endswith("_error")]:
        console.print(f"[red]{key}: {flat[key]}[/red]")


def speed_lines(rows: list[ModelReport]) -> list[str]:
    """The distilled student's speed-up over the teacher at batch 1 and batch 32, and one warning line when it is not
    faster at either: a student that is slower on this device defeats the purpose of distilling it."""
    student = next((row for row in rows if row.role == "student"), None)
    if student is None or student.speedup_b1 is None or student.speedup_b32 is None:
        return []
    threads = f"{student.threads} CPU thread(s)"
    lines = [
        f"student vs teacher: {student.speedup_b1:.2f}× faster at batch 1, {student.speedup_b32:.2f}× at batch "
        f"{LARGE_BATCH} ({threads})"
    ]
    speedups = ((1, student.speedup_b1), (LARGE_BATCH, student.speedup_b32))
    slower = [f"batch {batch} ({speedup:.2f}×)" for batch, speedup in speedups if speedup < 1]
    if slower:
        lines.append(
            f"warning: the student is not faster than the teacher on this device at {' and '.join(slower)}: "
            "choose a student by measured latency with `python -m kdlab.students`"
        )
    return lines


def _versus_line(role: str, flat: Mapping[str, Any]) -> str:
    def get(field: str) -> float:
        return flat.get(f"report/{role}/vs_student_{field}", float("nan"))

    return (
        f"{role} vs student: {get('size_reduction'):.2f}× smaller on disk, {get('speedup_b1'):.2f}× / "
        f"{get('speedup_b32'):.2f}× faster (batch 1 / 32), {100 * get('retention'):.2f}% of its top-1"
    )


def _versus_student(rows: list[ModelReport]) -> dict[str, float]:
    """Ratios of each compressed or baseline row against the distilled fp32 student: what the post step bought."""
    against = add_ratios(rows, reference_role="student")
    fields = (result_keys.RETENTION, "params_reduction", "size_reduction", "speedup_b1", "speedup_b32")
    return {
        f"report/{row.role}/vs_student_{field}": getattr(row, field)
        for row in against
        if row.role not in ("teacher", "student")
        for field in fields
        if getattr(row, field) is not None
    }


def _run_step(name: str, extras: dict[str, Any], step: Callable[[], dict[str, Any]]) -> None:
    """A failed post step is recorded (``post/<name>_error``) and printed; the trained student and report survive."""
    try:
        extras.update(step())
    except Exception as error:  # quantizers and exporters fail in many ways; none should cost the trained run
        log.error("post step %s failed: %s", name, error, exc_info=True)
        extras[f"post/{name}_error"] = f"{type(error).__name__}: {error}"


def _add_int8(
    models: Models, student: nn.Module, settings: ReportSettings, datamodule: InMemoryDataModule
) -> dict[str, Any]:
    count = settings.calibration_batches
    batches = _calibration_batches(datamodule, count, settings.seed)
    bits = settings.finetune.quant_weight_bits
    int8 = quantize_int8(student, batches, max_calibration_batches=count, weight_bits=bits)
    models["student+int8"] = (int8, f"{settings.student_name} int8 (PTQ{_bits_label(bits)})")
    return {"post/int8_mode": quantization_mode(int8), "post/quant_weight_bits": bits, **_codes("int8", int8)}


def _bits_label(bits: int) -> str:
    return "" if bits == 8 else f", {bits}-bit weights"


def _codes(name: str, model: nn.Module) -> dict[str, int]:
    """The integer range the int8 weights use: the evidence that ``post.quant_weight_bits`` took effect."""
    codes = weight_codes(model)
    return {} if codes is None else {f"post/{name}_weight_code_min": codes[0], f"post/{name}_weight_code_max": codes[1]}


def _add_qat(
    models: Models, module: DistillationModule, settings: ReportSettings, datamodule: InMemoryDataModule, run_dir: Path
) -> dict[str, Any]:
    """The row "student + int8 (QAT + KD)", or "(QAT)" for the no-teacher ablation, beside the PTQ row."""
    result = qat_and_distil(module, settings.finetune, datamodule, run_dir / "post-qat")
    recipe = "QAT + KD" if result.with_teacher else "QAT"
    epochs = settings.finetune.qat_epochs
    bits = _bits_label(settings.finetune.quant_weight_bits)
    models["student+int8-qat"] = (result.model, f"{settings.student_name} int8 ({recipe}, {epochs} ep{bits})")
    return {
        **_codes("qat", result.model),
        "post/qat_int8_vs_simulation": simulation_gap(result.model),  # ~0: the int8 model is the one QAT trained
        "post/qat_epochs": epochs,
        "post/qat_teacher": result.with_teacher,
        "post/qat_fake_quantizers": result.fake_quantizers,
        "post/qat_weight_change": result.weight_change,
    }


def _calibration_batches(datamodule: InMemoryDataModule, count: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """``count`` batches of training images in a seeded random order (a re-evaluation calibrates identically)."""
    order = torch.randperm(datamodule.num_train, generator=torch.Generator().manual_seed(seed))
    order = order[: count * datamodule.batch_size]
    return [{"image": batch["image"]} for batch in datamodule.model_batches("train", order)]


def _add_pruned(
    models: Models,
    module: DistillationModule,
    settings: ReportSettings,
    datamodule: InMemoryDataModule,
    run_dir: Path,
    reuse: bool,
) -> dict[str, Any]:
    tune = settings.finetune
    amount, epochs = tune.prune, tune.prune_finetune_epochs
    healer = "KD" if tune.prune_teacher and module.teacher is not None else "CE"
    meta = {
        "prune": amount,
        "finetune_epochs": epochs,
        "kind": tune.prune_kind,
        "steps": tune.prune_steps,
        "healer": healer,
    }
    path = run_dir / PRUNED_FILE
    pruned = _load_pruned(path, settings, datamodule, meta) if reuse else None
    if pruned is None:
        pruned = prune_and_distil(module, tune, datamodule, run_dir / "post")
        structure = pruned_structure(pruned) if tune.prune_kind == "channel" else None
        shape = (datamodule.num_classes, datamodule.in_chans)
        save_model(path, pruned, settings.student_name, *shape, **meta, structure=structure)
    what = "channels" if tune.prune_kind == "channel" else "weights"
    label = f"{settings.student_name} {100 * amount:g}% {what} pruned +{epochs} ep {healer}"
    models["student+pruned"] = (pruned, label)
    return {
        "post/prune_amount": amount,
        "post/prune_kind": tune.prune_kind,
        "post/prune_steps": tune.prune_steps,
        "post/prune_healer": healer,
        "post/prune_finetune_epochs": epochs,
        "post/pruned_weight_sparsity": weight_sparsity(pruned),
        "post/pruned_checkpoint": str(path),
    }


def _load_pruned(path: Path, settings: ReportSettings, datamodule: InMemoryDataModule, meta: dict) -> nn.Module | None:
    """The pruned student saved by the run, when it was made with the same amount, kind, steps, healer and fine-tune
    length; a channel-pruned one is reshaped to its recorded structure first."""
    if not path.is_file():
        return None
    payload = load_model_file(path)
    saved = dict(payload.get("meta") or {})
    structure = saved.pop("structure", None)
    if saved != meta:
        return None
    shape = {"num_classes": datamodule.num_classes, "in_chans": datamodule.in_chans}
    model = build_model(settings.student_model, role="student", **shape)
    if structure is not None:
        restore_structure(model, structure, payload["state_dict"])
    load_into(model, path, settings.student_name, **shape)
    return model


def _export_onnx(
    student: nn.Module, input_shape: tuple[int, ...], test_batches: Iterable[dict], run_dir: Path
) -> dict[str, Any]:
    """Export and compare on the first test batch. The absolute difference scales with the logits: fp32 kernels that
    sum in another order (onnxruntime's, PyTorch's) drift apart by ~1e-6 of the largest logit, so the relative figure
    is reported beside it."""
    path = export_onnx(copy.deepcopy(student), input_shape, run_dir / ONNX_FILE)
    inputs = next(iter(test_batches))["image"]
    diff = check_onnx(path, student, inputs)
    with evaluating(student), torch.inference_mode():
        scale = float(student(inputs).abs().max())
    relative = diff / scale if scale else diff
    if diff > ONNX_TOLERANCE:
        log.warning(
            "student.onnx differs from PyTorch by %.2e (> %.0e) on test inputs; relative to the largest |logit| "
            "(%.1f): %.1e",
            diff,
            ONNX_TOLERANCE,
            scale,
            relative,
        )
    return {
        "student/onnx_path": str(path),
        "student/onnx_max_abs_diff": diff,
        "student/onnx_max_rel_diff": relative,
        "student/onnx_max_abs_logit": scale,
        "student/onnx_size_bytes": path.stat().st_size,
    }


def _log_wandb_table(logger: Any, rows: list[ModelReport]) -> None:
    """The report as a ``wandb.Table`` (the numbers reach the run summary through the pipeline's own logging)."""
    from pytorch_lightning.loggers import WandbLogger

    if not isinstance(logger, WandbLogger) or not rows:
        return
    import wandb

    columns = list(asdict(rows[0]))
    logger.experiment.log({"report/table": wandb.Table(columns=columns, data=[list(asdict(r).values()) for r in rows])})
