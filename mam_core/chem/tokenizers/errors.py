"""Tokenizer errors: every failure to turn a molecule into tokens (or ids back into one) raises
one of these, with a message that names the molecule and the reason."""

from __future__ import annotations

from ...core.vocab import UnknownTokenError

__all__ = [
    "TokenizationError",
    "InvalidSmilesError",
    "SelfiesEncodingError",
    "UnknownMoleculeTokenError",
    "SequenceTooLongError",
    "DecodingError",
]

# Show long molecules shortened in messages; the full string is kept on the exception object.
_SHOW = 120


def _short(s: str) -> str:
    return s if len(s) <= _SHOW else s[: _SHOW - 3] + "..."


class TokenizationError(ValueError):
    """A molecule could not be turned into tokens; the message names the molecule and why.

    Attributes:
        smiles: the offending input (SMILES, or the fragment/token list as given).
        reason: a short human-readable reason.
    """

    def __init__(self, smiles: str, reason: str) -> None:
        self.smiles = smiles
        self.reason = reason
        super().__init__(f"cannot tokenise {_short(smiles)!r}: {reason}")

    def __reduce__(self) -> tuple:  # keep exceptions picklable across worker processes
        return (type(self), (self.smiles, self.reason))


class InvalidSmilesError(TokenizationError):
    """RDKit cannot parse the SMILES (or it is empty)."""


class SelfiesEncodingError(TokenizationError):
    """RDKit parses the SMILES but SELFIES cannot encode it (e.g. it breaks the constraints)."""


class UnknownMoleculeTokenError(TokenizationError, UnknownTokenError):
    """The molecule contains a token outside the vocabulary (also an ``UnknownTokenError``).

    Attributes:
        token: the first unknown token.
    """

    def __init__(self, smiles: str, token: str, vocab_name: str = "") -> None:
        self.token = token
        self.vocab_name = vocab_name
        where = f"the {vocab_name} vocabulary" if vocab_name else "the vocabulary"
        super().__init__(smiles, f"token {token!r} is not in {where}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.smiles, self.token, self.vocab_name))


class SequenceTooLongError(TokenizationError):
    """The molecule needs more than D tokens.

    Attributes:
        length: number of tokens the molecule needs.
        D: the tokenizer's sequence length.
    """

    def __init__(self, smiles: str, length: int, D: int) -> None:  # noqa: N803 - paper's D
        self.length = length
        self.D = D
        super().__init__(smiles, f"it has {length} tokens, longer than D={D}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.smiles, self.length, self.D))


class DecodingError(ValueError):
    """Ids that cannot be decoded: mask ids, ids out of range, or a wrongly shaped tensor."""
