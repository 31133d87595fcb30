"""log p of a molecule against log p of one of its strings, on held-out MOSES molecules.

The fragment-block model learned each molecule with its blocks in a random order, so it
spreads the molecule's probability over its n! block orders; one string's log p understates
the molecule's by about log n!.  This script scores the same test molecules both ways, with
the one-pass marginal and with the AO-ARM over many orders, and prints them side by side:

* one string: the canonical block order, the AO-ARM over M random position orders;
* the molecule: the marginal summed over up to K block orders (all of them where there are no
  more), the AO-ARM over M (block order, position order) pairs, one pass set per pair, so both
  AO-ARM rows cost the same.

Two independent draws of the AO-ARM's orders bound the rank correlation a marginal can reach.

    python bench/molecule_likelihood.py --n 100 --orders 16 --spellings 64 --out docs/eval/molecules
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mam_core.chem.molecules import tokenizer_of
from mam_core.chem.moses import load_moses
from mam_core.core.checkpoint import load
from mam_core.paths import default_model_path
from mam_core.workflows.evaluation import (correlations, likelihood_agreement,
                                           molecule_likelihoods)

COLUMNS = ("nll_arm_nats", "nll_mam_nats", "relative_gap", "spearman", "nll_arm_mean_nats",
           "spearman_mean", "slope_mean", "mean_abs_diff_nats")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(default_model_path()))
    p.add_argument("--n", type=int, default=100, help="MOSES test molecules (the first n)")
    p.add_argument("--orders", type=int, default=16, help="AO-ARM orders (or pairs) per molecule")
    p.add_argument("--spellings", type=int, default=64,
                   help="block orders the marginal sums per molecule")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder for molecules.csv and summary.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load(args.model, "cpu").float().eval()
    tok = tokenizer_of(model)
    if tok is None or not tok.many_spellings:
        raise SystemExit(f"{args.model}: not a model that writes a molecule several ways")
    test = load_moses("test", limit=args.n)
    enc = tok.encode_filtered(test)
    smiles = [test[i] for i in enc.kept]
    t0 = time.perf_counter()
    one = likelihood_agreement(model, enc.ids, args.orders, seed=args.seed)
    whole, kept, counts = molecule_likelihoods(model, smiles, args.spellings, args.orders,
                                               seed=args.seed)
    again, _, _ = molecule_likelihoods(model, smiles, 1, args.orders, seed=args.seed + 1000)
    seconds = time.perf_counter() - t0
    assert kept == list(range(len(smiles)))
    rows = {"one string (canonical order)": one.summary(),
            f"the molecule (≤ {args.spellings} block orders)": whole.summary()}
    print(f"{len(smiles)} MOSES test molecules, AO-ARM over {args.orders} orders; "
          f"{seconds:.0f} s on {args.threads} thread(s); block orders per molecule: median "
          f"{int(np.median(counts))}, mean log count {np.log(counts).mean():.2f} nats\n")
    print("| | " + " | ".join(COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[c]:.3f}" for c in COLUMNS) + " |")
    ceiling = correlations(whole.arm, again.arm)["spearman"]
    ceiling_mean = correlations(whole.arm_mean, again.arm_mean)["spearman"]
    print(f"\ntwo draws of the AO-ARM's pairs agree at Spearman {ceiling:.3f} (log-mean-exp), "
          f"{ceiling_mean:.3f} (mean): the ceiling for the molecule row")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"smiles": smiles, "block_orders": counts,
                      "log_p_mam_string": one.mam, "log_p_arm_string": one.arm,
                      "log_p_mam_molecule": whole.mam, "log_p_arm_molecule": whole.arm,
                      "log_p_arm_molecule_mean": whole.arm_mean,
                      "log_p_arm_molecule_again": again.arm}).to_csv(
            out / "molecules.csv", index=False)
        (out / "summary.json").write_text(json.dumps(
            {"rows": rows, "ceiling_spearman": ceiling, "ceiling_spearman_mean": ceiling_mean,
             "settings": vars(args), "seconds": seconds}, indent=2, default=float))


if __name__ == "__main__":
    main()
