"""KD throughput: what distillation costs on top of training the student alone, and what kdlab adds on top of PyTorch.

One process, one data set, one batch size; every variant trains a fresh copy of the same student for
``--warmup`` + ``--epochs`` epochs and is timed over the last ``--epochs`` (images/s, validation off):

  (a) student      kdlab's Lightning loop, student alone (kd=none maths: CE only)
  (b) kd_online    kdlab's Lightning loop, KD with the teacher run on every batch
  (c) kd_cached    kdlab's Lightning loop, KD with the teacher's outputs looked up in the teacher-output cache, or,
                   with data.augment / mixup on, replayed (kdlab.teacher.replay: set kd.replay.views to at least
                   --warmup + --epochs so every epoch has its own view); the replay's precompute is timed too
  (d) bare_kd      a plain PyTorch loop (no Lightning, no Hydra objects) doing exactly (b)'s maths:
                   student forward + backward + optimizer step, teacher forward, CE + the kd terms' losses
  bare_student     the plain loop training the student alone    } floor = 1 / (1/bare_student + 1/bare_teacher):
  bare_teacher     the plain loop running only the teacher       } the student step plus the teacher forward

Variants are interleaved within each repeat (order rotated) so that load drift on a shared machine hits all of
them alike; ratios are reported from medians and, per repeat, as median [min, max].

    PYTHONPATH=. python benchmarks/kd_throughput.py                      # defaults: digits, resnet18 → mobilenet
    PYTHONPATH=. python benchmarks/kd_throughput.py --repeats 3 kd=feature data.batch_size=256
    PYTHONPATH=. python benchmarks/kd_throughput.py --precision bf16-mixed --compile   # on a GPU
    PYTHONPATH=. python benchmarks/kd_throughput.py data.augment=crop_flip kd.replay.views=3   # replay
    PYTHONPATH=. python benchmarks/kd_throughput.py --folder 256 --only student kd_online kd_cached \
        teacher=resnet50 student=mobilenet data.image_size=224 data.augment=rrc_flip kd.replay.views=3 \
        teacher.max_epochs=1                     # a generated JPEG folder, streamed by the workers, replayed

With ``--folder N`` the data is a generated folder of N 256-px JPEGs (``benchmarks/data_streaming.py``'s
``write_tree``) streamed from disk; the plain-loop variants need in-memory data and are not run then. The replay's
precompute per view is compared with the teacher's share of an online-KD epoch, 1/kd_online − 1/student per image.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from kdlab.data.base import ImageDataModule
from kdlab.instantiate import build, build_optim
from kdlab.models import build_model, forward_with_taps
from kdlab.teacher.output_cache import teacher_outputs_plan
from kdlab.teacher.prepare import prepare_teacher
from kdlab.teacher.recipe import outputs_settings, teacher_recipe
from kdlab.teacher.replay import replay_plan
from kdlab.terms.pairing import build_terms
from kdlab.training.module import DistillationModule
from kdlab.training.speed import compile_model, resolve_precision, to_channels_last
from kdlab.training.teacher_outputs import TeacherTaps, run_teacher
from kdlab.training.trainer import make_trainer

CONF = Path(__file__).resolve().parents[1] / "conf"
VARIANTS = ("student", "kd_online", "kd_cached", "bare_kd", "bare_student", "bare_teacher")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochTimer(pl.Callback):
    """Wall time from the start of epoch ``warmup`` to the end of training (epoch-end hooks included)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.seconds = warmup, None, None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.warmup:
            sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sync(pl_module.device)
        self.seconds = time.perf_counter() - self.start


