"""Partial molecules for constrained sampling: a fragment's tokens placed, every other position
masked."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import MolTokenizer
from .errors import UnknownMoleculeTokenError, _short

__all__ = ["make_template"]


def make_template(
    tokenizer: MolTokenizer,
    fragment_smiles: str | Sequence[str],
    start: int = 0,
    fixed: Sequence[bool] | None = None,
) -> torch.Tensor:
    """A partial molecule for constrained sampling: fragment tokens placed, all else masked.

    Fixing a substructure (DESIGN §4) = put the fragment's tokens at positions
    ``start .. start+L-1`` and mask every other position, so the sampler fills only the rest.

    Args:
        tokenizer: the model's tokenizer.
        fragment_smiles: the fragment as a SMILES string (canonicalised and tokenised like any
            molecule, without padding), or as an explicit list of vocabulary tokens (for partial
            strings that are not molecules, e.g. ``["c", "1", "c", "c"]``).
        start: position of the fragment's first token.
        fixed: optional booleans, one per fragment token; tokens marked ``False`` are masked too
            (keep the scaffold's atoms, let the model choose e.g. ring-closure tokens).

    Returns:
        ``(D,)`` int64 tensor with token ids at the fixed fragment positions and the mask id
        ``K`` everywhere else.

    Raises:
        TokenizationError: invalid fragment SMILES or unknown token (named).
        ValueError: negative ``start``, fragment does not fit in D (sizes given), or ``fixed``
            has the wrong length.
    """
    if isinstance(fragment_smiles, str):
        label = fragment_smiles
        tokens = tokenizer.tokenize(fragment_smiles)
    else:
        tokens = [str(t) for t in fragment_smiles]
        label = " ".join(tokens)
    if not tokens:
        raise ValueError("the fragment has no tokens")
    ids = []
    for t in tokens:
        if t not in tokenizer.vocab:
            raise UnknownMoleculeTokenError(label, t, tokenizer.vocab.name)
        ids.append(tokenizer.vocab.id_of(t))
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    L = len(ids)  # noqa: N806
    if start + L > tokenizer.D:
        raise ValueError(
            f"fragment {_short(label)!r} has {L} tokens; placed at start={start} it needs "
            f"positions {start}..{start + L - 1} but D={tokenizer.D} "
            f"(largest possible start: {tokenizer.D - L})"
            if L <= tokenizer.D
            else f"fragment {_short(label)!r} has {L} tokens, longer than D={tokenizer.D}"
        )
    if fixed is None:
        keep = [True] * L
    else:
        keep = [bool(f) for f in fixed]
        if len(keep) != L:
            raise ValueError(
                f"fixed has {len(keep)} entries but the fragment has {L} tokens: {tokens}"
            )
    template = torch.full((tokenizer.D,), tokenizer.mask_id, dtype=torch.long)  # (D,)
    for j, (i, k) in enumerate(zip(ids, keep, strict=True)):
        if k:
            template[start + j] = i
    return template
