#!/bin/bash
# QAT measurement: default pair (resnet18 -> test_resnet, digits), 2 seeds, QAT+KD and QAT-alone (the no-teacher
# ablation, via kdlab-evaluate), at BITS-bit weights (8: int8; 4: W4A8, where PTQ loses accuracy).
# A seed's run is trained once; later BITS re-evaluate the same student (kdlab-evaluate), so rows share a student.
# kdlab-evaluate keeps the post.* values of the previous evaluation, so every leg names post.qat_teacher.
# Usage (repo root): OUT=/some/dir BITS=4 experiments/compression/run.sh && python experiments/compression/summarize.py $OUT
set -ex
OUT=${OUT:-/tmp/kdlab-compression}
BITS=${BITS:-8}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export KDLAB_CACHE=$OUT/cache WANDB_MODE=offline OMP_NUM_THREADS=1
PY=${PYTHON:-.venv/bin/python}
POST="post.quantize=qat post.quant_weight_bits=$BITS post.latency.threads=1"
for s in 0 1; do
  D=$OUT/seed$s
  if [ -f "$D/student.pt" ]; then
    nice -n 15 $PY -m kdlab.report.evaluate "$D" $POST post.qat_teacher=true > "$OUT/seed$s-w$BITS-kd.log" 2>&1
  else
    nice -n 15 $PY -m kdlab seed=$s teacher_seed=0 $POST logger=none hydra.run.dir="$D" > "$OUT/seed$s-w$BITS-kd.log" 2>&1
  fi
  cp "$D/results.json" "$OUT/seed$s-w$BITS-qat_kd.json"
  nice -n 15 $PY -m kdlab.report.evaluate "$D" $POST post.qat_teacher=false > "$OUT/seed$s-w$BITS-ce.log" 2>&1
  cp "$D/results.json" "$OUT/seed$s-w$BITS-qat_ce.json"
done
echo DONE
