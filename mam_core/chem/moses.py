"""The MOSES molecules the paper trains on, without installing the ``molsets`` package.

MOSES (Polykovskiy et al., "Molecular Sets (MOSES): A Benchmarking Platform for Molecular
Generation Models", Frontiers in Pharmacology 2020) ships its splits as gzipped CSV files inside
the ``molsets`` wheel.  ``pip install molsets`` fails on modern Pythons (its pinned pomegranate
does not build), so we read the files straight out of the downloaded wheel, which is just a zip:

    pip download --no-deps molsets==0.3.1 -d /tmp/molsets

The repository embeds a seeded random subset (200,000 train / 10,000 test molecules, a few MB) in
``data/`` so that the tests, the app and small training runs work offline; ``bench/
make_moses_subset.py`` regenerates it and ``data/README.md`` records how it was drawn.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from ..paths import data_dir

__all__ = [
    "SPLITS",
    "EMBEDDED_FILES",
    "WHEEL_MEMBERS",
    "DOWNLOAD_HINT",
    "data_dir",
    "load_moses",
    "read_wheel_split",
]

#: The three MOSES splits.
SPLITS: tuple[str, ...] = ("train", "test", "test_scaffolds")

#: Embedded subset files (under :func:`data_dir`) for the splits we ship.
EMBEDDED_FILES: dict[str, str] = {"train": "moses_train.csv.gz", "test": "moses_test.csv.gz"}

#: Location of each split inside the molsets 0.3.1 wheel.
WHEEL_MEMBERS: dict[str, str] = {s: f"moses/dataset/data/{s}.csv.gz" for s in SPLITS}

#: How to obtain the wheel; quoted in error messages so the fix is one copy-paste away.
DOWNLOAD_HINT = "pip download --no-deps molsets==0.3.1 -d /tmp/molsets"

_COLUMN = "SMILES"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown MOSES split {split!r}; valid splits: {', '.join(SPLITS)}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")


def _smiles_column(df: pd.DataFrame, source: str) -> list[str]:
    if _COLUMN not in df.columns:
        raise ValueError(f"{source} has no {_COLUMN!r} column (columns: {list(df.columns)})")
    return [str(s) for s in df[_COLUMN].tolist()]


def read_wheel_split(wheel: str | Path, split: str) -> list[str]:
    """Read one full MOSES split from a downloaded ``molsets`` wheel.

    Args:
        wheel: path to ``molsets-0.3.1-py3-none-any.whl`` (see :data:`DOWNLOAD_HINT`).
        split: one of :data:`SPLITS`.

    Returns:
        The split's SMILES in file order (train 1,584,663; test 176,074; test_scaffolds 176,225).

    Raises:
        FileNotFoundError: the wheel does not exist.
        ValueError: unknown split, or the file is not a zip / lacks the split's member.
    """
    _check_split(split)
    path = Path(wheel).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"molsets wheel not found at {str(path)!r}; get it with: {DOWNLOAD_HINT}"
        )
    member = WHEEL_MEMBERS[split]
    try:
        with zipfile.ZipFile(path) as zf:
            if member not in zf.namelist():
                raise ValueError(
                    f"{str(path)!r} does not contain {member!r}; is it the molsets 0.3.1 wheel?"
                )
            with zf.open(member) as fh:
                df = pd.read_csv(fh, compression="gzip")
    except zipfile.BadZipFile as err:
        raise ValueError(f"{str(path)!r} is not a wheel (zip) file: {err}") from None
    return _smiles_column(df, f"{str(path)!r}:{member}")


def load_moses(
    split: str = "train", wheel: str | Path | None = None, limit: int | None = None
) -> list[str]:
    """Load MOSES SMILES: the embedded subset by default, or a full split from the wheel.

    The embedded files are stored in random (seeded) order, so ``limit=n`` is itself a uniform
    random sample of the subset; for the full wheel splits, ``limit`` keeps the file's first rows
    (MOSES files are already shuffled).

    Args:
        split: ``"train"``, ``"test"`` or ``"test_scaffolds"`` (the last only from the wheel, since
            it is not embedded).
        wheel: path to a downloaded ``molsets`` 0.3.1 wheel; when given, the full split is read
            from it instead of the embedded subset.
        limit: keep at most this many molecules (``None`` keeps all).

    Returns:
        A list of SMILES strings as stored by MOSES (RDKit canonical, no stereochemistry).

    Raises:
        ValueError: unknown split or bad ``limit``; test_scaffolds requested without a wheel.
        FileNotFoundError: the embedded file or the wheel is missing (the message says how to
            get it).
    """
    _check_split(split)
    _check_limit(limit)
    if wheel is not None:
        smiles = read_wheel_split(wheel, split)
    else:
        if split not in EMBEDDED_FILES:
            raise ValueError(
                f"the MOSES {split!r} split is not embedded in this repository (only "
                f"{', '.join(EMBEDDED_FILES)} are); pass wheel=PATH to read it from the molsets "
                f"wheel ({DOWNLOAD_HINT})"
            )
        path = data_dir() / EMBEDDED_FILES[split]
        if not path.is_file():
            raise FileNotFoundError(
                f"embedded MOSES subset {str(path)!r} is missing; regenerate it with "
                f"`python bench/make_moses_subset.py --wheel WHEEL` after `{DOWNLOAD_HINT}`, or "
                "pass wheel=PATH"
            )
        smiles = _smiles_column(pd.read_csv(path, compression="gzip"), str(path))
    return smiles if limit is None else smiles[:limit]
