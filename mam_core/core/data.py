"""Reading token datasets from files for the CLI.

Accepted files (the synthetic ``ising:N[:SIGMA[:BIAS]]`` source is built by
:func:`mam_core.workflows.ising_demo.ising_samples`, since it needs the Ising energy):

* ``.pt`` — a LongTensor ``(N, D)`` or ``{"x": tensor, "vocab": {...}}``, loaded safely
  (``weights_only=True``);
* ``.npy`` — an integer array ``(N, D)`` (no pickles);
* ``.txt`` / ``.csv`` / ``.tsv`` — one sequence per line, ids separated by spaces or commas,
  ``?`` (or ``*``) for a masked position, ``#`` starts a comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .vocab import Vocabulary

__all__ = ["DataError", "load_token_file", "parse_token_rows"]

MASK_CHARS = ("?", "*")


class DataError(ValueError):
    """A data file or spec could not be read; the message names the file, line and reason."""


def parse_token_rows(lines, mask_id: int | None = None, K: int | None = None,
                     source: str = "input") -> torch.Tensor:
    """Parse text rows of integer ids (``?`` = masked) into a ``(N, D)`` LongTensor."""
    rows: list[list[int]] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        row = []
        for tok in (t for t in re.split(r"[\s,;]+", line) if t):
            if tok in MASK_CHARS:
                if mask_id is None:
                    raise DataError(f"{source}, line {lineno}: masked position '{tok}' is not "
                                    "allowed here")
                row.append(mask_id)
                continue
            try:
                v = int(tok)
            except ValueError:
                raise DataError(f"{source}, line {lineno}: {tok[:40]!r} is not an integer token "
                                "id") from None
            if v < 0 or (K is not None and v >= K):
                raise DataError(f"{source}, line {lineno}: id {v} out of range 0..{(K or 1) - 1}")
            row.append(v)
        if rows and len(row) != len(rows[0]):
            raise DataError(f"{source}, line {lineno}: {len(row)} tokens, but earlier lines have "
                            f"{len(rows[0])}")
        rows.append(row)
    if not rows:
        raise DataError(f"{source}: no sequences found")
    return torch.tensor(rows, dtype=torch.long)


def load_token_file(source: str, allow_mask: bool = False):
    """Load ``(x, vocab_or_None)`` from a token file (see module docstring).

    Raises:
        DataError: missing/unreadable file, bad format, ragged rows, negative ids.
    """
    path = Path(source)
    if not path.is_file():
        raise DataError(f"data file not found: {source}")
    suffix = path.suffix.lower()
    vocab = None
    try:
        if suffix == ".pt":
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                if "x" not in obj:
                    raise DataError(f"{source}: a .pt data file must hold a tensor or a dict with "
                                    "key 'x'")
                vocab = Vocabulary.from_dict(obj["vocab"]) if obj.get("vocab") else None
                obj = obj["x"]
            x = torch.as_tensor(obj)
        elif suffix == ".npy":
            x = torch.from_numpy(np.load(path, allow_pickle=False))
        elif suffix in (".txt", ".csv", ".tsv", ""):
            with open(path, encoding="utf-8", errors="strict") as f:
                x = parse_token_rows(f, mask_id=-1 if allow_mask else None, source=source)
        else:
            raise DataError(f"{source}: unsupported data format {suffix!r} (use .pt, .npy, .txt or "
                            ".csv)")
    except DataError:
        raise
    except UnicodeDecodeError:
        raise DataError(f"{source}: not a UTF-8 text file") from None
    except Exception as err:
        raise DataError(f"{source}: could not be read: {str(err)[:200]}") from None
    if x.dim() != 2 or x.dtype.is_floating_point or x.dtype == torch.bool:
        raise DataError(f"{source}: expected an integer array of shape (N, D), got "
                        f"{tuple(x.shape)} {x.dtype}")
    x = x.long()
    if x.numel() and int(x.min()) < (-1 if allow_mask else 0):
        raise DataError(f"{source}: negative token ids")
    return x, vocab
