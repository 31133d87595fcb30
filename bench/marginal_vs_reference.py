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

``--partial-orders M`` adds the half-observed rows of ``mam eval`` (the same molecules, each
position hidden with probability 0.5, the same seed): their AO-ARM reference over M orders is
computed once, with the first model's conditionals (about two minutes for 100 molecules and 16
orders on one thread).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from mam_core.chem.molecules import tokenizer_of
from mam_core.core.checkpoint import load
from mam_core.workflows.evaluation import (LikelihoodAgreement, likelihood_agreement,
                                           mask_random_subsets)


def _conditional_fingerprint(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        half = torch.where(torch.arange(model.D) % 2 == 0, x, model.mask_id)
        return model.conditional_log_probs(half)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="checkpoints distilled from the same conditionals")
    p.add_argument("--reference", default="docs/eval/orders16/test_likelihoods.csv")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--partial-orders", type=int, default=0,
                   help="also compare on half-observed molecules, against this many orders")
    p.add_argument("--seed", type=int, default=0, help="mam eval's --seed (masks and orders)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ref = pd.read_csv(args.reference)
    lme, mean = ref["log_p_arm"].to_numpy(), ref["log_p_arm_mean"].to_numpy()
    first_fp = None
    print(f"{len(ref)} molecules of {args.reference}: AO-ARM NLL {-lme.mean():.2f} nats "
          f"(log-mean-exp), {-mean.mean():.2f} (mean over orders)\n")
    rows, partial_rows = [], []
    partial_ref = None
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
        rows.append(_row(path, mam, lme, mean))
        if args.partial_orders:
            half = mask_random_subsets(x, model.mask_id, 0.5, args.seed)
            if partial_ref is None:
                partial_ref = likelihood_agreement(model, half, args.partial_orders,
                                                   seed=args.seed)
            with torch.no_grad():
                mam_half = model.log_marginal(half).double().numpy()
            partial_rows.append(_row(path, mam_half, partial_ref.arm, partial_ref.arm_mean))
    print(HEADER + "\n".join(rows))
    if partial_rows:
        print(f"\nhalf observed: AO-ARM NLL {-partial_ref.arm.mean():.2f} nats (log-mean-exp over "
              f"{args.partial_orders} orders), {-partial_ref.arm_mean.mean():.2f} (mean)\n")
        print(HEADER + "\n".join(partial_rows))


HEADER = ("| model | MaM NLL | gap to lme | gap to mean | Spearman lme / mean | slope on mean "
          "| mean abs error to mean |\n|---|---|---|---|---|---|---|\n")


def _row(name: str, mam: np.ndarray, lme: np.ndarray, mean: np.ndarray) -> str:
    """One table row, from the same summary ``mam eval`` reports (timings left out)."""
    s = LikelihoodAgreement(mam, lme, seconds_mam=0.0, seconds_arm=None, D=0,
                            arm_mean=mean).summary()
    return (f"| {name} | {s['nll_mam_nats']:.2f} | {s['relative_gap']:+.1%} | "
            f"{s['relative_gap_mean']:+.1%} | {s['spearman']:.3f} / {s['spearman_mean']:.3f} | "
            f"{s['slope_mean']:.2f} | {np.abs(mam - mean).mean():.2f} |")


if __name__ == "__main__":
    main()
