"""A small token vocabulary shared by molecules and lattices.

Every MaM works on integer tensors ``(B, D)`` with values ``0..K-1``; the extra id ``K`` is the
mask token marking unobserved positions.  A :class:`Vocabulary` maps human-readable tokens to
those ids and back, and travels inside every checkpoint so a model can always be rebuilt and
decoded without the data it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

__all__ = ["Vocabulary", "UnknownTokenError", "MASK_TOKEN"]

#: Display string for the mask id (never a real token).
MASK_TOKEN = "[MASK]"


class UnknownTokenError(ValueError):
    """Raised when a token is not in the vocabulary; the message names the token."""


@dataclass(frozen=True)
class Vocabulary:
    """Ordered token list; ``tokens[i]`` has id ``i`` and ``mask_id == K == len(tokens)``.

    Args:
        tokens: the K distinct real tokens, in id order.
        pad_token: the token used to pad sequences to a fixed length D (e.g. ``[nop]`` for
            SELFIES), or ``None`` when every sequence has exactly D tokens (lattices).
        name: a short label stored with checkpoints ("selfies", "smiles", "ising", ...).
    """

    tokens: tuple[str, ...]
    pad_token: str | None = None
    name: str = "generic"
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens = tuple(str(t) for t in self.tokens)
        object.__setattr__(self, "tokens", tokens)
        if len(tokens) < 2:
            raise ValueError(f"a vocabulary needs at least 2 tokens, got {len(tokens)}")
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"duplicate tokens in vocabulary: {dupes}")
        if MASK_TOKEN in tokens:
            raise ValueError(f"{MASK_TOKEN!r} is reserved for the mask id")
        if self.pad_token is not None and self.pad_token not in tokens:
            raise ValueError(f"pad token {self.pad_token!r} is not one of the tokens")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(tokens)})

    # ------------------------------------------------------------------ sizes and ids
    @property
    def K(self) -> int:  # noqa: N802 - K is the paper's name
        """Number of real tokens."""
        return len(self.tokens)

    @property
    def mask_id(self) -> int:
        """Id of the mask token (== K)."""
        return len(self.tokens)

    @property
    def pad_id(self) -> int | None:
        return None if self.pad_token is None else self._index[self.pad_token]

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def id_of(self, token: str) -> int:
        if token == MASK_TOKEN:
            return self.mask_id
        try:
            return self._index[token]
        except KeyError:
            raise UnknownTokenError(
                f"unknown token {token!r}: not in the {self.name} vocabulary of {self.K} tokens"
            ) from None

    def token_of(self, idx: int) -> str:
        idx = int(idx)
        if idx == self.mask_id:
            return MASK_TOKEN
        if not 0 <= idx < self.K:
            raise ValueError(f"token id {idx} out of range 0..{self.K} (K={self.K}, mask={self.K})")
        return self.tokens[idx]

    # ------------------------------------------------------------------ sequences
    def encode(self, tokens: Sequence[str], length: int | None = None) -> list[int]:
        """Token strings -> ids, padded with the pad token to ``length`` when given."""
        ids = [self.id_of(t) for t in tokens]
        if length is not None:
            if len(ids) > length:
                raise ValueError(f"sequence has {len(ids)} tokens, longer than D={length}")
            if len(ids) < length:
                if self.pad_id is None:
                    raise ValueError(
                        f"sequence has {len(ids)} tokens but D={length} and this vocabulary has no "
                        "pad token"
                    )
                ids += [self.pad_id] * (length - len(ids))
        return ids

    def decode(self, ids: Iterable[int], strip_pad: bool = True) -> list[str]:
        """Ids -> token strings; pad tokens dropped when ``strip_pad``; mask shown as ``[MASK]``."""
        out = [self.token_of(i) for i in (ids.tolist() if torch.is_tensor(ids) else ids)]
        if strip_pad and self.pad_token is not None:
            out = [t for t in out if t != self.pad_token]
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens), "pad_token": self.pad_token, "name": self.name}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        unknown = set(d) - {"tokens", "pad_token", "name"}
        if unknown:
            raise ValueError(f"unknown vocabulary keys: {sorted(unknown)}")
        return cls(tokens=tuple(d["tokens"]), pad_token=d.get("pad_token"),
                   name=d.get("name", "generic"))

    @classmethod
    def integers(cls, K: int, name: str = "generic") -> "Vocabulary":  # noqa: N803
        """The plain vocabulary ``"0".."K-1"`` for lattices and synthetic problems."""
        return cls(tokens=tuple(str(i) for i in range(K)), name=name)
