"""Compare distilled marginals against a stored AO-ARM reference, in seconds instead of minutes.

Stage 2 changes only the marginal head; the conditionals, and so the AO-ARM reference of a
``mam eval`` run (``test_likelihoods.csv``: ``log_p_arm`` and ``log_p_arm_mean`` over many
orders), stay valid for every marginal distilled from the same conditionals. This script scores
the reference's molecules with each model's one-pass marginal and prints, side by side, the gap
and rank correlation to both reductions and the spread slope (1: the marginal separates
molecules as widely as the conditionals; below 1: it shrinks them towards the average).

    python bench/marginal_vs_reference.py --reference docs/eval/orders16/test_likelihoods.csv \\
        data/models/default.pt runs/distill/checkpoint.pt

A model whose conditionals differ from the reference's is refused (the reference would not
apply): the first rows' conditionals are compared with the first model's.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from mam_core.chem.molecules import tokenizer_of
from mam_core.core.checkpoint import load
from mam_core.workflows.evaluation import correlations, spread_slope


def _conditional_fingerprint(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        half = torch.where(torch.arange(model.D) % 2 == 0, x, model.mask_id)
        return model.conditional_log_probs(half)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="checkpoints distilled from the same conditionals")
    p.add_argument("--reference", default="docs/eval/orders16/test_likelihoods.csv")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ref = pd.read_csv(args.reference)
    lme, mean = ref["log_p_arm"].to_numpy(), ref["log_p_arm_mean"].to_numpy()
    first_fp = None
    print(f"{len(ref)} molecules of {args.reference}: AO-ARM NLL {-lme.mean():.2f} nats "
          f"(log-mean-exp), {-mean.mean():.2f} (mean over orders)\n")
    print("| model | MaM NLL | gap to lme | gap to mean | Spearman lme / mean | slope on mean "
          "| mean abs error to mean |")
    print("|---|---|---|---|---|---|---|")
    for path in args.models:
        model = load(path, "cpu").float().eval()
        x = tokenizer_of(model).encode_batch(ref["smiles"].tolist())
        fp = _conditional_fingerprint(model, x[:8])
        if first_fp is None:
            first_fp = fp
        elif (fp - first_fp).abs().max() > 1e-2:
            raise SystemExit(f"{path}: its conditionals differ from {args.models[0]}'s; the "
                             "reference does not apply to it")
        with torch.no_grad():
            mam = model.log_marginal(x).double().numpy()
        nll = -mam.mean()
        print(f"| {path} | {nll:.2f} | {(nll + lme.mean()) / -lme.mean():+.1%} | "
              f"{(nll + mean.mean()) / -mean.mean():+.1%} | "
              f"{correlations(mam, lme)['spearman']:.3f} / "
              f"{correlations(mam, mean)['spearman']:.3f} | {spread_slope(mam, mean):.2f} | "
              f"{np.abs(mam - mean).mean():.2f} |")


if __name__ == "__main__":
    main()
