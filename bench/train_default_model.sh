#!/usr/bin/env bash
# Retrain the shipped default molecule model: fragment blocks (BRICS fragments as SMILES blocks
# joined by %NN labels, each molecule with its fragments in a random order) on the full MOSES
# train split, read from the molsets wheel.
#
#   bash bench/train_default_model.sh            # everything, resuming whatever is done
#   THREADS=1 bash bench/train_default_model.sh  # leave a core free for other work
#
# The shipped model went through these stages (each resumes after an interruption: kill it, run
# the script again; stop one cleanly by creating $RUNS/stop, delete the file before resuming):
#
# 1. data: 1.58 M molecules, one shuffled fragment-block string each (17 min on 2 cores).
# 2. stage 1 on CPU (AO-ARM, uniform orders): 11,800 steps of a 20,000-step schedule, then
#    finished on a 14,000-step one (ARM_STEPS=14000); 9.0 hours of step time on 2 cores shared
#    with other work (about 1.2 s a step alone, 4.7 hours).
# 3. stage 2 on CPU: a 1,000-step distillation of the step-8,200 weights at lr 1e-3 (MARGINAL_FROM),
#    then DISTILL_STEPS=1000 at DISTILL_LR=3e-4 (29 min); exported as the previous default model.
# 4. stage 1 continued on one GPU (bench/train_gpu.py --init, float32 with TF32 matrix products):
#    3,724 steps of 1,024 in 148 s on an NVIDIA H200, every epoch a new fragment order; held-out
#    AO-ARM NLL 41.9 -> 37.7 nats. On 2 CPU cores the same steps are about 30,000 steps of 128
#    (`mam train-arm --init`), some 10 hours.
# 5. prefix contexts on CPU: 1,200 steps of 128 at lr 3e-4 with --l2r-fraction 0.5 (19 min):
#    left-to-right NLL 36.8 -> 35.2 nats, quality of 300 samples at T 0.7 / top-p 0.95 0.74 -> 0.82.
# 6. stage 2 again on CPU against those conditionals, from the marginal of stage 3 (--init keeps
#    it): 1,200 steps of 64 at lr 3e-4 on one thread; then 600 steps of 64 on training
#    molecules only (--data-fraction 1.0, 18 min on one thread): mean MaM-vs-AO-ARM gap 13 % -> 1.2 %.
#    Exported as the previous default model (sampling T 0.7 / top-p 0.95).
# Stages 7-10 made the shipped file from those weights:
# 7. prefix contexts for longer, from stage 6b's weights: a 10,000-step cosine schedule at lr 6e-5,
#    batch 128, half of each batch left to right, on one thread (about 1.7 s a step); the kept
#    weights stopped at step 8,780, where the learning rate had fallen to 4 % of its peak
#    (checkpoints/default_arm_step8780.pt, half precision): left-to-right NLL 35.2 -> 34.2 nats.
# 8. stage 2 once more against those conditionals, from the step-8,780 weights: 1,200 steps
#    (32 min on 2 cores), then 600 on molecules only (10 min): held-out AO-ARM NLL 37.00 -> 36.68
#    nats, MaM 36.51 -> 36.21 (mam eval, 500 MOSES test molecules).
# 9. export: half precision, outlier calibration on 5,000 training molecules, sampling settings
#    SAMPLE_T=0.7 / SAMPLE_TOP_P=0.95 (bench/sampling_orders.py, 1,000 molecules each: quality
#    0.864, internal diversity 0.839 against the test set's 0.864, FCD 6.9; top-p 0.9 gives 0.871
#    but 0.833 and 8.8).
# 10. stage 2 over chains of steps, against the same conditionals, from stage 9's file: 250 steps
#    of 64 molecules constraining 16 consecutive steps of an order at a time (--sc-steps 16, lr
#    5e-4), then 220 more at lr 3e-4 (57 min on one thread, about 7 s a step): the marginal's
#    spread slope on the AO-ARM's 0.43 -> 0.63, Spearman on 100 test molecules 0.818 -> 0.864
#    (bench/marginal_vs_reference.py); exported with the same settings as stage 9.
# 11. chains of 32 steps, from stage 10's file, on the first 60,000 embedded MOSES training
#    molecules: 300 steps of 64 at lr 3e-4 under bfloat16 autocast (61 min on one thread of an
#    AMD EPYC, 12 s a step; float32 took 24 s, and the shipped run's first 55 steps ran in it):
#    slope 0.63 -> 0.75, Spearman 0.870 -> 0.902, mean absolute error to the order average
#    2.69 -> 2.34 nats; exported as before, then with the sampling settings of step 12.
# 12. sampling settings (bench/sampling_orders.py, docs/sampling/README.md): temperature 0.85,
#    top-p 0.95 and the constraint "syntax", which leaves aromatic rings to the model and draws a
#    molecule again when RDKit cannot kekulise it: of 1,000 delivered molecules 0.844 drug-like
#    (0.847 at 0.7 / full, the stage-11 export), FCD at 1,000 7.50 -> 5.21, about 1.2 draws each;
#    at 30,000 (bench/fcd_at_scale.py, docs/eval/fcd_30k) 6.26 -> 4.10, quality 0.846 -> 0.850.
# 13. outlier calibration of the molecule, not of one string: the export's calibration scores
#    log p(string) + log N, N the molecule's block orders (mam_core.workflows.outliers;
#    re-exported from the shipped file with the same weights, 31 s): see docs/outliers/README.md.
#
# Stage 4 runs bench/train_gpu.py where CUDA is present (on a GPU machine without RDKit, run it
# there by hand on $RUNS/tokens.npz and put its arm.pt in $RUNS/gpu/); otherwise it runs the
# same number of molecules with `mam train-arm --init` on this machine's CPU.
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
[ -f "$RUNS/previous.pt" ] || mam export --model "$RUNS/mam/checkpoint.pt" --out "$RUNS/previous.pt" \
    --half --calibrate 0
