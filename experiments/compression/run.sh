#!/bin/bash
# QAT measurement: default pair (resnet18 -> test_resnet, digits), 2 seeds, QAT+KD in the run, QAT-alone via kdlab-evaluate.
# Usage (repo root): OUT=/some/dir experiments/compression/run.sh && python experiments/compression/summarize.py $OUT
set -ex
OUT=${OUT:-/tmp/kdlab-compression}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export KDLAB_CACHE=$OUT/cache WANDB_MODE=offline OMP_NUM_THREADS=1
PY=${PYTHON:-.venv/bin/python}
for s in 0 1; do
  D=$OUT/seed$s
  nice -n 15 $PY -m kdlab seed=$s teacher_seed=0 post.quantize=qat logger=none post.latency.threads=1 hydra.run.dir=$D > $OUT/seed$s.log 2>&1
  cp $D/results.json $OUT/seed$s-qat_kd.json
  nice -n 15 $PY -m kdlab.report.evaluate $D post.quantize=qat post.qat_teacher=false post.latency.threads=1 > $OUT/seed$s-eval.log 2>&1
  cp $D/results.json $OUT/seed$s-qat_ce.json
done
echo DONE
