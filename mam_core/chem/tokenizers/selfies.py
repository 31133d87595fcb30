"""SELFIES symbols (Krenn et al. 2020), the default tokenizer as in the paper.

Every string of SELFIES symbols decodes to a valid molecule, so any sample is a molecule; the pad
token is SELFIES's own no-op symbol ``[nop]``, which the decoder skips wherever it sits.

SELFIES semantic constraints (the bonding capacities that make every string valid) are global
state in the ``selfies`` package; a tokenizer records the preset it was built with and switches to
it, under a lock, only for the duration of each call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import ClassVar

import selfies as sf
import torch

from ...core.vocab import Vocabulary
from ..rdkit_utils import canonical
from .base import MolTokenizer
from .errors import DecodingError, SelfiesEncodingError

__all__ = ["SELFIES_PAD", "SelfiesTokenizer"]

#: Pad token of SELFIES vocabularies: SELFIES's no-op symbol, ignored by the decoder.
SELFIES_PAD = "[nop]"

# --------------------------------------------------------------------------------- SELFIES state
_SELFIES_LOCK = threading.RLock()


@contextlib.contextmanager
def _selfies_constraints(preset: str) -> Iterator[None]:
    """Run the block under the SELFIES semantic-constraints ``preset``, then restore.

    ``selfies`` keeps its constraints in a module global (and clears its caches whenever they
    change), so we only switch when the current ones differ, and hold a lock so that two threads
    (e.g. two Streamlit sessions) with different presets cannot interleave.
    """
    with _SELFIES_LOCK:
        current = sf.get_semantic_constraints()
        wanted = sf.get_preset_constraints(preset)
        if current == wanted:
            yield
            return
        sf.set_semantic_constraints(preset)
        try:
            yield
        finally:
            sf.set_semantic_constraints(current)


# --------------------------------------------------------------------------------- tokenizer
class SelfiesTokenizer(MolTokenizer):
    """SELFIES symbols (default tokenizer): every id string decodes to a valid molecule.

    Decoding joins the symbols (``[nop]`` pads are no-ops wherever they are), runs the SELFIES
    decoder under the stored constraints, and canonicalises the result with RDKit when RDKit
    accepts it (otherwise the decoder's SMILES is returned unchanged).

    Args:
        vocab: vocabulary whose pad token is ``[nop]``.
        D: sequence length.
        canonicalize: canonicalise input SMILES with RDKit first.
        constraints: SELFIES semantic-constraints preset (``"default"``, ``"octet_rule"``,
            ``"hypervalent"``); stored so a checkpoint decodes the same way everywhere.
    """

    kind: ClassVar[str] = "selfies"
    pad_token: ClassVar[str] = SELFIES_PAD

    def __init__(
        self,
        vocab: Vocabulary,
        D: int,  # noqa: N803 - the paper's D
        canonicalize: bool = True,
        constraints: str = "default",
    ) -> None:
        super().__init__(vocab, D, canonicalize)
        try:
            sf.get_preset_constraints(constraints)
        except ValueError:
            raise ValueError(
                f"unknown SELFIES constraints preset {constraints!r}; valid: "
                "'default', 'octet_rule', 'hypervalent'"
            ) from None
        self.constraints = constraints

    def _context(self) -> contextlib.AbstractContextManager:
        return _selfies_constraints(self.constraints)

    def _smiles_to_tokens(self, smiles: str) -> list[str]:
        try:
            encoded = sf.encoder(smiles, strict=True)
        except sf.EncoderError as err:
            reason = " ".join(str(err).split())  # selfies messages span several lines
            raise SelfiesEncodingError(smiles, f"SELFIES cannot encode it ({reason})") from None
        if encoded is None:  # pragma: no cover - old selfies returned None
            raise SelfiesEncodingError(smiles, "SELFIES cannot encode it")
        return list(sf.split_selfies(encoded))

    def _tokens_to_smiles(self, tokens: list[str]) -> str:
        try:
            smiles = sf.decoder("".join(tokens))
        except sf.DecoderError as err:  # only for symbols outside SELFIES; cannot come from a vocab
            raise DecodingError(f"SELFIES decoder failed: {err}") from None
        if not smiles:
            return ""
        canon = canonical(smiles)
        return smiles if canon is None else canon

    def to_selfies(self, ids: torch.Tensor | Sequence[int], strip_pad: bool = True) -> str:
        """The SELFIES string of an id sequence (for display); mask ids shown as ``[MASK]``."""
        return "".join(self.vocab.decode(ids, strip_pad=strip_pad))

    def _extra_dict(self) -> dict:
        return {"constraints": self.constraints}

    @classmethod
    def _extra_keys(cls) -> tuple[str, ...]:
        return ("constraints",)

    @classmethod
    def _extra_init(cls, kwargs: dict) -> dict:
        extra = {"constraints": kwargs.pop("constraints", "default")}
        if kwargs:
            raise TypeError(f"unexpected arguments for {cls.__name__}: {sorted(kwargs)}")
        return extra
