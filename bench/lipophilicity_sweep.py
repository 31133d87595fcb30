"""Which settings move fine-tuning towards logP = −4 fastest on a CPU budget?

Fine-tunes the shipped default model for ``--steps`` steps per setting (block size of the
censor-and-resample move ``gibbs_k``, learning rate, β) and scores 500 fresh any-order samples
after each, so the settings are compared on what a user would get, not on the training chains.

    python bench/lipophilicity_sweep.py --steps 200 --gibbs-k 4 16 --lr 1e-3 3e-3 --beta 1
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
from mam_core.core.checkpoint import load  # noqa: E402
from mam_core.core.config import TrainConfig  # noqa: E402
from mam_core.workflows.finetune import fine_tune  # noqa: E402
from mam_core.chem.molecules import tokenizer_of  # noqa: E402
from mam_core.paths import default_model_path  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--gibbs-k", type=int, nargs="+", default=[4])
    p.add_argument("--lr", type=float, nargs="+", default=[1e-3])
    p.add_argument("--beta", type=float, nargs="+", default=[1.0])
    p.add_argument("--target", type=float, default=-4.0)
    p.add_argument("--tau", type=float, default=0.1)
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--out", default=None, help="optional JSON file for the rows")
    args = p.parse_args()
    rows = []
    print("| gibbs_k | lr | beta | mean logP | within ±0.5 | uniqueness | mean QED | s/step |",
          flush=True)
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for k, lr, beta in itertools.product(args.gibbs_k, args.lr, args.beta):
        torch.manual_seed(0)
        model = load(default_model_path())
        energy = get_energy("lipophilicity", tokenizer=tokenizer_of(model), target=args.target,
                            tau=args.tau)
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=lr, sc_weight=1.0,
                          gibbs_k=k)
        t0 = time.perf_counter()
        fine_tune(model, energy, cfg, beta=beta, progress=False)
        sec = (time.perf_counter() - t0) / args.steps
        r, _ = summarise(model, args.samples, args.target)
        row = {"gibbs_k": k, "lr": lr, "beta": beta, **r, "sec_per_step": sec}
        rows.append(row)
        print(f"| {k} | {lr:g} | {beta:g} | {r['mean_logP']:.2f} | {r['within_0.5']:.3f} | "
              f"{r['uniqueness']:.3f} | {r['mean_QED']:.2f} | {sec:.2f} |", flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
