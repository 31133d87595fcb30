"""What a user waits for in the app, on the shipped default model (CPU or CUDA, auto).

* Design: 64 completions of a scaffold — sampling, decoding, properties, each molecule's
  percentile among the training molecules and the RDKit grid image.
* Outlier screening of 1,000 pasted SMILES (what ``mam score`` and the Likelihood page do):
  float32 beside the bfloat16 trunk in one process, and with the page's warm encoding pool.
* The Likelihood page's "Score" on the same SMILES: MaM, the exact AO-ARM (D passes) on the
  first rows beside it, and the outlier table.

    python bench/app_speed.py
"""

from __future__ import annotations

import argparse
import time

import torch
from rdkit.Chem import Draw

from mam_core.chem.properties import mol_from_smiles, property_of
from mam_core.core.checkpoint import load
from mam_core.core.model import bf16_is_faster, resolve_device
from mam_core.paths import default_model_path
from mam_core.workflows.generate import (generate_molecules, recommended_constraint,
                                          recommended_sampling)
from mam_core.chem.moses import load_moses
from mam_core.workflows.outliers import DEFAULT_SCORE, ensure_calibration, score_table
from mam_core.workflows.scoring import ARM_ROWS, PAGE_SPELLINGS, parse_smiles_text, score_molecules
from mam_core.chem import encoding_pool
from mam_core.chem.tokenizers import clear_encoding_memo


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

    sampling = recommended_sampling(model)  # what the Design page starts with
    generate_molecules(model, 4, args.fragment, seed=99, **sampling)  # warm-up
    rows = []
    for r in range(args.repeats):
        property_of.cache_clear()
        t0 = time.perf_counter()
        table = generate_molecules(model, args.n_design, args.fragment, seed=r, typicality=True,
                                   **sampling)
        t1 = time.perf_counter()
        Draw.MolsToGridImage([mol_from_smiles(s) for s in table["SMILES"][:32]], molsPerRow=4,
                             subImgSize=(220, 220))
        t2 = time.perf_counter()
        rows.append((t1 - t0, t2 - t1, int(table["rounds"].sum()), int(table["rounds"].max())))
    best = min(rows, key=lambda r: r[0] + r[1])
    print(f"| Design: {args.n_design} completions of {args.fragment} | sample+properties "
          f"{best[0]:.2f} s (T {sampling['temperature']}, top-p {sampling['top_p']}, constraint "
          f"{recommended_constraint(model)}, "
          f"{'bfloat16' if bf16_is_faster(model.device) else 'float32'}; {best[2]} draws in "
          f"{best[3]} round(s)) | grid {best[1]:.2f} s | total {best[0] + best[1]:.2f} s (best of "
          f"{args.repeats}) |")

    text = "\n".join(load_moses("test", limit=args.n_score))
    cal = ensure_calibration(model, 2000)

    def page_scoring(arm: bool) -> tuple[float, object]:
        """What the Likelihood page runs on "Score": both tables, encoding from scratch."""
        clear_encoding_memo()
        t0 = time.perf_counter()
        smiles = parse_smiles_text(text)
        res = score_molecules(model, smiles, with_arm=arm, arm_limit=ARM_ROWS,
                              spellings=PAGE_SPELLINGS)
        score_table(model, smiles, DEFAULT_SCORE, cal)
        return time.perf_counter() - t0, res

    # Outlier screening as `mam score` and the page run it (parse, encode, one pass, scores and
    # percentiles): one process in float32, with the bfloat16 trunk, and with the page's warm
    # encoding pool; encodings are never reused between repeats.
    def screening(bf16: bool | None) -> tuple[float, object]:
        best, table = float("inf"), None
        for _ in range(args.repeats):
            clear_encoding_memo()
            t0 = time.perf_counter()
            table = score_table(model, parse_smiles_text(text), DEFAULT_SCORE, cal, bf16=bf16)
            best = min(best, time.perf_counter() - t0)
        return best, table

    t_fp32, fp32 = screening(False)
    t_bf16, bf16 = screening(True)
    encoding_pool.start()
    t_pool, _ = screening(None)
    diff = (bf16["log_marginal_mam"] - fp32["log_marginal_mam"]).abs()
    print(f"| Outlier screening: {args.n_score} SMILES | one process: float32 {t_fp32:.2f} s, "
          f"bfloat16 trunk {t_bf16:.2f} s | warm pool of {encoding_pool.workers()} + trunk "
          f"{'bfloat16' if bf16_is_faster(model.device) else 'float32'}: {t_pool:.2f} s | log p "
          f"differs by {diff.mean():.3f} nats on average, {diff.max():.3f} at most |")
    total, res = page_scoring(True)
    print(f"| Likelihood page: {res.n_scored} scored | total {total:.2f} s | MaM "
          f"{res.seconds_mam:.3f} s | sum over {PAGE_SPELLINGS} block orders "
          f"{res.seconds_molecule or 0.0:.2f} s | AO-ARM on {res.n_arm} {res.seconds_arm:.2f} s "
          f"| speed-up {res.speedup:.1f}× |")
    total, _ = page_scoring(False)
    print(f"| Likelihood page without AO-ARM | total {total:.2f} s |")
    encoding_pool.shutdown()


if __name__ == "__main__":
    main()
