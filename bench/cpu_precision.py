"""Training speed in float32 and under bfloat16 autocast, side by side, from the same weights.

Runs ``mam train-arm`` (stage 1) and ``mam distill`` (stage 2) for a few steps in each precision
and attention kernel (``--attention``) from one starting model on the same batches (same seed),
then prints seconds per step and the mean loss over the last half of the steps. On CPUs with
native bfloat16 (AVX512-BF16, AMX) the matrix products run about twice as fast; the loss column
says whether the lower precision costs anything in what is learned over those steps.

    python bench/cpu_precision.py --data runs/default/data.pt --init data/models/default.pt

On one AMD EPYC core with AVX512-BF16 (beside a training run on the other), 40 steps from the
shipped model, stage 1 in steps of 128 and stage 2 in steps of 64:

| stage | precision | attention | s / step | speed-up | mean loss, second half |
|---|---|---|---|---|---|
| train-arm | fp32 | fused | 2.060 | 1.00× | 39.375 |
| train-arm | bf16 | fused | 1.799 | 1.14× | 39.357 |
| train-arm | bf16 | plain | 0.999 | 2.06× | 39.382 |
| distill | fp32 | fused | 2.340 | 1.00× | 16.385 |
| distill | bf16 | fused | 1.997 | 1.17× | 16.605 |
| distill | bf16 | plain | 1.260 | 1.86× | 16.163 |

Under bfloat16 PyTorch's fused (flash) attention spent more time in its backward pass than every
matrix product of the step together (a third of a stage-1 step), and its math kernel computes in
float32 (1.32 s a step): so training under bfloat16 on CPU computes attention as two plain matrix
products and a float32 softmax (``--attention auto``;
:func:`mam_core.core.networks.plain_attention`).
The marginal heads stay in float32 under the autocast: they compare log-marginals that differ by
a few tenths of a nat, finer than bfloat16 resolves at |log p| ≈ 40 (steps of 0.25); with the
heads in bfloat16 the self-consistency loss reached 30.6 against 17.2.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from mam_core.core.checkpoint import load_checkpoint
from mam_core.training.loop import median_seconds_per_step


#: (precision, attention kernel) of each run; float32 is the base of the speed-up column.
VARIANTS = [("fp32", "fused"), ("bf16", "fused"), ("bf16", "plain")]


def run(stage: str, precision: str, attention: str, args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "mam_core.cli", stage, "--data", args.data, "--init", args.init,
           "--limit", str(args.limit), "--preset", "cpu_small", "--steps", str(args.steps),
           "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--warmup", "0",
           "--precision", precision, "--attention", attention, "--log-every", "5",
           "--checkpoint-every", "0",
           "--threads", str(args.threads), "--no-progress", "--out", str(out)]
    if stage == "train-arm":
        cmd += ["--l2r-fraction", "0.5"]
    else:
        cmd += ["--data-fraction", "1.0"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    history = load_checkpoint(out / "checkpoint.pt").metadata["training"][-1]["history"]
    sec = median_seconds_per_step(history)
    late = [r["loss"] for r in history if r["step"] > args.steps // 2]
    return {"stage": stage, "precision": precision, "attention": attention, "sec_per_step": sec,
            "late_loss": statistics.fmean(late)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="prepared molecules (mam prepare-data)")
    p.add_argument("--init", required=True, help="model to start both runs from")
    p.add_argument("--limit", type=int, default=20000, help="molecules to load")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--stages", nargs="+", default=["train-arm", "distill"])
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for stage in args.stages:
            for precision, attention in VARIANTS:
                rows.append(run(stage, precision, attention, args,
                                Path(tmp) / f"{stage}-{precision}-{attention}"))
                print(rows[-1], flush=True)
    print(f"\n{args.steps} steps of {args.batch_size}, {args.threads} threads, from {args.init}\n")
    print("| stage | precision | attention | s / step | speed-up | mean loss, second half |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        base = next(b for b in rows if b["stage"] == r["stage"] and b["precision"] == "fp32")
        print(f"| {r['stage']} | {r['precision']} | {r['attention']} | {r['sec_per_step']:.3f} | "
              f"{base['sec_per_step'] / r['sec_per_step']:.2f}× | {r['late_loss']:.3f} |")


if __name__ == "__main__":
    main()
