#!/bin/bash
# Teacher-output replay vs the teacher online (issue 14), default pair resnet18 -> test_resnet on digits with
# data.augment=crop_flip, one teacher (teacher_seed=0) for every job:
#   accuracy  online vs replayed (V = epochs, exact) over seeds 0 and 1, V = 2 and 5 (< the 10 epochs: cycled),
#             and kd.replay.topk=2 (top-2 logits + the rest's log-sum-exp)
#   sweep     a 3 x 3 temperature x alpha grid, online vs replayed: wall time and CPU time of each whole multirun,
#             the replayed one including its precompute (its first job computes the views, the other eight load them)
# Usage (repo root): OUT=/some/dir experiments/replay/run.sh && python experiments/replay/summarize.py $OUT
# PARTS=accuracy or PARTS=sweep runs one part (the sweep part needs the teacher in $OUT/cache: run accuracy first,
# or point KDLAB_CACHE at a cache holding it).
set -euo pipefail
OUT=${OUT:-/tmp/kdlab-replay}
SWEEP_EPOCHS=${SWEEP_EPOCHS:-3}
PARTS=${PARTS:-"accuracy sweep"}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export KDLAB_CACHE=${KDLAB_CACHE:-$OUT/cache} WANDB_MODE=offline
PY=${PYTHON:-.venv/bin/python}
COMMON="data.augment=crop_flip teacher_seed=0 logger=csv post.latency.repeats=3 post.latency.warmup=1"
COMMON="$COMMON +trainer.enable_progress_bar=false"
if [[ " $PARTS " == *" accuracy "* ]]; then
  # its first job trains and caches the teacher
  $PY -m kdlab -m $COMMON kd.cache_teacher=false,auto seed=0,1 hydra.sweep.dir=$OUT/accuracy > $OUT/accuracy.log 2>&1
  $PY -m kdlab -m $COMMON kd.replay.views=2,5 seed=0,1 hydra.sweep.dir=$OUT/views > $OUT/views.log 2>&1
  # the top-K approximation (K of digits' 10 classes kept, the rest as one log-sum-exp)
  $PY -m kdlab -m $COMMON kd.replay.topk=2 seed=0,1 hydra.sweep.dir=$OUT/topk > $OUT/topk.log 2>&1
fi
if [[ " $PARTS " == *" sweep "* ]]; then
  rm -f "$OUT/sweep_seconds.txt"
  for mode in false auto; do
    /usr/bin/time -f "$mode %e %U %S" -a -o "$OUT/sweep_seconds.txt" \
      $PY -m kdlab -m $COMMON kd.cache_teacher=$mode kd.temperature=2,4,8 kd.alpha=0.5,0.7,0.9 \
      trainer.max_epochs=$SWEEP_EPOCHS hydra.sweep.dir=$OUT/sweep_$mode > "$OUT/sweep_$mode.log" 2>&1
  done
fi
