"""Training sets in fragment blocks: every molecule written ``copies`` times, each time with its
fragments in a random order, so the model sees every fragment at the start of a string (where a
design puts the user's fragment) and learns that fragment order carries no meaning."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from .tokenizers import SMILES_PAD, SafeTokenizer
from ..core.vocab import Vocabulary
from .safe import fragment_order_variants

__all__ = ["fragment_block_dataset"]

log = logging.getLogger(__name__)


def fragment_block_dataset(
    smiles: Sequence[str],
    copies: int = 2,
    seed: int = 0,
    max_length: int = 64,
    n_jobs: int = 1,
    tokenizer: SafeTokenizer | None = None,
) -> tuple[SafeTokenizer, torch.Tensor]:
    """Encode molecules as shuffled fragment-block strings.

    Args:
        smiles: training molecules.
        copies: shuffled strings per molecule.
        seed: makes the shuffles reproducible (independent of ``n_jobs``).
        max_length: D; longer strings are dropped (counted in the log).
        tokenizer: reuse this vocabulary (strings with other tokens are dropped); by default
            one is built from the data.
    Returns:
        ``(tokenizer, ids (N, D))``.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    texts = fragment_order_variants(list(smiles), copies, seed, n_jobs)
    token_lists = [SafeTokenizer.regex_tokens(t) for t in texts if t is not None]
    n_bad = len(texts) - len(token_lists)
    kept = [t for t in token_lists if len(t) <= max_length]
    n_long = len(token_lists) - len(kept)
    if tokenizer is None:
        alphabet = sorted(set().union(*kept) - {SMILES_PAD})
        vocab = Vocabulary(tuple(alphabet) + (SMILES_PAD,), SMILES_PAD, "safe")
        tokenizer = SafeTokenizer(vocab, max_length)
    known = [t for t in kept if all(x in tokenizer.vocab for x in t)]
    n_unknown = len(kept) - len(known)
    log.info(
        "fragment blocks: %d strings kept; dropped %d unencodable, %d longer than %d, %d unknown",
        len(known), n_bad, n_long, max_length, n_unknown,
    )
    pad = tokenizer.pad_id
    ids = torch.full((len(known), tokenizer.D), pad, dtype=torch.long)
    for r, toks in enumerate(known):
        ids[r, : len(toks)] = torch.tensor([tokenizer.vocab.id_of(t) for t in toks])
    return tokenizer, ids
