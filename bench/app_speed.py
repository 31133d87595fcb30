"""What a user waits for in the app, on the shipped default model (CPU or CUDA, auto).

* Design: 64 completions of a scaffold — sampling, decoding, properties and the RDKit grid image.
* Likelihood: 1,000 pasted SMILES — parsing and encoding, MaM (one pass) and, beside it,
  the exact AO-ARM (D passes) on the same batch.
* Outlier screening of the same 1,000 SMILES (what the Likelihood page and ``mam score`` do),
  float32 beside the bfloat16 trunk.

    python bench/app_speed.py
"""

from __future__ import annotations

import argparse
import time

import torch
from rdkit.Chem import Draw

from mam_core.chem.properties import mol_from_smiles, property_of
from mam_core.core.checkpoint import load
from mam_core.core.model import bf16_is_native, resolve_device
from mam_core.paths import default_model_path
from mam_core.workflows.generate import generate_molecules
from mam_core.chem.moses import load_moses
from mam_core.workflows.outliers import DEFAULT_SCORE, ensure_calibration, score_table
from mam_core.workflows.scoring import parse_smiles_text, score_molecules


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fragment", default="c1ccccc1")
    p.add_argument("--n-design", type=int, default=64)
    p.add_argument("--n-score", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    model = load(default_model_path(), resolve_device("auto")).eval()
    print(f"model D={model.D} K={model.K}, device {model.device}, torch threads "
          f"{torch.get_num_threads()}")

    generate_molecules(model, 4, args.fragment, seed=99)  # warm-up
    rows = []
    for r in range(args.repeats):
        property_of.cache_clear()
        t0 = time.perf_counter()
        table = generate_molecules(model, args.n_design, args.fragment, seed=r)
        t1 = time.perf_counter()
        Draw.MolsToGridImage([mol_from_smiles(s) for s in table["SMILES"][:32]], molsPerRow=4,
                             subImgSize=(220, 220))
        t2 = time.perf_counter()
        rows.append((t1 - t0, t2 - t1))
    best = min(rows, key=sum)
    print(f"| Design: {args.n_design} completions of {args.fragment} | sample+properties "
          f"{best[0]:.2f} s | grid {best[1]:.2f} s | total {sum(best):.2f} s (best of "
          f"{args.repeats}) |")

    text = "\n".join(load_moses("test", limit=args.n_score))
    t0 = time.perf_counter()
    smiles = parse_smiles_text(text)
    res = score_molecules(model, smiles, with_arm=True)
    total = time.perf_counter() - t0
    encode = total - res.seconds_mam - res.seconds_arm
    print(f"| Likelihood: {len(smiles)} SMILES ({res.n_scored} scored) | parse+encode {encode:.2f} "
          f"s | MaM {res.seconds_mam:.3f} s | AO-ARM {res.seconds_arm:.2f} s | speed-up "
          f"{res.speedup:.1f}× |")

    # Outlier screening as the Likelihood page and `mam score` run it: parse, encode, one pass,
    # scores and percentiles; float32 beside the bfloat16 trunk.
    cal = ensure_calibration(model, 2000)
    times, tables = {}, {}
    for bf16 in (False, True):
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            tables[bf16] = score_table(model, parse_smiles_text(text), DEFAULT_SCORE, cal,
                                       bf16=bf16)
            best = min(best, time.perf_counter() - t0)
        times[bf16] = best
    diff = (tables[True]["log_marginal_mam"] - tables[False]["log_marginal_mam"]).abs()
    print(f"| Outlier screening: {len(smiles)} SMILES | float32 {times[False]:.2f} s | bfloat16 "
          f"trunk {times[True]:.2f} s (used: {bf16_is_native(model.device)}) | log p differs by "
          f"{diff.mean():.3f} nats on average, {diff.max():.3f} at most |")


if __name__ == "__main__":
    main()
