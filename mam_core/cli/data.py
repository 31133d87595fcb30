"""``mam prepare-data``: encode molecules once, as shuffled fragment blocks, for training."""

from __future__ import annotations

import time
from pathlib import Path

import torch

__all__ = ["add_parsers", "run_prepare_data"]


def run_prepare_data(args) -> None:
    from ..chem.moses import load_moses
    from ..chem.training_data import fragment_block_dataset

    if args.data == "moses" or args.data.startswith("moses:"):
        split = args.data.split(":", 1)[1] if ":" in args.data else "train"
        smiles = load_moses(split, wheel=args.wheel, limit=args.limit)
    else:
        from ..chem.molecules import read_smiles

        smiles = read_smiles(args.data, args.limit)
    t0 = time.perf_counter()
    tok, x = fragment_block_dataset(smiles, args.copies, args.seed, args.max_length, args.jobs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({"x": x.to(torch.uint8) if tok.K < 256 else x, "vocab": tok.vocab.to_dict(),
                "tokenizer": tok.to_dict(), "source": args.data, "copies": args.copies,
                "seed": args.seed}, tmp)
    tmp.replace(out)
    print(f"wrote {x.shape[0]:,} strings of {len(smiles):,} molecules (D={tok.D}, K={tok.K}) to "
          f"{out} in {time.perf_counter() - t0:.0f}s")


def add_parsers(sub) -> None:
    """The data subcommand (prepare-data)."""
    p = sub.add_parser("prepare-data",
                       help="encode molecules as shuffled fragment blocks for training (.pt)")
    p.add_argument("--data", default="moses",
                   help="moses[:split], a .smi file or a CSV with a SMILES column")
    p.add_argument("--wheel",
                   help="molsets-0.3.1 wheel for the full MOSES splits (default: embedded subset)")
    p.add_argument("--limit", type=int, help="use only the first N molecules")
    p.add_argument("--copies", type=int, default=2, help="shuffled fragment orders per molecule")
    p.add_argument("--max-length", type=int, default=64, help="D; longer strings are dropped")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True,
                   help="output .pt file (use it as --data of train-arm/distill)")
    p.set_defaults(func=run_prepare_data)
