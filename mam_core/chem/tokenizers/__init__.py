r"""Molecule tokenizers: SMILES strings <-> fixed-length integer sequences ``(D,)`` for a MaM.

A MaM sees a molecule as ``x = (x_1 .. x_D)`` with ``x_d`` in ``0..K-1`` and the mask id ``K``
for unknown positions (see :mod:`mam_core.core.vocab`).  This package turns SMILES into such
sequences and back, in three flavours:

* :class:`SelfiesTokenizer` (the default, as in the paper): SELFIES symbols (Krenn et al. 2020).
  Every string of SELFIES symbols decodes to a valid molecule, so any sample is a molecule; the
  pad token is SELFIES's own no-op symbol ``[nop]``, which the decoder skips wherever it sits.
* :class:`SmilesTokenizer`: atom-level SMILES tokens from the regular expression of the Molecular
  Transformer (Schwaller et al. 2019); pad ``<pad>``, a string no SMILES can contain.  Decoded
  strings may be invalid, so callers check them with :func:`is_valid_smiles`.
* :class:`SafeTokenizer`: BRICS fragments as dot-separated SMILES blocks (the SAFE idea), so a
  fragment is a contiguous run of tokens and fixing it is infilling.

Input SMILES are canonicalised with RDKit before tokenising (``canonicalize=True``, the default),
so one molecule always maps to one token sequence whatever spelling the user typed; this is also
how the decoded output is compared in tests.  RDKit's own logging is silenced only inside these
functions (a scoped ``BlockLogs``), never globally at import.

SELFIES semantic constraints (the bonding capacities that make every string valid) are global
state in the ``selfies`` package; a tokenizer records the preset it was built with and switches to
it, under a lock, only for the duration of each call.

Every failure raises a :class:`TokenizationError` (a ``ValueError``) whose message names the
molecule and the reason: unparsable SMILES, SMILES that SELFIES cannot encode, unknown tokens,
too long for D.

One module per concept: :mod:`.errors` (the exceptions), :mod:`.base` (:class:`MolTokenizer`:
encoding, decoding, batching, building, persistence), :mod:`.selfies`, :mod:`.smiles` and
:mod:`.safe` (the three kinds), :mod:`.templates` (:func:`make_template`); the registry
(:data:`TOKENIZERS`, :func:`get_tokenizer`, :func:`tokenizer_from_dict`) is here. Checkpoints
store a tokenizer as plain data (:meth:`MolTokenizer.to_dict`) and are rebuilt by ``kind``.
"""

from __future__ import annotations

from ..rdkit_utils import canonical as canonicalize_smiles
from ..rdkit_utils import is_valid as is_valid_smiles
from .base import EncodedBatch, MolTokenizer, clear_encoding_memo
from .errors import (
    DecodingError,
    InvalidSmilesError,
    SelfiesEncodingError,
    SequenceTooLongError,
    TokenizationError,
    UnknownMoleculeTokenError,
)
from .safe import SafeTokenizer
from .selfies import SELFIES_PAD, SelfiesTokenizer
from .smiles import SMILES_PAD, SMILES_REGEX, SmilesTokenizer
from .templates import make_template

__all__ = [
    "TokenizationError",
    "InvalidSmilesError",
    "SelfiesEncodingError",
    "UnknownMoleculeTokenError",
    "SequenceTooLongError",
    "DecodingError",
    "EncodedBatch",
    "MolTokenizer",
    "SelfiesTokenizer",
    "SmilesTokenizer",
    "SafeTokenizer",
    "TOKENIZERS",
    "SMILES_REGEX",
    "SELFIES_PAD",
    "SMILES_PAD",
    "get_tokenizer",
    "tokenizer_from_dict",
    "canonicalize_smiles",
    "is_valid_smiles",
    "make_template",
    "clear_encoding_memo",
]


#: Tokenizer classes by kind.
TOKENIZERS: dict[str, type[MolTokenizer]] = {
    SelfiesTokenizer.kind: SelfiesTokenizer,
    SmilesTokenizer.kind: SmilesTokenizer,
    SafeTokenizer.kind: SafeTokenizer,
}


def get_tokenizer(kind: str) -> type[MolTokenizer]:
    """The tokenizer class for ``kind`` (case-insensitive); the error lists the valid kinds."""
    key = kind.lower() if isinstance(kind, str) else kind
    try:
        return TOKENIZERS[key]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown tokenizer {kind!r}; valid: {', '.join(sorted(TOKENIZERS))}"
        ) from None


def tokenizer_from_dict(d: dict) -> MolTokenizer:
    """Rebuild any tokenizer from its :meth:`MolTokenizer.to_dict` (dispatches on ``kind``)."""
    return MolTokenizer.from_dict(d)
