#!/bin/bash
# Channel pruning healed by KD vs by cross-entropy (issue 15, part 2): default pair (resnet18 -> test_resnet, digits),
# seeds 0 and 1. Each seed trains and distils once; every (ratio, healer) variant then re-prunes that same distilled
# student through kdlab-evaluate in a copy of the run folder, so the variants differ only in pruning and healing.
# Usage (repo root; RATIOS=, EPOCHS=, STEPS= to change): OUT=/some/dir experiments/channel_pruning/run.sh && python experiments/channel_pruning/summarize.py $OUT
set -euo pipefail
OUT=${OUT:-/tmp/kdlab-channel-pruning}
RATIOS=${RATIOS:-"0.3 0.5 0.7"}
EPOCHS=${EPOCHS:-4}
STEPS=${STEPS:-1}  # post.prune_steps: iterative pruning, the healing epochs spread between the steps
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export KDLAB_CACHE=$OUT/cache WANDB_MODE=offline
PY=${PYTHON:-.venv/bin/python}
LATENCY="post.latency.threads=1 post.latency.repeats=10"
for s in 0 1; do
  D=$OUT/seed$s/run
  [ -f "$D/results.json" ] || $PY -m kdlab seed=$s teacher_seed=0 logger=none $LATENCY hydra.run.dir=$D > $OUT/seed$s.log 2>&1
  for r in $RATIOS; do
    for healer in true false; do
      V=$OUT/seed$s/prune$r-teacher_$healer
      rm -rf "$V" && cp -r "$D" "$V"
      $PY -m kdlab.report.evaluate "$V" post.prune=$r post.prune_kind=channel post.prune_finetune_epochs=$EPOCHS post.prune_steps=$STEPS \
        post.prune_teacher=$healer $LATENCY > "$V.log" 2>&1
      echo "seed $s ratio $r teacher $healer: done"
    done
  done
done