class Bench:
    """Everything the variants share: config, data, the trained teacher, the teacher-output table, the student init."""

    def __init__(self, cfg: DictConfig, args: argparse.Namespace) -> None:
        self.cfg, self.args = cfg, args
        self.data: ImageDataModule = build(cfg.data)
        self.shape = {"num_classes": self.data.num_classes, "in_chans": self.data.in_chans}
        self.teacher = build_model(cfg.teacher.model, role="teacher", **self.shape)
        if cfg.channels_last:
            to_channels_last(self.teacher)
        self.teacher_source = prepare_teacher(self.teacher, teacher_recipe(cfg), self.data).kind
        self.teacher.eval()
        torch.manual_seed(cfg.seed)
        self.student_init = build_model(cfg.student.model, role="student", **self.shape).state_dict()
        self.terms_probe = self.terms(self.new_student())
        if not self.terms_probe:
            raise SystemExit("kd_throughput needs a kd method with terms (kd=none has no teacher maths)")
        started = time.perf_counter()
        taps = TeacherTaps.of(self.terms_probe.values())
        outputs = outputs_settings(cfg)
        self.plan = replay_plan(outputs, self.teacher, self.data, taps) or teacher_outputs_plan(
            outputs, self.teacher, self.data, taps
        )
        self.table_seconds = time.perf_counter() - started
        if self.plan.table is None:
            raise SystemExit(f"no teacher-output table ({self.plan.source}): use a kd method whose terms read logits")
        self.device = torch.device("cuda" if torch.cuda.is_available() and args.accelerator != "cpu" else "cpu")
        self.precision = resolve_precision(args.precision, self.device.type)
        if args.compile:
            compile_model(self.teacher)

    def new_student(self) -> torch.nn.Module:
        student = build_model(self.cfg.student.model, role="student", **self.shape)
        student.load_state_dict(self.student_init)
        if self.cfg.channels_last:
            to_channels_last(student)
        return compile_model(student) if self.args.compile else student

    def terms(self, student: torch.nn.Module) -> dict:
        names = {"student_name": str(self.cfg.student.name), "teacher_name": str(self.cfg.teacher.name)}
        return build_terms(self.cfg.kd.terms, student, self.teacher, self.data, **names)

    # ---- kdlab's Lightning loop -------------------------------------------------------------------------------
    def lightning(self, kd: bool, cached: bool) -> float:
        student = self.new_student()
        extra = {}
        if kd:
            extra = dict(
                teacher=self.teacher, terms=self.terms(student), weights=self.cfg.kd.weights,
                alpha=self.cfg.kd.alpha, teacher_outputs=self.plan.table if cached else None,
            )  # fmt: skip
        module = DistillationModule(student, self.data.num_classes, **extra, **build_optim(self.cfg.optim))
        timer = EpochTimer(self.args.warmup)
        with tempfile.TemporaryDirectory() as root:
            trainer = make_trainer(
                self.cfg.trainer, Path(root), logger=False, callbacks=[timer],
                max_epochs=self.args.warmup + self.args.epochs, limit_val_batches=0, num_sanity_val_steps=0,
                enable_progress_bar=self.args.progress_bar, enable_checkpointing=False, precision=self.precision,
                accelerator=self.device.type,
            )  # fmt: skip
            pl.seed_everything(self.cfg.seed, verbose=False)
            trainer.fit(module, datamodule=self.data)
        return self.args.epochs * self.data.num_train / timer.seconds

    # ---- the plain PyTorch loop ---------------------------------------------------------------------------------
    def bare(self, step: Callable[[torch.Tensor, torch.Tensor], None], scheduler=None) -> float:
        images, targets = self.data.train.images, self.data.train.targets
        n, batch_size = len(targets), self.data.batch_size
        generator = torch.Generator().manual_seed(self.cfg.seed)
        start = None
        for epoch in range(self.args.warmup + self.args.epochs):
            if epoch == self.args.warmup:
                sync(self.device)
                start = time.perf_counter()
            order = torch.randperm(n, generator=generator)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                x = self.data.transform(images[idx].to(self.device, non_blocking=True))  # uint8 -> model inputs
                step(x, targets[idx].to(self.device, non_blocking=True))
            if scheduler is not None:
                scheduler.step()
        sync(self.device)
        return self.args.epochs * n / (time.perf_counter() - start)

    def autocast(self):
        dtype = torch.bfloat16 if self.precision == "bf16-mixed" else None
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def bare_train(self, kd: bool) -> float:
        student = self.new_student().to(self.device).train()
        terms = self.terms(student).values() if kd else []
        terms = [t.to(self.device).train() for t in terms]
        teacher = self.teacher.to(self.device)
        params = list(student.parameters()) + [p for t in terms for p in t.parameters()]
        optim = build_optim(self.cfg.optim)
        optimizer = optim["optimizer"](params)
        scheduler = optim["scheduler"](optimizer) if optim["scheduler"] else None
        weights = {"ce": 1.0 - float(self.cfg.kd.alpha), **self.cfg.kd.weights} if kd else {"ce": 1.0}
        s_stages = sorted({s for t in terms for s in t.student_stages})
        taps = TeacherTaps.of(terms)

        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            with self.autocast():
                out = forward_with_taps(student, x, s_stages, taps.embedding)
                losses = {"ce": F.cross_entropy(out.logits, y)}
                if kd:
                    t_out = run_teacher(teacher, x, taps.stages, taps.embedding)
                    for term in terms:
                        losses.update(term(out, t_out, {"image": x, "target": y}))
                loss = sum(weights[k] * v for k, v in losses.items())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        try:
            return self.bare(step, scheduler)
        finally:
            self.teacher.to("cpu")

    def bare_teacher(self) -> float:
        teacher = self.teacher.to(self.device)
        taps = TeacherTaps.of(self.terms_probe.values())

        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            with self.autocast():
                run_teacher(teacher, x, taps.stages, taps.embedding)

        try:
            return self.bare(step)
        finally:
            self.teacher.to("cpu")

    def run(self, name: str) -> float:
        return {
            "student": lambda: self.lightning(kd=False, cached=False),
            "kd_online": lambda: self.lightning(kd=True, cached=False),
            "kd_cached": lambda: self.lightning(kd=True, cached=True),
            "bare_kd": lambda: self.bare_train(kd=True),
            "bare_student": lambda: self.bare_train(kd=False),
            "bare_teacher": self.bare_teacher,
        }[name]()


