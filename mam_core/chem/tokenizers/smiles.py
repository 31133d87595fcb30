"""Atom-level SMILES tokens from the regular expression of the Molecular Transformer (Schwaller
et al. 2019); pad ``<pad>``, a string no SMILES can contain.  Decoded strings may be invalid, so
callers check them (:func:`mam_core.chem.rdkit_utils.is_valid`)."""

from __future__ import annotations

import re
from typing import ClassVar

from .base import MolTokenizer
from .errors import TokenizationError

__all__ = ["SMILES_PAD", "SMILES_REGEX", "SmilesTokenizer"]

#: Pad token of SMILES vocabularies; '<' cannot occur in SMILES, so it never collides.
SMILES_PAD = "<pad>"

#: Atom-level SMILES regex (Schwaller et al., "Molecular Transformer", ACS Cent. Sci. 2019):
#: bracket atoms, two-letter halogens, organic-subset atoms (aromatic too), bonds, branches,
#: ring closures (one digit, or ``%NN``), dots, stereo marks.
SMILES_REGEX = (
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|"
    r"%[0-9]{2}|[0-9])"
)
_SMILES_PATTERN = re.compile(SMILES_REGEX)


class SmilesTokenizer(MolTokenizer):
    """Atom-level SMILES tokens (:data:`SMILES_REGEX`); pad ``<pad>``.

    Decoding removes every pad (wherever a sampler put it) and joins the rest; the string is
    returned raw, since a SMILES model can produce invalid molecules and measuring that is the
    caller's job (:func:`is_valid_smiles`).
    """

    kind: ClassVar[str] = "smiles"
    pad_token: ClassVar[str] = SMILES_PAD

    @staticmethod
    def regex_tokens(smiles: str) -> list[str]:
        """Split a SMILES string with :data:`SMILES_REGEX` (no RDKit, no canonicalisation).

        Raises:
            TokenizationError: the regex does not cover every character (the message quotes the
                characters it skipped).
        """
        tokens = _SMILES_PATTERN.findall(smiles)
        if "".join(tokens) != smiles:
            leftover = _SMILES_PATTERN.sub("", smiles)
            raise TokenizationError(
                smiles, f"characters the SMILES tokeniser does not know: {leftover!r}"
            )
        return tokens

    def _smiles_to_tokens(self, smiles: str) -> list[str]:
        return self.regex_tokens(smiles)

    def _tokens_to_smiles(self, tokens: list[str]) -> str:
        return "".join(t for t in tokens if t != self.pad_token)
