#!/usr/bin/env bash
# Continue training the shipped default model on CPU, for hours and across interruptions, into a
# candidate that replaces data/models/default.pt only once `mam eval` says it is better.
#
#   . .venv/bin/activate
#   RUNS=~/mam-runs/next THREADS=1 nohup bash bench/continue_default_model.sh > next.log 2>&1 &
#
# Every stage resumes: kill the script (or create $RUNS/stop, and delete it before resuming) and
# run it again with the same RUNS; finished stages are skipped. The stages:
#
# 1. stage 1 continued from the shipped weights: 16,000 steps of 128 molecules (2 M molecules,
#    1.3 passes over MOSES train) on a cosine from lr 3e-4, half of each batch left to right, under
#    bfloat16 with plain attention (1.0 s a step on one AMD EPYC thread beside other work: about
#    4.5 hours). Held-out NLL, left-to-right NLL and sample quality every 1,000 steps in the
#    checkpoint's history; don't edit this file while it runs (bash reads it as it goes).
# 2. stage 2 against those conditionals, from the shipped marginal (kept by --init): 1,200 steps
#    of 64 on data and on-policy chains, then 600 on molecules only (about 50 minutes).
# 3. stage 2 over chains of steps, as stages 10-11 of bench/train_default_model.sh: 16 steps (250
#    steps at 5e-4, 220 at 3e-4), then 32 steps (300 at 3e-4) on 60,000 embedded training molecules.
# 4. export: half precision, outlier calibration on 5,000 training molecules and the shipped
#    sampling settings (T 0.85, top-p 0.95, constraint syntax) -> $RUNS/candidate.pt
# 5. `mam eval` of the candidate and of the shipped file, the same test molecules and seeds, in
#    $RUNS/eval_candidate and $RUNS/eval_shipped (report.md in each).
set -euo pipefail
RUNS=${RUNS:-runs/next}
WHEEL_DIR=${WHEEL_DIR:-/tmp/molsets}
THREADS=${THREADS:-1}
SHIPPED=${SHIPPED:-data/models/default.pt}
DATA=${DATA:-$RUNS/data.pt}
ARM_STEPS=${ARM_STEPS:-16000}
mkdir -p "$RUNS"
halt_if_stopped() { if [ -f "$RUNS/stop" ]; then echo "stopped by $RUNS/stop after $1"; exit 0; fi; }
WHEEL="$WHEEL_DIR/molsets-0.3.1-py3-none-any.whl"
[ -f "$WHEEL" ] || pip download --no-deps molsets==0.3.1 -d "$WHEEL_DIR"
[ -f "$DATA" ] || mam prepare-data --data moses --wheel "$WHEEL" --copies 1 --max-length 64 \
    --jobs 2 --seed 0 --out "$DATA"
COMMON=(--preset cpu_small --precision bf16 --stop-file "$RUNS/stop" --threads "$THREADS" --resume
        --no-progress)
# 1. stage 1 continued
mam train-arm --data "$DATA" --init "$SHIPPED" --l2r-fraction 0.5 --steps "$ARM_STEPS" \
    --batch-size 128 --lr 3e-4 --warmup 300 --checkpoint-every 100 --log-every 50 \
    --eval-every 1000 --eval-samples 128 --out "$RUNS/arm" "${COMMON[@]}"
halt_if_stopped "stage 1"
# 2. stage 2 on data and chains, then on molecules only
mam distill --data "$DATA" --init "$RUNS/arm/checkpoint.pt" --marginal-pool cls+sum \
    --steps 1200 --batch-size 64 --lr 3e-4 --warmup 50 --checkpoint-every 100 \
    --out "$RUNS/mam" "${COMMON[@]}"
halt_if_stopped "stage 2"
mam distill --data "$DATA" --init "$RUNS/mam/checkpoint.pt" --marginal-pool cls+sum \
    --steps 600 --batch-size 64 --lr 3e-4 --warmup 50 --data-fraction 1.0 --checkpoint-every 100 \
    --out "$RUNS/mam_molecules" "${COMMON[@]}"
halt_if_stopped "stage 2 on molecules"
# 3. chains of 16 steps twice, then of 32
#   chain INIT OUT SC_STEPS STEPS LR WARMUP
chain() {
    mam distill --data moses:train --limit 60000 --init "$1" --marginal-pool cls+sum \
        --sc-steps "$3" --steps "$4" --batch-size 64 --lr "$5" --warmup "$6" --data-fraction 1.0 \
        --checkpoint-every 25 --out "$2" "${COMMON[@]}"
    halt_if_stopped "chains $2"
}
chain "$RUNS/mam_molecules/checkpoint.pt" "$RUNS/chain16a" 16 250 5e-4 50
chain "$RUNS/chain16a/checkpoint.pt" "$RUNS/chain16b" 16 220 3e-4 10
chain "$RUNS/chain16b/checkpoint.pt" "$RUNS/chain32" 32 300 3e-4 10
# 4. the candidate file
[ -f "$RUNS/candidate.pt" ] || mam export --model "$RUNS/chain32/checkpoint.pt" \
    --out "$RUNS/candidate.pt" --half --calibrate 5000 --wheel "$WHEEL" --temperature 0.85 \
    --top-p 0.95 --constraint syntax
# 5. both files through the same evaluation
for name in candidate shipped; do
    model="$RUNS/candidate.pt"; [ "$name" = shipped ] && model="$SHIPPED"
    [ -f "$RUNS/eval_$name/report.md" ] || mam eval --model "$model" --out "$RUNS/eval_$name" \
        --n-test 500 --orders 2 --moses-wheel "$WHEEL" --threads "$THREADS"
done
echo "candidate: $RUNS/candidate.pt; reports: $RUNS/eval_candidate/report.md, $RUNS/eval_shipped/report.md"
