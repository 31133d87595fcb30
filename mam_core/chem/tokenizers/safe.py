"""Fragment blocks: a SMILES tokenizer over the SAFE-style strings of :mod:`mam_core.chem.safe`."""

from __future__ import annotations

import random
from typing import ClassVar

from .errors import TokenizationError
from .smiles import SMILES_PAD, SmilesTokenizer

__all__ = ["SafeTokenizer"]


class SafeTokenizer(SmilesTokenizer):
    """Fragment blocks (:mod:`mam_core.chem.safe`): BRICS fragments as dot-separated SMILES
    blocks joined by ring-closure labels ``%10``, ``%11``... (the SAFE idea).

    A fragment is a contiguous run of tokens, so fixing a fragment and completing the molecule
    is infilling, and its atoms bond to new atoms only through its labels.  Encoding is
    canonical (one molecule, one string); :func:`mam_core.chem.safe.encode` with a random
    generator gives the shuffled fragment orders used to train.  Decoding returns the RDKit
    canonical SMILES when the blocks form one molecule, else the raw string (invalid).
    """

    kind: ClassVar[str] = "safe"
    pad_token: ClassVar[str] = SMILES_PAD
    many_spellings: ClassVar[bool] = True

    def _smiles_to_tokens(self, smiles: str) -> list[str]:
        from .. import safe

        try:
            text = safe.encode(smiles)
        except safe.SafeEncodingError as err:
            raise TokenizationError(smiles,
                                    f"cannot be written as fragment blocks ({err})") from None
        return self.regex_tokens(text)

    def _tokens_to_smiles(self, tokens: list[str]) -> str:
        from .. import safe

        text = "".join(t for t in tokens if t != self.pad_token)
        canon = safe.decode(text)
        return text if canon is None else canon

    def spellings(self, tokens: list[str], k: int,
                  rng: random.Random) -> tuple[list[list[str]], int]:
        """The molecule's blocks in up to ``k`` orders (:func:`mam_core.chem.safe.block_orders`):
        trained on shuffled fragment orders, the model writes a molecule of ``n`` distinct
        blocks in ``n!`` ways."""
        from .. import safe

        orders = safe.block_orders("".join(tokens), k, rng)
        return [self.regex_tokens(s) for s in orders.strings], orders.count

    def spelling_count(self, tokens: list[str]) -> int:
        from .. import safe

        return safe.block_order_count("".join(tokens))
