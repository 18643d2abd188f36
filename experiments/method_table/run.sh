#!/usr/bin/env bash
# Method table: every kd method with the default teacher/student (resnet18 -> mobilenetv3_small_100) on the default
# data (digits), 2 seeds, beside kd=none. Writes runs/ (one folder per job) and table.md.
#   experiments/method_table/run.sh                      # the whole table
#   METHODS=none,response SEEDS=0 experiments/method_table/run.sh trainer.max_epochs=2   # a quick look
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
HERE=experiments/method_table
OUT=${OUT:-$HERE/runs}
METHODS=${METHODS:-none,response,feature,relation,dkd,dist,at,nst,sp,pkt,cc,crd,fitnet,pkd,at_kd,ls,ctkd,tfkd,cskd,reviewkd,dml,takd}
SEEDS=${SEEDS:-0,1}
PAIR="teacher=resnet18 student=mobilenet"  # the table's pair, named: the repo's default student is now test_resnet
export KDLAB_CACHE=${KDLAB_CACHE:-$OUT/cache} WANDB_MODE=${WANDB_MODE:-offline}
# 1. Train and cache each seed's teacher first, so that no method's seconds per epoch include teacher training.
$PY -m kdlab -m kd=none seed="$SEEDS" $PAIR trainer.max_epochs=1 logger=none hydra.sweep.dir="$OUT/teachers" "$@"
# 2. The sweep proper (every job loads its seed's cached teacher).
$PY -m kdlab -m kd="$METHODS" seed="$SEEDS" $PAIR logger=csv hydra.sweep.dir="$OUT/sweep" "$@"
# 3. The table.
$PY $HERE/table.py "$OUT/sweep" | tee $HERE/table.md