def floor(r: dict[str, float]) -> float:
    return 1.0 / (1.0 / r["bare_student"] + 1.0 / r["bare_teacher"])


RATIOS = {
    "b/d  kd_online / bare_kd   (framework overhead; target >= 0.95)": lambda r: r["kd_online"] / r["bare_kd"],
    "c/a  kd_cached / student   (KD at the student's cost; target >= 0.95)": lambda r: r["kd_cached"] / r["student"],
    "b/floor  kd_online / (student step + teacher fwd)": lambda r: r["kd_online"] / floor(r),
    "a/bare_student  (framework overhead, student alone)": lambda r: r["student"] / r["bare_student"],
    "c/b  cache speed-up over online KD": lambda r: r["kd_cached"] / r["kd_online"],
}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.3f}  [{min(values):.3f}, {max(values):.3f}]"


def machine() -> dict[str, object]:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return {
        "cpu": cpu or platform.processor(),
        "cores_visible": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="kdlab config overrides (data=…, kd=…, data.batch_size=…)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per variant and repeat")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs before them")
    parser.add_argument("--precision", default="auto", help="auto (bf16-mixed on GPU) | 32-true | bf16-mixed")
    parser.add_argument("--compile", action="store_true", help="torch.compile student and teacher")
    parser.add_argument("--accelerator", default="auto", choices=("auto", "cpu"))
    parser.add_argument("--progress-bar", action="store_true", help="keep Lightning's progress bar on in (a)-(c)")
    parser.add_argument("--only", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--folder", type=int, metavar="N", help="stream a generated folder of N JPEGs instead")
    args = parser.parse_args()
    folder = []
    if args.folder:
        if bare := [v for v in args.only if v.startswith("bare")]:
            raise SystemExit(f"--folder streams from disk: the plain-loop variants {bare} need in-memory data")
        from benchmarks.data_streaming import write_tree  # only this mode writes images

        root = write_tree(Path(tempfile.mkdtemp(prefix="kd_throughput_")), args.folder)
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        folder = ["data=imagefolder", f"data.root={root}", "data.in_memory=false"]

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["logger=none", *folder, *args.overrides])
    bench = Bench(cfg, args)
    load = [os.getloadavg()[0]]
    print(
        f"data={bench.data.name} n_train={bench.data.num_train} batch={bench.data.batch_size} "
        f"teacher={cfg.teacher.name} ({bench.teacher_source}) student={cfg.student.name} kd terms="
        f"{list(bench.terms_probe)} device={bench.device} precision={bench.precision} compile={args.compile} "
        f"channels_last={cfg.channels_last}\n"
        f"teacher-output table: {bench.plan.source} in {bench.table_seconds:.2f}s "
        f"({bench.plan.table.nbytes() / 1e6:.1f} MB)"
    )
    if bench.plan.source == "replay" and bench.table_seconds < 1.0:
        print("  (the replayed views were already on disk: clear $KDLAB_CACHE/teacher_replay to time the precompute)")
    runs: dict[str, list[float]] = {v: [] for v in args.only}
    for r in range(args.repeats):
        order = args.only[r % len(args.only) :] + args.only[: r % len(args.only)]
        for name in order:
            runs[name].append(bench.run(name))
        load.append(os.getloadavg()[0])
        print(f"repeat {r + 1}/{args.repeats}: " + "  ".join(f"{k}={runs[k][-1]:.0f}" for k in args.only), flush=True)

    print(
        f"\nimages/s, {args.epochs} timed epochs after {args.warmup} warm-up, {args.repeats} repeats: median [min, max]"
    )
    for name in args.only:
        print(f"  {name:<14}{spread(runs[name])}")
    ratios = {}
    print("ratios: of medians | per repeat median [min, max]")
    for label, fn in RATIOS.items():
        try:
            per_repeat = [fn({k: v[i] for k, v in runs.items()}) for i in range(args.repeats)]
            of_medians = fn({k: statistics.median(v) for k, v in runs.items()})
        except KeyError:
            continue
        ratios[label.split()[0]] = {"of_medians": of_medians, "per_repeat": per_repeat}
        print(f"  {label:<70}{of_medians:6.3f} | {spread(per_repeat)}")
    if bench.plan.source == "replay" and "bare_teacher" in runs:
        teacher_epoch_s = bench.data.num_train / statistics.median(runs["bare_teacher"])
        per_view = bench.table_seconds / bench.plan.table.views
        ratios["precompute"] = {"of_medians": per_view / teacher_epoch_s, "per_repeat": []}
        print(f"  {'replay precompute per view / one epoch of teacher forwards (target <= 1.1)':<70}"
              f"{per_view / teacher_epoch_s:6.3f} | {per_view:.2f}s per view")  # fmt: skip
    if bench.plan.source == "replay" and {"student", "kd_online"} <= set(runs):
        n = bench.data.num_train
        teacher_share_s = n / statistics.median(runs["kd_online"]) - n / statistics.median(runs["student"])
        per_view = bench.table_seconds / bench.plan.table.views
        ratios["precompute_vs_online"] = {"of_medians": per_view / teacher_share_s, "per_repeat": []}
        label = "replay precompute per view / teacher share of an online-KD epoch (target <= 1.1)"
        print(f"  {label:<70}{per_view / teacher_share_s:6.3f} | {per_view:.2f}s/view, {teacher_share_s:.2f}s/epoch")
    info = machine() | {"load_avg_1min": load}
    print(f"machine: {info}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "machine": info,
                                         "images_per_s": runs, "ratios": ratios}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
