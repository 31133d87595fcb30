"""Which molecule representation should the default model read?  Small models trained the same
way on each (same network, steps, batch, learning rate, molecules), measured side by side:

* de novo: validity, uniqueness and quality (valid, unique, QED >= 0.6, SA <= 4, over requested);
* fragment tasks of ``bench/fragment_design.py``: how often the constraint holds with no
  resampling (valid and containing the fragment, first draw), uniqueness and quality.

    python bench/representation_compare.py \
        --models selfies=runs/rep/selfies.pt safe=runs/rep/safe.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rdkit import rdBase

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fragment_design import DRUGS, run, summarise  # noqa: E402

from mam_core.core import checkpoint as ckpt  # noqa: E402
from mam_core.workflows.generate import generate_molecules  # noqa: E402


def de_novo(model, n: int, seed: int, order: str) -> dict:
    t = generate_molecules(model, n, order=order, seed=seed, max_rounds=1)
    valid = t[t["valid"]]
    unique = valid.drop_duplicates("SMILES")
    good = unique[(unique["QED"] >= 0.6) & (unique["SA"] <= 4)]
    return {"validity": len(valid) / n, "uniqueness": len(unique) / max(len(valid), 1),
            "quality": len(good) / n}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", required=True, help="NAME=checkpoint pairs")
    p.add_argument("--n-denovo", type=int, default=500)
    p.add_argument("--n", type=int, default=40, help="molecules per fragment")
    p.add_argument("--drugs", type=int, default=8)
    p.add_argument("--order", default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="CSV of the table")
    args = p.parse_args(argv)
    rdBase.DisableLog("rdApp.*")
    drugs = dict(list(DRUGS.items())[: args.drugs])
    rows = []
    for spec in args.models:
        name, path = spec.split("=", 1)
        model = ckpt.load(path, "cpu")
        d = de_novo(model, args.n_denovo, args.seed, args.order)
        rows.append({"representation": name, "task": "de novo", "refused": 0,
                     "holds, first draw %": None,
                     "validity %": 100 * d["validity"], "uniqueness %": 100 * d["uniqueness"],
                     "quality %": 100 * d["quality"]})
        summary = summarise(run(model, args.n, args.order, 1.0, 1.0, args.seed, drugs, rounds=1))
        for _, r in summary.iterrows():
            rows.append({"representation": name, "task": r["task"], "refused": r["refused"],
                         "holds, first draw %": r["validity_first"], "validity %": r["validity"],
                         "uniqueness %": r["uniqueness"], "quality %": r["quality"]})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
