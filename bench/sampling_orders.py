"""Which sampling settings respect the model?  Quality and FCD of de novo samples for every
order (random, left-to-right, right-to-left, confidence) at a few temperatures / top-p, with
and without the syntax constraint (SMILES / fragment-block models), side by side in one run,
with the time per molecule.

    python bench/sampling_orders.py --model data/models/default.pt --n 1000

Quality is GenMol's (valid, unique, QED >= 0.6 and SA <= 4, over requested), of the first
``--n`` draws.  Each setting then draws on until it has ``--n`` valid molecules, as the app does
when it draws failed rows again, and the columns after ``quality`` describe those delivered
molecules (``quality_delivered`` is GenMol's quality over them).  FCD is to the embedded MOSES
test subset (or MOSES's own statistics with --moses-wheel) and is reported beside the same-n
floor of training molecules, since FCD grows as n shrinks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from rdkit import rdBase

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mam_core.core import checkpoint as ckpt  # noqa: E402
from mam_core.core.model import bf16_is_faster  # noqa: E402
from mam_core.chem.grammar import grammar_for  # noqa: E402
from mam_core.chem.fcd import fcd, fcd_available, reference_from_smiles, reference_from_wheel  # noqa: E402
from mam_core.chem.metrics import (  # noqa: E402
    aromatic_ring_fraction,
    drug_like_quality,
    internal_diversity,
    uniqueness,
    validity,
)
from mam_core.chem.molecules import tokenizer_of  # noqa: E402
from mam_core.chem.properties import mol_from_smiles  # noqa: E402
from mam_core.chem.moses import load_moses  # noqa: E402

# (order, temperature, top_p, constraint: "off", "syntax" alone or "full": syntax + aromatic)
SETTINGS = [
    ("random", 1.0, 1.0, "off"),
    ("l2r", 1.0, 1.0, "off"),
    ("r2l", 1.0, 1.0, "off"),
    ("confidence", 1.0, 1.0, "off"),
    ("l2r", 1.0, 1.0, "syntax"),
    ("l2r", 1.0, 1.0, "full"),
    ("l2r", 0.8, 1.0, "full"),
    ("l2r", 1.0, 0.9, "full"),
    ("l2r", 0.8, 0.9, "full"),
    ("l2r", 0.7, 0.95, "full"),
]
QUICK = [s for s in SETTINGS if s[0] in ("random", "confidence") or s[3] != "off"]


def _settings(args) -> list[tuple]:
    if not args.settings:
        return QUICK if args.quick else SETTINGS
    out = []
    for item in args.settings.split(","):
        try:
            order, t, top_p, constraint = item.strip().split(":")
            out.append((order, float(t), float(top_p), constraint))
        except ValueError:
            raise SystemExit(f"--settings: expected ORDER:T:TOP_P:CONSTRAINT, got {item!r}")
        if constraint not in ("off", "syntax", "full"):
            raise SystemExit("--settings: constraint must be off, syntax or full, "
                             f"got {constraint!r}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "data" / "models" / "default.pt"))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--max-draws", type=int, default=4,
                   help="stop drawing a setting after this many times --n strings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--moses-wheel")
    p.add_argument("--out", help="CSV of the table")
    p.add_argument("--quick", action="store_true", help="skip l2r/r2l without the constraint")
    p.add_argument("--settings",
                   help="only these, comma-separated ORDER:T:TOP_P:CONSTRAINT (off, syntax, full), "
                        "e.g. 'l2r:0.7:0.95:full,l2r:0.6:0.95:full'")
    args = p.parse_args(argv)
    rdBase.DisableLog("rdApp.*")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = ckpt.load(args.model, "cpu")
    bf16 = bf16_is_faster(model.device)  # as the app draws (a few thousandths of a nat apart)
    tok = tokenizer_of(model)
    ref = None
    if fcd_available():
        ref = reference_from_wheel(args.moses_wheel) if args.moses_wheel else reference_from_smiles(
            load_moses("test"), "embedded MOSES test")
    rows = []
    grammars = {"off": None, "syntax": grammar_for(tok, kekule=False), "full": grammar_for(tok)}
    for order, temperature, top_p, constraint in _settings(args):
        if constraint != "off" and grammars[constraint] is None:
            continue  # SELFIES: every string is a molecule already
        t0 = time.perf_counter()
        smiles, delivered, i = [], [], 0
        while len(smiles) < args.n or len(delivered) < args.n:
            if i >= args.max_draws * args.n:
                break  # a setting that almost never gives molecules: report what there is
            x = model.sample(args.batch, order=order, temperature=temperature,
                             top_p=top_p, seed=args.seed + i,
                             constraint=grammars[constraint], bf16=bf16)
            i += args.batch
            drawn = tok.decode_batch(x.cpu())
            smiles += drawn[: max(args.n - len(smiles), 0)]
            delivered += [s for s in drawn if mol_from_smiles(s) is not None]
        delivered = delivered[: args.n]
        dt = time.perf_counter() - t0
        row = {"order": order, "temperature": temperature, "top_p": top_p, "constraint": constraint,
               "validity": validity(smiles),
               "uniqueness": uniqueness(smiles), "quality": drug_like_quality(smiles),
               "quality_delivered": drug_like_quality(delivered),
               "int_div": internal_diversity(delivered),
               "aromatic_rings": aromatic_ring_fraction(delivered),
               "ms_per_delivered": 1000 * dt / max(len(delivered), 1)}
        if ref is not None:
            row["FCD"] = fcd(delivered, ref)
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    test = load_moses("test", limit=args.n)
    floor = {"order": "MOSES test", "quality": drug_like_quality(test),
             "quality_delivered": drug_like_quality(test),
             "int_div": internal_diversity(test),
             "aromatic_rings": aromatic_ring_fraction(test)}
    if ref is not None:
        floor["FCD"] = fcd(load_moses("train", limit=args.n), ref)
        floor["order"] = "MOSES test (FCD: same-n train floor)"
    table = pd.concat([table, pd.DataFrame([floor])], ignore_index=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
