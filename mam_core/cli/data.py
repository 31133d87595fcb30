"""``mam prepare-data``: encode molecules once, as shuffled fragment blocks, for training.
``mam export``: turn a training run's checkpoint into the file the app and the CLI use."""

from __future__ import annotations

import time
from pathlib import Path

import torch

__all__ = ["add_parsers", "run_prepare_data", "run_export"]


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


def run_export(args) -> None:
    """A model for use: no optimizer state, optionally half precision, with the outlier
    calibration (so scores come with training percentiles at once) and the sampling settings
    the benchmark chose stored inside."""
    from ..core import checkpoint as ckpt
    from ..workflows.generate import SAMPLING_KEY, SAMPLING_LIMITS

    model = ckpt.load(args.model)
    given = {k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p))
             if v is not None}
    for key, value in given.items():
        high = SAMPLING_LIMITS[key]
        if not 0.0 < value <= high:
            raise ValueError(f"--{key.replace('_', '-')} must be in (0, {high:g}], got {value}")
    if args.constraint is not None:
        given["constraint"] = args.constraint
    if given:
        model.metadata[SAMPLING_KEY] = {**(model.metadata.get(SAMPLING_KEY) or {}), **given}
    if args.calibrate:
        from ..chem.moses import load_moses
        from ..workflows.outliers import calibrate

        t0 = time.perf_counter()
        smiles = load_moses("train", wheel=args.wheel, limit=args.calibrate)
        where = "molsets wheel" if args.wheel else "embedded"
        cal = calibrate(model, smiles, f"MOSES train ({where}, first {len(smiles):,})")
        dt = time.perf_counter() - t0
        print(f"outlier calibration: {cal.n_train:,} training molecules ({dt:.0f}s)")
    out = ckpt.save(model, args.out, half=args.half)
    size = out.stat().st_size / 2**20
    print(f"wrote {out} ({size:.1f} MB{', half precision' if args.half else ''})")


def add_parsers(sub) -> None:
    """The data and model-file subcommands (prepare-data, export)."""
    from ..chem.grammar import CONSTRAINT_MODES

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

    p = sub.add_parser("export", help="a training checkpoint as a model file for use (app, CLI)")
    p.add_argument("--model", required=True, help="checkpoint of a training run")
    p.add_argument("--out", required=True, help="model file to write (atomically)")
    p.add_argument("--half", action="store_true", help="store weights in float16 (half the size)")
    p.add_argument("--calibrate", type=int, default=5000, metavar="N",
                   help="store the outlier calibration made on N MOSES training molecules "
                        "(0: none; molecule models only)")
    p.add_argument("--wheel", help="molsets-0.3.1 wheel for the full MOSES train split")
    p.add_argument("--temperature", type=float,
                   help="sampling temperature the app and 'mam sample' start from")
    p.add_argument("--top-p", type=float, help="top-p the app and 'mam sample' start from")
    p.add_argument("--constraint", choices=CONSTRAINT_MODES,
                   help="syntax constraint the app and 'mam sample' start from (full, syntax, "
                        "off; see bench/sampling_orders.py)")
    p.set_defaults(func=run_export)
