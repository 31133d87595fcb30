#!/usr/bin/env bash
# Retrain the shipped default molecule model: fragment blocks (BRICS fragments as SMILES blocks
# joined by %NN labels, each molecule with its fragments in a random order) on the full MOSES
# train split, read from the molsets wheel.
#
#   bash bench/train_default_model.sh            # everything, resuming whatever is done
#   THREADS=1 bash bench/train_default_model.sh  # leave a core free for other work
#
# MARGINAL_FROM=ckpt (with a smaller DISTILL_STEPS) starts stage 2 from a distillation of an
# earlier stage-1 checkpoint, run on the spare core while stage 1 went on (DISTILL_LR=3e-4 then:
# the marginal is already close, and 1e-3 makes it jump by several nats between checkpoints).
# Stage 4 writes data/models/default.pt (OUT_MODEL=... elsewhere) with the sampling settings
# SAMPLE_T / SAMPLE_TOP_P that bench/sampling_orders.py chose.
#
# The shipped model: stage 1 ran 11,800 steps of a 20,000-step schedule, then finished on a
# 14,000-step one (ARM_STEPS=14000: the learning rate dropped from 4e-4 to 1e-4 and decayed);
# stage 2 with MARGINAL_FROM (a 1,000-step distillation of the step-8,200 weights at lr 1e-3),
# DISTILL_STEPS=1000, DISTILL_LR=3e-4; SAMPLE_T=0.7, SAMPLE_TOP_P=0.95. Stage 1 recorded 9.0 hours
# of step time on 2 CPU cores, much of it shared with other work (about 1.2 s a step alone, 4.7 hours);
# stage 2 took 29 minutes (1.7 s a step).
#
# Every stage resumes after an interruption (kill it, run the script again). Stop a stage
# cleanly by creating $RUNS/stop (a checkpoint is written; delete the file before resuming).
set -euo pipefail
RUNS=${RUNS:-runs/default}
WHEEL_DIR=${WHEEL_DIR:-/tmp/molsets}
THREADS=${THREADS:-2}
ARM_STEPS=${ARM_STEPS:-14000}
DISTILL_STEPS=${DISTILL_STEPS:-4000}
DISTILL_LR=${DISTILL_LR:-1e-3}
mkdir -p "$RUNS"
# A stage stopped by $RUNS/stop exits normally with a checkpoint; the next stage must not start
# from that half-finished result, so the script ends there.
halt_if_stopped() { if [ -f "$RUNS/stop" ]; then echo "stopped by $RUNS/stop after $1"; exit 0; fi; }
WHEEL="$WHEEL_DIR/molsets-0.3.1-py3-none-any.whl"
[ -f "$WHEEL" ] || pip download --no-deps molsets==0.3.1 -d "$WHEEL_DIR"
# 1. data: 1.58 M molecules, one shuffled fragment-block string each (~20 min on 2 cores)
[ -f "$RUNS/data.pt" ] || mam prepare-data --data moses --wheel "$WHEEL" --copies 1 --max-length 64 \
    --jobs 2 --seed 0 --out "$RUNS/data.pt"
# 2. stage 1: any-order conditionals (AO-ARM), with held-out NLL and sample quality every 1,000 steps
mam train-arm --data "$RUNS/data.pt" --preset cpu_small --d-model 192 --n-layers 6 --n-heads 6 \
    --steps "$ARM_STEPS" --batch-size 128 --lr 1e-3 --warmup 500 --checkpoint-every 200 --log-every 50 \
    --eval-every 1000 --eval-samples 128 --stop-file "$RUNS/stop" --threads "$THREADS" \
    --out "$RUNS/arm" --resume
halt_if_stopped "stage 1"
# 3. stage 2: one-pass marginals distilled from the conditionals (data + on-policy chains)
mam distill --data "$RUNS/data.pt" --init "$RUNS/arm/checkpoint.pt" --preset cpu_small \
    --marginal-pool cls+sum --steps "$DISTILL_STEPS" --batch-size 64 --lr "$DISTILL_LR" --warmup 200 \
    --checkpoint-every 200 --stop-file "$RUNS/stop" --threads "$THREADS" --out "$RUNS/mam" --resume \
    ${MARGINAL_FROM:+--marginal-from "$MARGINAL_FROM"}
halt_if_stopped "stage 2"
# 4. the shipped file: half precision, the outlier calibration made on 5,000 training molecules,
#    and the sampling settings bench/sampling_orders.py chose (SAMPLE_T / SAMPLE_TOP_P)
mam export --model "$RUNS/mam/checkpoint.pt" --out "${OUT_MODEL:-data/models/default.pt}" --half \
    --calibrate 5000 --wheel "$WHEEL" ${SAMPLE_T:+--temperature "$SAMPLE_T"} \
    ${SAMPLE_TOP_P:+--top-p "$SAMPLE_TOP_P"}
