#!/bin/bash
# QAT measurement: default pair (resnet18 -> test_resnet, digits), 2 seeds, QAT+KD and QAT-alone (the no-teacher
# ablation, via kdlab-evaluate), at BITS-bit weights (8: int8; 4: W4A8, where PTQ loses accuracy).
# A seed's run is trained once; later BITS re-evaluate the same student (kdlab-evaluate), so rows share a student.
# kdlab-evaluate keeps the post.* values of the previous evaluation, so every leg names post.qat_teacher.
# EPOCHS (post.qat_epochs, default 2) and SEEDS (default "0 1") change the schedule; records are named
# seed<s>-w<BITS>[e<EPOCHS>]-qat_{kd,ce}.json (the epochs appear when not 2).
# Usage (repo root): OUT=/some/dir BITS=4 experiments/compression/run.sh && python experiments/compression/summarize.py $OUT
set -ex
OUT=${OUT:-/tmp/kdlab-compression}
BITS=${BITS:-8}
EPOCHS=${EPOCHS:-2}
SEEDS=${SEEDS:-"0 1"}
TAG=w$BITS$([ "$EPOCHS" = 2 ] || echo "e$EPOCHS")
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export KDLAB_CACHE=$OUT/cache WANDB_MODE=offline OMP_NUM_THREADS=1
PY=${PYTHON:-.venv/bin/python}
POST="post.quantize=qat post.quant_weight_bits=$BITS post.qat_epochs=$EPOCHS post.latency.threads=1"
for s in $SEEDS; do
  D=$OUT/seed$s
  if [ -f "$D/student.pt" ]; then
    nice -n 15 $PY -m kdlab.report.evaluate "$D" $POST post.qat_teacher=true > "$OUT/seed$s-$TAG-kd.log" 2>&1
  else
    nice -n 15 $PY -m kdlab seed=$s teacher_seed=0 $POST logger=none hydra.run.dir="$D" > "$OUT/seed$s-$TAG-kd.log" 2>&1
  fi
  cp "$D/results.json" "$OUT/seed$s-$TAG-qat_kd.json"
  nice -n 15 $PY -m kdlab.report.evaluate "$D" $POST post.qat_teacher=false > "$OUT/seed$s-$TAG-ce.log" 2>&1
  cp "$D/results.json" "$OUT/seed$s-$TAG-qat_ce.json"
done
echo DONE