# 4. stage 1 continued: 150 s on one GPU, or the same number of molecules on this CPU
if [ ! -f "$RUNS/gpu/arm.pt" ]; then
    if python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
        [ -f "$RUNS/tokens.npz" ] || python bench/pack_tokens.py --data "$RUNS/data.pt" \
            --out "$RUNS/tokens.npz"
        python bench/train_gpu.py --data "$RUNS/tokens.npz" --out "$RUNS/gpu" --init "$RUNS/previous.pt" \
            --precision fp32 --arm-seconds 150 --distill-seconds 0 --lr 5e-4 --warmup 200 --reorders 1
    else
        mam train-arm --data "$RUNS/data.pt" --init "$RUNS/previous.pt" --preset cpu_small \
            --steps 30000 --batch-size 128 --lr 5e-4 --warmup 200 --checkpoint-every 200 \
            --stop-file "$RUNS/stop" --threads "$THREADS" --out "$RUNS/cont" --resume
        halt_if_stopped "stage 1 continued"
        mkdir -p "$RUNS/gpu" && cp "$RUNS/cont/checkpoint.pt" "$RUNS/gpu/arm.pt"
    fi
fi
# 5. prefix contexts: half of each batch trained in the left-to-right order the sampler uses
mam train-arm --data "$RUNS/data.pt" --init "$RUNS/gpu/arm.pt" --preset cpu_small --l2r-fraction 0.5 \
    --steps 1200 --batch-size 128 --lr 3e-4 --warmup 50 --checkpoint-every 100 \
    --stop-file "$RUNS/stop" --threads "$THREADS" --out "$RUNS/l2r" --resume
