"""Molecules as MaM inputs: reading SMILES sources, encoding them, and the tokenizer a model
carries in its checkpoint metadata (so a saved model always decodes its own samples)."""

from __future__ import annotations

import logging

import torch

from ..core.model import MaM
from ..paths import default_model_path
from .smiles_io import SmilesInputError, read_smiles_file
from .tokenizers import MolTokenizer, get_tokenizer, tokenizer_from_dict

__all__ = [
    "MoleculeDataError",
    "is_smiles_source",
    "read_smiles",
    "encode_source",
    "tokenizer_of",
    "attach_tokenizer",
    "default_tokenizer",
]

log = logging.getLogger(__name__)

SMILES_SUFFIXES = (".smi", ".smiles", ".csv", ".csv.gz", ".smi.gz")


#: A SMILES source could not be read; the message names it and says why (one error class for
#: every SMILES reader, see :mod:`mam_core.chem.smiles_io`).
MoleculeDataError = SmilesInputError


def is_smiles_source(source: str) -> bool:
    """``moses``/``moses:SPLIT`` specs and SMILES files (by suffix) are molecule sources."""
    if source == "moses" or source.startswith("moses:"):
        return True
    return source.lower().endswith(SMILES_SUFFIXES)


def read_smiles(source: str, limit: int | None = None) -> list[str]:
    """SMILES strings from ``moses[:train|test]``, a ``.smi`` file (first field of each line) or
    a CSV with a ``SMILES`` column (any case; gzip allowed); see
    :func:`mam_core.chem.smiles_io.read_smiles_file` for the format."""
    if source == "moses" or source.startswith("moses:"):
        from .moses import load_moses

        split = source.split(":", 1)[1] if ":" in source else "train"
        return load_moses(split, limit=limit)
    return read_smiles_file(source, limit)


def encode_source(
    source: str,
    tokenizer: MolTokenizer | None = None,
    kind: str = "selfies",
    max_length: int | None = None,
    limit: int | None = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> tuple[torch.Tensor, MolTokenizer]:
    """Encode a SMILES source to ``(N, D)`` ids, building a tokenizer from it when none is given.

    Molecules that cannot be encoded (invalid SMILES, unknown tokens, longer than D) are skipped
    and counted in a log message, never silently changed.
    """
    smiles = read_smiles(source, limit)
    if tokenizer is None:
        tokenizer, batch = get_tokenizer(kind).fit_encode(
            smiles, max_length=max_length, drop_long=True, drop_invalid=True, n_jobs=n_jobs,
            progress=progress
        )
    else:
        batch = tokenizer.encode_filtered(smiles, n_jobs=n_jobs, progress=progress)
    if batch.n_dropped:
        first = batch.errors[0][1]
        log.warning("%s: skipped %d of %d molecules (first: %s)", source, batch.n_dropped,
                    len(smiles), first)
    if batch.ids.shape[0] == 0:
        raise MoleculeDataError(f"{source}: none of the {len(smiles)} molecules could be encoded")
    return batch.ids, tokenizer


def attach_tokenizer(model: MaM, tokenizer: MolTokenizer) -> None:
    """Store the tokenizer in the model's metadata (saved with every checkpoint)."""
    if tokenizer.vocab != model.vocab or tokenizer.D != model.D:
        raise ValueError("the tokenizer's vocabulary/length does not match the model")
    model.metadata["tokenizer"] = tokenizer.to_dict()


def tokenizer_of(model: MaM) -> MolTokenizer | None:
    """The model's tokenizer, or ``None`` for non-molecule models (lattices, token data)."""
    spec = model.metadata.get("tokenizer")
    return tokenizer_from_dict(spec) if spec else None


def default_tokenizer(D: int | None = None) -> MolTokenizer:
    """The default model's SELFIES tokenizer, optionally padded to another length ``D``.

    Energy-based training from scratch has no data to build a vocabulary from; the shipped
    model's (measured on MOSES) is the natural alphabet, and a longer ``D`` (the paper uses 55)
    only adds padding room.
    """
    from ..core.checkpoint import load_checkpoint

    spec = load_checkpoint(default_model_path()).metadata.get("tokenizer")
    if not spec:
        raise ValueError(f"{default_model_path()} holds no tokenizer")
    tok = tokenizer_from_dict(spec)
    if D is not None and D != tok.D:
        tok = tokenizer_from_dict({**tok.to_dict(), "D": int(D)})
    return tok
