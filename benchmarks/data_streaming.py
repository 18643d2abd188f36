"""Real-scale data: memory and throughput of the streaming imagefolder path, and the in-memory uint8 path's cost.

Generates its own JPEG trees (256-px, ``--small`` and ``--large`` images) in a temporary directory, then:

  memory      peak memory (PSS of main process + loader workers, summed, sampled every 50 ms) of a pass of ``--batches``
              training batches at 224 px (RandomResizedCrop + flip, 2 workers) over the small and the large tree:
              it must not grow with the folder (within 10 %) and stay under
              workers × prefetch × batch × image bytes (uint8) + 1.5 GB (no models in this pass);
  throughput  loader images/s with 1 and 2 workers over the same batches, median of ``--repeats`` alternated passes
              (decoding is CPU-bound: on a 2-core machine the ratio is the parallel speed-up the cores allow);
  student     a student's training step at 224 px (what the loader must keep up with), images/s;
  digits      one epoch of the default digits data through loader + device transform, uint8 storage vs the
              former float32 storage (transform applied once up front), median of ``--repeats``.

    PYTHONPATH=. python benchmarks/data_streaming.py                   # 20k vs 60k images
    PYTHONPATH=. python benchmarks/data_streaming.py --small 2000 --large 6000 --batches 20   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def write_tree(root: Path, count: int, classes: int = 10, size: int = 256, unique: int = 1000) -> Path:
    """``count`` 256-px JPEGs (smooth gradients + noise, ~30 kB each) in ``classes`` folders under root/train, one
    per class under root/test. ``unique`` distinct pictures are encoded; the rest are hard links to them (the
    loader opens and decodes every file all the same), so a 60k tree takes seconds. Reused if already complete."""
    marker = root / f".complete-{count}"
    if marker.exists():
        return root
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, size, dtype=np.float32)
    originals = []
    for i in range(min(unique, count)):
        base = ramp[None, :, None] * rng.uniform(0.3, 1.0, 3)[None, None, :]
        pixels = (base + rng.normal(0, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)
        folder = root / "train" / f"c{i % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=85)
        originals.append(folder / f"{i}.jpg")
    for i in range(len(originals), count):
        os.link(originals[i % len(originals)], root / "train" / f"c{i % classes:02d}" / f"{i}.jpg")
    for k in range(classes):
        (root / "test" / f"c{k:02d}").mkdir(parents=True, exist_ok=True)
        os.link(originals[k % len(originals)], root / "test" / f"c{k:02d}" / "0.jpg")
    marker.touch()
    return root


def _pss_of_tree(pid: int) -> int:
    """Proportional set size of ``pid`` and all its descendants (Linux): forked workers share the parent's pages,
    which summed RSS would count once per worker; PSS splits each shared page among its sharers."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                total += next(int(line.split()[1]) * 1024 for line in handle if line.startswith("Pss:"))
            with open(f"/proc/{current}/task/{current}/children") as handle:
                stack += [int(c) for c in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


def loader_pass(root: Path, workers: int, batches: int, batch_size: int, memory: bool = True) -> dict:
    """Run one loader pass in a child process; return its images/s and (``memory``) the peak PSS of it and its
    workers. The PSS sampler reads /proc every 50 ms: a throughput pass runs without it, so that it takes no CPU from
    the workers."""
    code = f"""
import json, time, sys
sys.path.insert(0, {str(REPO)!r})
from kdlab.data.imagefolder import imagefolder_data
data = imagefolder_data({str(root)!r}, image_size=224, batch_size={batch_size}, augment="rrc_flip", in_memory=False,
                        num_workers={workers}, mean=[0.5] * 3, std=[0.25] * 3, val_fraction=10)
loader = iter(data.train_dataloader())
next(loader)  # workers started, first batches decoded
start, seen = time.perf_counter(), 0
for _ in range({batches}):
    seen += len(next(loader)["index"])
print(json.dumps({{"images_per_s": seen / (time.perf_counter() - start), "train_files": len(data.train)}}))
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _pss_of_tree(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    if memory:
        sampler.start()
    out, _ = proc.communicate()
    done.set()
    if memory:
        sampler.join()
    if proc.returncode:
        raise SystemExit(f"loader pass failed ({proc.returncode})")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_pss_gb": peak / 1024**3, "workers": workers}


def digits_epoch_seconds(repeats: int) -> dict:
    """One training epoch of digits through loader + on_after_batch_transfer: uint8 + device transform vs float."""
    sys.path.insert(0, str(REPO))
    import torch

    from kdlab.data.digits import digits_data
    from kdlab.data.tensors import InputTransform

    uint8 = digits_data()
    as_float = digits_data()
    as_float.train.images = torch.cat([b["image"] for b in uint8.model_batches("train")])  # the former storage
    as_float.transform = InputTransform.identity(1, 32)
    times: dict[str, list[float]] = {"uint8": [], "float32": []}
    for _ in range(repeats):
        for name, data in (("uint8", uint8), ("float32", as_float)):
            start = time.perf_counter()
            for batch in data.train_dataloader():
                data.on_after_batch_transfer(batch, 0)
            times[name].append(time.perf_counter() - start)
    return {
        **{f"{k}_epoch_ms": 1000 * statistics.median(v) for k, v in times.items()},
        "bytes_uint8": uint8.train.images.numel() * uint8.train.images.element_size(),
        "bytes_float32": as_float.train.images.numel() * as_float.train.images.element_size(),
    }


def student_step_images_per_s(names: tuple[str, ...] = ("test_resnet", "mobilenetv3_small_100")) -> dict:
    """What the loader must keep up with: a student's training step (forward, backward, AdamW) at 224 px, batch 64,
    channels_last, on torch's default thread count; images/s over 4 steps after 2 warm-up steps."""
    import timm
    import torch

    rates = {}
    for name in names:
        model = timm.create_model(name, num_classes=10).to(memory_format=torch.channels_last)
        images = torch.randn(64, 3, 224, 224).contiguous(memory_format=torch.channels_last)
        targets = torch.randint(0, 10, (64,))
        optimizer = torch.optim.AdamW(model.parameters())
        for step in range(6):
            if step == 2:
                start = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rates[name] = 4 * 64 / (time.perf_counter() - start)
    return {"images_per_s": rates, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=20000)
    parser.add_argument("--large", type=int, default=60000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the trees go (default: a temporary directory)")
    parser.add_argument("--student-step", action="store_true", help="only the student's training step at 224 px")
    args = parser.parse_args()
    if args.student_step:
        print(json.dumps(student_step_images_per_s(), indent=2))
        return
    base = Path(args.dir or tempfile.mkdtemp(prefix="kdlab-data-bench-"))
    results: dict = {"cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()[0]}
    started = time.perf_counter()
    small, large = (write_tree(base / f"tree{n}", n) for n in (args.small, args.large))
    results["generate_s"] = time.perf_counter() - started
    results["memory"] = [loader_pass(tree, 2, args.batches, args.batch_size) for tree in (small, large)]
    ratio = results["memory"][1]["peak_pss_gb"] / results["memory"][0]["peak_pss_gb"]
    in_flight_gb = 2 * 2 * args.batch_size * 3 * 224 * 224 / 1024**3  # uint8 images: one byte per value
    results["memory_large_over_small"] = ratio
    results["memory_bound_gb"] = in_flight_gb + 1.5
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):  # alternated, so a change in machine load hits both counts alike
        for workers in (1, 2):
            rates[workers].append(loader_pass(small, workers, args.batches, args.batch_size, False)["images_per_s"])
    results["throughput"] = {f"{w}_worker{'s' * (w > 1)}": statistics.median(r) for w, r in rates.items()}
    results["throughput_each"] = rates
    results["throughput_ratio"] = statistics.median(rates[2]) / statistics.median(rates[1])
    results["digits"] = digits_epoch_seconds(args.repeats)
    results["student_step_224"] = student_step_images_per_s()
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
