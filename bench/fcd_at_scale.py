"""FCD/Test at the MOSES protocol's 30,000 samples, with validity, uniqueness and quality on the
same draw: the numbers the MOSES tables report, for the shipped model drawn as the app draws it
(the stored temperature and top-p, left to right under the syntax constraint, one draw each).

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
from mam_core.workflows.generate import generate_molecules, recommended_sampling


def draw(model, out: Path, n: int, chunk: int, seed: int) -> list[str]:
    """``n`` SMILES (empty where invalid), appending to ``out / samples.csv`` chunk by chunk
    and continuing from what is already there."""
    path = out / "samples.csv"
    done = pd.read_csv(path, keep_default_na=False)["SMILES"].tolist() if path.exists() else []
    settings = recommended_sampling(model)
    with tqdm(total=n, initial=min(len(done), n), desc="sampling", unit="mol") as bar:
        while len(done) < n:
            k = min(chunk, n - len(done))
            table = generate_molecules(model, k, seed=seed + len(done), max_rounds=1,
                                       distinct=False, **settings)
            smiles = [s if ok else "" for s, ok in zip(table["SMILES"], table["valid"])]
            pd.DataFrame({"SMILES": smiles}).to_csv(path, mode="a", header=not done,
                                                    index=False)
            done += smiles
            bar.update(k)
    return done[:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--n", type=int, default=30_000)
    p.add_argument("--chunk", type=int, default=500)
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
    smiles = draw(model, out, args.n, args.chunk, args.seed)
    sample_seconds = time.perf_counter() - t0
    ref = (reference_from_wheel(args.moses_wheel) if args.moses_wheel else
           reference_from_smiles(load_moses("test"), "embedded MOSES test subset"))
    q = sample_quality(smiles)
    train = load_moses("train", limit=args.n)
    row = {
        "n": len(smiles),
        "validity": q["validity"],
        "uniqueness": q["uniqueness"],
        "quality": drug_like_quality(smiles),
        "FCD/Test": fcd([s for s in smiles if s], ref),
        "FCD/Test of as many training molecules": fcd(train, ref),
        "training molecules": len(train),
        "reference": ref.source,
        "sampling": recommended_sampling(model),
        "sample_seconds_this_run": round(sample_seconds, 1),
    }
    (out / "fcd.json").write_text(json.dumps(row, indent=2))
    print("| " + " | ".join(row) + " |")
    print("|" + "---|" * len(row))
    print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                            for v in row.values()) + " |")


if __name__ == "__main__":
    main()
