"""Training throughput with 1 vs N processes under torchrun, at the same global batch.

Runs the same ``mam`` training command once per process count (``torchrun --standalone``), reads
the median seconds per step from the run's history and prints a table. On a GPU node use one
process per GPU (``--device cuda``); on a CPU the cores are split between the processes, so the
table shows what the gradient all-reduce costs rather than a speed-up.

    python bench/ddp_throughput.py --nprocs 1 2 --device cpu
    python bench/ddp_throughput.py --nprocs 1 2 4 8 --device cuda --batch-size 512 \
        --preset paper_gpu_eb
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mam_core.core.checkpoint import load_checkpoint
from mam_core.training.loop import median_seconds_per_step


def run(nprocs: int, args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nprocs}",
           "-m", "mam_core.cli", "train-eb", "--energy", "ising", "--ising-size",
           str(args.ising_size),
           "--preset", args.preset, "--batch-size", str(args.batch_size), "--steps",
           str(args.steps),
           "--log-every", "10", "--checkpoint-every", "0", "--device", args.device, "--no-progress",
           "--out", str(out)]
    threads = max(1, (os.cpu_count() or 1) // nprocs) if args.device == "cpu" else 1
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    history = load_checkpoint(out / "checkpoint.pt").metadata["training"][-1]["history"]
    sec = median_seconds_per_step(history)
    return {"nprocs": nprocs, "threads": threads, "sec_per_step": sec,
            "chains_per_s": args.batch_size / sec}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--preset", default="mlp_eb")
    p.add_argument("--ising-size", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256,
                   help="global batch, the same for every row")
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.nprocs:
            rows.append(run(n, args, Path(tmp) / f"n{n}"))
    base = rows[0]["sec_per_step"]
    print(f"energy-based Ising {args.ising_size}x{args.ising_size}, preset {args.preset}, global "
          f"batch {args.batch_size}, {args.device}")
    print("| processes | threads each | s/step | chains/s | speed-up |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nprocs']} | {r['threads']} | {r['sec_per_step']:.3f} | "
              f"{r['chains_per_s']:.0f} | {base / r['sec_per_step']:.2f}× |")


if __name__ == "__main__":
    main()
