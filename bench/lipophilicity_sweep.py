"""Which fine-tuning settings reach logP = −4 and keep molecules drug-like?

Fine-tunes the shipped default model for ``--steps`` steps per setting (learning rate, β, τ, and
the method: ``sampler`` draws fresh molecules left to right under the syntax constraint,
``chains`` uses the paper's persistent block-Gibbs chains) and scores ``--samples`` molecules
drawn as the app draws them after each, so settings are compared on what a chemist would get:
mean logP, the fraction within ±0.5 of the target, mean QED and GenMol's quality (valid, unique,
QED ≥ 0.6 and SA ≤ 4). ``--precision fp32 bf16`` compares the arithmetic of the training steps
(the app picks bfloat16 where it is faster:
:func:`mam_core.workflows.finetune.fine_tune_precision`).

    python bench/lipophilicity_sweep.py --steps 60 --lr 3e-4 1e-3 --beta 1 --tau 1 10
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lipophilicity_design import summarise  # noqa: E402

from energies import get_energy  # noqa: E402
from mam_core.chem.molecules import tokenizer_of  # noqa: E402
from mam_core.core.checkpoint import load  # noqa: E402
from mam_core.core.config import TrainConfig  # noqa: E402
from mam_core.paths import default_model_path  # noqa: E402
from mam_core.workflows.finetune import METHODS, fine_tune  # noqa: E402

COLUMNS = ("method", "precision", "lr", "beta", "tau", "mean_logP", "within_0.5", "validity",
           "uniqueness", "mean_QED", "quality", "sec_per_step")


def _row(r: dict) -> str:
    return "| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c])
                             for c in COLUMNS) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--method", nargs="+", default=["sampler"],
                   choices=[m for m in METHODS if m != "auto"])
    p.add_argument("--lr", type=float, nargs="+", default=[1e-3])
    p.add_argument("--beta", type=float, nargs="+", default=[1.0])
    p.add_argument("--tau", type=float, nargs="+", default=[1.0])
    p.add_argument("--positions", type=int, default=None,
                   help="sampler method: positions per molecule in the policy gradient "
                        "(default: the trainer's)")
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                   help="arithmetic of the training steps")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=10, help="linear learning-rate warm-up steps")
    p.add_argument("--target", type=float, default=-4.0)
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--no-baseline", action="store_true", help="skip the untuned model's row")
    p.add_argument("--out", default=None, help="optional JSON file for the rows")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS), flush=True)

    def keep(row: dict) -> None:
        rows.append(row)
        print(_row(row), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=2))

    if not args.no_baseline:
        r, _ = summarise(load(default_model_path()), args.samples, args.target)
        keep({"method": "before", "precision": "", "lr": 0.0, "beta": 0.0, "tau": 0.0, **r,
              "sec_per_step": 0.0})
    for method, precision, lr, beta, tau in itertools.product(args.method, args.precision,
                                                              args.lr, args.beta, args.tau):
        torch.manual_seed(0)
        model = load(default_model_path())
        energy = get_energy("lipophilicity", tokenizer=tokenizer_of(model), target=args.target,
                            tau=tau)
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=lr, sc_weight=1.0,
                          warmup=args.warmup, log_every=10, precision=precision)
        t0 = time.perf_counter()
        extra = {"positions_per_row": args.positions} if args.positions and method == "sampler" \
            else {}
        fine_tune(model, energy, cfg, beta=beta, method=method, progress=False, **extra)
        sec = (time.perf_counter() - t0) / args.steps
        r, _ = summarise(model, args.samples, args.target)
        keep({"method": method, "precision": precision, "lr": lr, "beta": beta, "tau": tau, **r,
              "sec_per_step": sec})


if __name__ == "__main__":
    main()
