"""FCD/Test at the MOSES protocol's 30,000 samples, with validity, uniqueness and quality on the
same draw: the numbers the MOSES tables report, for the shipped model drawn as the app draws it
(the stored temperature, top-p and constraint, left to right; a row that is not a molecule is
drawn again, up to ``--max-rounds`` draws in all, and the draws it took are kept).

FCD grows as the sample shrinks, so numbers at 1,000 (``mam eval``) are not comparable with
the MOSES tables; this one is.  Samples are appended chunk by chunk to ``samples.csv`` in
``--out``, so a run that is stopped continues where it was with the same command.

    python bench/fcd_at_scale.py --n 30000 --moses-wheel molsets-0.3.1-py3-none-any.whl \\
        --out docs/eval/fcd_30k
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from mam_core.chem.fcd import fcd, fcd_available, reference_from_smiles, reference_from_wheel
from mam_core.chem.metrics import drug_like_quality, sample_quality
from mam_core.chem.moses import load_moses
from mam_core.core.checkpoint import load
from mam_core.paths import default_model_path
from mam_core.workflows.generate import (generate_molecules, recommended_constraint,
                                         recommended_sampling)


def draw(model, out: Path, n: int, chunk: int, seed: int, max_rounds: int) -> pd.DataFrame:
    """``n`` rows of ``SMILES`` (empty where still invalid) and ``rounds`` (draws taken),
    appending to ``out / samples.csv`` chunk by chunk and continuing from what is there."""
    path = out / "samples.csv"
    done = pd.read_csv(path, keep_default_na=False) if path.exists() else pd.DataFrame()
    if len(done) and "rounds" not in done:
        done["rounds"] = 1  # written by the one-draw protocol
    settings = recommended_sampling(model)
    with tqdm(total=n, initial=min(len(done), n), desc="sampling", unit="mol") as bar:
        while len(done) < n:
            k = min(chunk, n - len(done))
            table = generate_molecules(model, k, seed=seed + len(done), max_rounds=max_rounds,
                                       distinct=False, **settings)
            rows = pd.DataFrame({
                "SMILES": [s if ok else "" for s, ok in zip(table["SMILES"], table["valid"])],
                "rounds": table["rounds"]})
            rows.to_csv(path, mode="a", header=not len(done), index=False)
            done = pd.concat([done, rows], ignore_index=True)
            bar.update(k)
    return done.iloc[:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--n", type=int, default=30_000)
    p.add_argument("--chunk", type=int, default=500)
    p.add_argument("--max-rounds", type=int, default=4,
                   help="draws per row at most, as the app (1: GenMol's one-draw protocol)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--moses-wheel", help="molsets wheel: MOSES's own test statistics")
    p.add_argument("--out", default="docs/eval/fcd_30k")
    args = p.parse_args()
    if not fcd_available():
        raise SystemExit("FCD needs the eval extra: pip install 'mam-studio[eval]'")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load(args.model or default_model_path())

    t0 = time.perf_counter()
    drawn = draw(model, out, args.n, args.chunk, args.seed, args.max_rounds)
    smiles = drawn["SMILES"].tolist()
    sample_seconds = time.perf_counter() - t0
    ref = (reference_from_wheel(args.moses_wheel) if args.moses_wheel else
           reference_from_smiles(load_moses("test"), "embedded MOSES test subset"))
    q = sample_quality(smiles)
    train = load_moses("train", limit=args.n)
    row = {
        "n": len(smiles),
        "validity": q["validity"],
        "valid at the first draw": float(((drawn["rounds"] == 1) & (drawn["SMILES"] != "")).mean()),
        "draws per molecule": float(drawn["rounds"].mean()),
        "uniqueness": q["uniqueness"],
        "quality": drug_like_quality(smiles),
        "FCD/Test": fcd([s for s in smiles if s], ref),
        "FCD/Test of as many training molecules": fcd(train, ref),
        "training molecules": len(train),
        "reference": ref.source,
        "sampling": {**recommended_sampling(model), "constraint": recommended_constraint(model),
                     "max_rounds": args.max_rounds},
        "sample_seconds_this_run": round(sample_seconds, 1),
    }
    (out / "fcd.json").write_text(json.dumps(row, indent=2))
    print("| " + " | ".join(row) + " |")
    print("|" + "---|" * len(row))
    print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                            for v in row.values()) + " |")


if __name__ == "__main__":
    main()
