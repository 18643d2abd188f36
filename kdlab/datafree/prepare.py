"""One data-free run's transfer set: train (or reuse) the generator, save what the teacher "dreams", seal the data."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.utils import make_grid, save_image

from kdlab import result_keys
from kdlab.data.datamodule import InMemoryDataModule
from kdlab.datafree.settings import GeneratorSettings
from kdlab.datafree.synthesis import SynthesisHistory, train_generator
from kdlab.datafree.transfer_data import GeneratedDataModule
from kdlab.io import atomic_write
from kdlab.models.generator import DAFLGenerator

log = logging.getLogger(__name__)

GENERATOR_FILE, GRID_FILE, HISTORY_FILE = "generator.pt", "generated.png", "generator_losses.csv"
SHARE_SAMPLES = 1000  # generated images the teacher's class shares are measured on


@dataclass
class DataFreeTransfer:
    """The student's data module (generated train batches, real val/test) and what the generator phase recorded."""

    datamodule: GeneratedDataModule
    history: SynthesisHistory
    metrics: dict[str, Any]
    grid: Path


def data_free_transfer(
    settings: GeneratorSettings,
    seed: int,
    accelerator: str,
    teacher: nn.Module,
    real: InMemoryDataModule,
    out_dir: Path,
) -> DataFreeTransfer:
    """Train DAFL's generator against the trained ``teacher`` (or reuse ``generator.pt`` from this run folder) and
    return the data module the student distils on. ``real``'s training split is never read here. ``seed`` is the
    run's; ``accelerator`` is ``trainer.accelerator``, which decides whether the generator trains on the GPU."""
    channels, size = int(real.val.images.shape[1]), real.image_size
    generator = DAFLGenerator(settings.latent_dim, size, channels, settings.width)
    device = _device(accelerator, teacher)
    path, history, source = out_dir / GENERATOR_FILE, SynthesisHistory(), "run folder"
    if path.is_file():  # a resumed run keeps the generator it started with
        generator.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        history.rows = _read_history(out_dir / HISTORY_FILE)
    else:
        torch.manual_seed(seed)  # the generator's init
        history, source = train_generator(generator, teacher, settings, seed, device), "trained"
        _write_history(out_dir / HISTORY_FILE, history)
        atomic_write(path, lambda handle: torch.save(generator.state_dict(), handle))
    datamodule = GeneratedDataModule(real, generator, teacher, settings.student_steps_per_epoch, seed)
    samples = datamodule.synthesise(torch.arange(SHARE_SAMPLES), -1, device)
    grid = save_grid(out_dir / GRID_FILE, samples, real, settings.grid_images)
    generator.to("cpu"), teacher.to("cpu")  # Lightning places both models itself
    metrics = {
        result_keys.KD_TRANSFER: "generator",
        result_keys.GENERATOR_SOURCE: source,
        result_keys.GENERATOR_STEPS: settings.steps,
        result_keys.GENERATOR_SECONDS: history.seconds if source == "trained" else None,
        result_keys.GENERATOR_IMAGES: str(grid),
        result_keys.GENERATOR_TEACHER_CLASS_SHARES: class_shares(samples["target"], real.num_classes),
        **{key: history.last().get(key) for key in _LOSS_KEYS},
    }
    return DataFreeTransfer(datamodule, history, metrics, grid)


def _device(accelerator: str, teacher: nn.Module) -> torch.device:
    """The GPU when the trainer may use one (``trainer.accelerator`` auto/gpu/cuda), else the teacher's device."""
    if torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda"):
        return torch.device("cuda")
    return next(teacher.parameters()).device


_LOSS_KEYS = (
    result_keys.GENERATOR_LOSS,
    result_keys.GENERATOR_LOSS_ONE_HOT,
    result_keys.GENERATOR_LOSS_ACTIVATION,
    result_keys.GENERATOR_LOSS_INFORMATION_ENTROPY,
)


def class_shares(predicted: Tensor, num_classes: int) -> list[float]:
    """Fraction of each class among the teacher's predictions: balanced generation is what L_ie asks for."""
    counts = torch.bincount(predicted.cpu(), minlength=num_classes).float()
    return [round(float(c), 4) for c in counts / counts.sum()]


def save_grid(path: Path, samples: dict[str, Tensor], real: InMemoryDataModule, per_class: int) -> Path:
    """A PNG of generated images, one row per teacher-predicted class (up to ``per_class`` each; short rows padded
    with blanks), mapped back from standardised inputs to pixels with the data's mean and std."""
    images, targets = samples["image"].cpu(), samples["target"].cpu()
    mean, std = real.transform.mean[None, :, None, None], real.transform.std[None, :, None, None]
    pixels = (images * std + mean).clamp(0, 1)
    rows = []
    for cls in range(real.num_classes):
        chosen = pixels[targets == cls][:per_class]
        blank = torch.zeros(per_class - len(chosen), *pixels.shape[1:])
        rows.append(torch.cat([chosen, blank]))
    grid = make_grid(torch.cat(rows), nrow=per_class, padding=2, pad_value=0.5)
    buffer = io.BytesIO()
    save_image(grid, buffer, format="png")
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def _write_history(path: Path, history: SynthesisHistory) -> None:
    if not history.rows:
        return
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(history.rows[0]))
    writer.writeheader()
    writer.writerows(history.rows)
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))


def _read_history(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def log_synthesis(logger: Any, transfer: DataFreeTransfer) -> None:
    """The generator's loss curves (x axis ``generator/step``) and the image grid to a live W&B run; other loggers
    get the curves through ``log_metrics``."""
    if not logger:
        return
    experiment = getattr(logger, "experiment", None)
    if experiment is not None and hasattr(experiment, "define_metric"):
        import wandb

        experiment.define_metric("generator/step")
        experiment.define_metric("generator/loss*", step_metric="generator/step")
        for row in transfer.history.rows:
            experiment.log(row)
        experiment.log({"generator/images": wandb.Image(str(transfer.grid))})
        return
    for row in transfer.history.rows:
        logger.log_metrics({k: v for k, v in row.items() if k != "generator/step"}, step=int(row["generator/step"]))