halt_if_stopped "prefix contexts"
# Stage 2 against given conditionals, twice: 1,200 steps on data and on-policy chains, then 600 on
# molecules only (random-order chains of fragment blocks are mostly not molecules).
#   distill_both INIT FIRST_OUT SECOND_OUT LABEL
distill_both() {
    mam distill --data "$RUNS/data.pt" --init "$1" --preset cpu_small \
        --marginal-pool cls+sum --steps 1200 --batch-size 64 --lr 3e-4 --warmup 50 \
        --checkpoint-every 100 --stop-file "$RUNS/stop" --threads "$THREADS" --out "$2" --resume
    halt_if_stopped "$4"
    mam distill --data "$RUNS/data.pt" --init "$2/checkpoint.pt" --preset cpu_small \
        --marginal-pool cls+sum --steps 600 --batch-size 64 --lr 3e-4 --warmup 50 \
        --data-fraction 1.0 --checkpoint-every 100 --stop-file "$RUNS/stop" --threads "$THREADS" \
        --out "$3" --resume
    halt_if_stopped "$4 on molecules"
}
# 6. stage 2 against the final conditionals (the marginal continues from stage 3's), then 6b
distill_both "$RUNS/l2r/checkpoint.pt" "$RUNS/mam2" "$RUNS/mam3" "stage 2 again"
# 7. prefix contexts for longer (checkpoints/default_arm_step8780.pt stopped at step 8,780 of
#    these 10,000)
mam train-arm --data "$RUNS/data.pt" --init "$RUNS/mam3/checkpoint.pt" --preset cpu_small \
    --l2r-fraction 0.5 --steps 10000 --batch-size 128 --lr 6e-5 --warmup 50 --checkpoint-every 100 \
    --log-every 50 --eval-every 500 --eval-samples 128 --stop-file "$RUNS/stop" --threads "$THREADS" \
    --out "$RUNS/cont" --resume
halt_if_stopped "prefix contexts for longer"
# 8. stage 2 against those conditionals, then on molecules only
distill_both "$RUNS/cont/checkpoint.pt" "$RUNS/mam4" "$RUNS/mam5" "stage 2, third time"
# 9. the shipped file: half precision, the outlier calibration made on 5,000 training molecules,
#    and the sampling settings bench/sampling_orders.py chose (SAMPLE_T / SAMPLE_TOP_P)
[ -f "$RUNS/stage9.pt" ] || mam export --model "$RUNS/mam5/checkpoint.pt" --out "$RUNS/stage9.pt" \
    --half --calibrate 5000 --wheel "$WHEEL" --temperature "${SAMPLE_T:-0.7}" \
    --top-p "${SAMPLE_TOP_P:-0.95}"
# 10. stage 2 over chains of 16 steps, on molecules only, twice (the second at a lower rate)
#   chain_distill INIT OUT STEPS LR WARMUP
chain_distill() {
    mam distill --data "$RUNS/data.pt" --init "$1" --preset cpu_small --marginal-pool cls+sum \
        --sc-steps 16 --steps "$3" --batch-size 64 --lr "$4" --warmup "$5" --data-fraction 1.0 \
        --checkpoint-every 100 --stop-file "$RUNS/stop" --threads "$THREADS" --out "$2" --resume
    halt_if_stopped "chain distillation $2"
}
chain_distill "$RUNS/stage9.pt" "$RUNS/chain1" 250 5e-4 50
chain_distill "$RUNS/chain1/checkpoint.pt" "$RUNS/chain2" 220 3e-4 10
[ -f "$RUNS/stage10.pt" ] || mam export --model "$RUNS/chain2/checkpoint.pt" --out "$RUNS/stage10.pt" \
    --half --calibrate 5000 --wheel "$WHEEL" --temperature "${SAMPLE_T:-0.7}" \
    --top-p "${SAMPLE_TOP_P:-0.95}"
# 11. longer chains (bfloat16 autocast: about twice as fast on CPUs with fast bfloat16 products)
mam distill --data moses:train --limit 60000 --init "$RUNS/stage10.pt" --preset cpu_small \
    --marginal-pool cls+sum --sc-steps 32 --steps 300 --batch-size 64 --lr 3e-4 --warmup 10 \
    --data-fraction 1.0 --precision "${CHAIN_PRECISION:-bf16}" --checkpoint-every 50 \
    --stop-file "$RUNS/stop" --threads "$THREADS" --out "$RUNS/chain3" --resume
halt_if_stopped "chain distillation $RUNS/chain3"
mam export --model "$RUNS/chain3/checkpoint.pt" --out "${OUT_MODEL:-data/models/default.pt}" --half \
    --calibrate 5000 --wheel "$WHEEL" --temperature "${FINAL_T:-0.85}" \
    --top-p "${SAMPLE_TOP_P:-0.95}" --constraint "${FINAL_CONSTRAINT:-syntax}"
