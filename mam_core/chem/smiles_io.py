"""The one reader of SMILES text: pasted lines, ``.smi`` files and CSV tables (gzip allowed).

Every place that takes molecules from a user (``mam train-arm --data``, ``mam prepare-data``,
the Likelihood page, the scoring helpers) reads them here, so they agree on the format:

* **lines** (``.smi``, pasted text): one molecule per line, the SMILES is the first field and
  anything after white space (a name, an id) is ignored;
* **CSV** (a ``.csv`` file, or text whose first line has a comma; SMILES never contain commas):
  a table with a column named ``smiles`` in any case, read by pandas, so quoted fields with
  commas, ragged quoting and Windows line ends are handled as spreadsheets write them;
* blank lines and lines starting with ``#`` are skipped; a first line whose first field is
  ``smiles`` is a header, not a molecule; a UTF-8 byte-order mark is ignored.

Missing cells in the SMILES column come back as ``""`` (the row is kept, so callers can report
it); nothing is validated here (see :mod:`mam_core.chem.rdkit_utils`). Every problem raises
:class:`SmilesInputError` (a ``ValueError``) naming the source and what to fix.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zlib
from pathlib import Path

import pandas as pd

__all__ = ["SmilesInputError", "parse_smiles_text", "read_smiles_file"]

#: File endings read as CSV tables (everything else is read line by line, or sniffed).
CSV_SUFFIXES = (".csv", ".csv.gz")


class SmilesInputError(ValueError):
    """SMILES text or a SMILES file could not be read; the message names it and says why."""


def parse_smiles_text(
    text: str,
    source: str = "input",
    *,
    table: bool | None = None,
    column: str = "smiles",
    keep_blank_lines: bool = False,
    max_rows: int | None = None,
) -> list[str]:
    """SMILES strings from text, in input order.

    Args:
        text: The text of a ``.smi`` file, pasted lines or a CSV table.
        source: What to call the text in error messages (a file name, ``"input"``).
        table: ``True`` reads a CSV table, ``False`` one molecule per line; ``None`` decides by
            the first line (a comma means CSV).
        column: Name of the SMILES column of a table, matched without regard to case.
        keep_blank_lines: Give blank lines (and empty table rows) as ``""`` instead of dropping
            them, so results line up with the input's molecule lines.
        max_rows: Refuse more molecules than this (``None``: no limit).

    Returns:
        The SMILES strings, stripped of surrounding white space.

    Raises:
        SmilesInputError: no molecules, a table without the SMILES column, a table that pandas
            cannot parse, or more than ``max_rows`` molecules.
    """
    if not isinstance(text, str):
        raise SmilesInputError(f"{source}: expected text, got {type(text).__name__}")
    text = text.removeprefix("\ufeff")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    if not keep_blank_lines:
        lines = [ln for ln in lines if ln.strip()]
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        raise SmilesInputError(
            f"{source}: no molecules given: one SMILES per line, or a CSV with a SMILES column"
        )
    if table is None:
        table = "," in first
    if table:
        smiles = _table_column(lines[lines.index(first):], source, column, keep_blank_lines)
    else:
        smiles = [ln.split()[0] if ln.strip() else "" for ln in lines]
        if smiles[0].lower() == column.lower():  # a header line, not a molecule
            smiles = smiles[1:]
    if not smiles:
        raise SmilesInputError(f"{source}: the table has a header but no rows" if table else
                               f"{source}: no molecules given, only a header line")
    if max_rows is not None and len(smiles) > max_rows:
        raise SmilesInputError(
            f"{source}: {len(smiles)} molecules is more than the limit of {max_rows}; split the "
            "input"
        )
    return smiles


def _table_column(lines: list[str], source: str, column: str, keep_blank: bool) -> list[str]:
    """The ``column`` of a CSV table given as lines, header first (comment lines removed)."""
    try:
        with warnings.catch_warnings():  # rows longer than the header: the extra cells are dropped
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO("\n".join(lines)),
                dtype=str,
                keep_default_na=False,  # "NA", "None" and "" stay strings; the caller reports them
                skip_blank_lines=not keep_blank,
                skipinitialspace=True,
                index_col=False,  # never take a longer row's first cell as an index
            )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        reason = " ".join(str(err).split())
        raise SmilesInputError(f"{source}: not a readable CSV table ({reason})") from None
    names = {str(c).strip().lower(): c for c in frame.columns}
    if column.lower() not in names:
        found = [str(c) for c in frame.columns[:10]]
        raise SmilesInputError(
            f"{source}: the CSV needs a '{column.upper()}' column; its columns are {found}"
        )
    return frame[names[column.lower()]].fillna("").astype(str).str.strip().tolist()


def read_smiles_file(
    path: str | os.PathLike, limit: int | None = None, *, keep_blank_lines: bool = False
) -> list[str]:
    """SMILES from a ``.smi``/``.smiles``/``.txt`` file (lines) or a ``.csv`` table, gzip allowed.

    Gzip is recognised by its magic bytes, so ``.gz`` files and misnamed ones both work.

    Args:
        path: The file.
        limit: Keep only the first ``limit`` molecules (``None``: all).
        keep_blank_lines: Give blank lines (and empty table rows) as ``""`` (see
            :func:`parse_smiles_text`), so a result lines up with the file's molecule lines.

    Returns:
        The SMILES strings in file order.

    Raises:
        SmilesInputError: the file is missing, not gzip/UTF-8 text, or holds no molecules (see
            :func:`parse_smiles_text`).
    """
    p = Path(path)
    if not p.is_file():
        raise SmilesInputError(f"SMILES file not found: {path}")
    try:
        data = p.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise SmilesInputError(f"{path}: could not be read as UTF-8 text ({err})") from None
    name = p.name.lower()
    table = True if name.endswith(CSV_SUFFIXES) else None
    smiles = parse_smiles_text(text, str(path), table=table, keep_blank_lines=keep_blank_lines)
    return smiles[:limit] if limit else smiles
