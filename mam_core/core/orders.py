"""Generation orders: which position is filled (or scored) at which step.

An order is a permutation of ``0..D-1`` per row, shape ``(B, D)``.  Named orders live in one
registry; a user-given order is a LongTensor of shape ``(D,)`` or ``(B, D)``.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["ORDERS", "make_orders", "restrict_order", "rank_of", "parse_order"]


def _random(n: int, D: int, device, generator) -> torch.Tensor:
    return torch.rand(n, D, device=device, generator=generator).argsort(dim=1)  # (n, D)


def _l2r(n: int, D: int, device, generator) -> torch.Tensor:
    return torch.arange(D, device=device).expand(n, D).clone()


def _r2l(n: int, D: int, device, generator) -> torch.Tensor:
    return torch.arange(D - 1, -1, -1, device=device).expand(n, D).clone()


ORDERS: dict[str, Callable] = {"random": _random, "l2r": _l2r, "r2l": _r2l}


def make_orders(
    order: str | torch.Tensor | list,
    n: int,
    D: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Resolve an order spec into a ``(n, D)`` permutation tensor.

    Raises:
        ValueError: unknown name (the message lists valid ones) or a tensor that is not a
            permutation of ``0..D-1``.
    """
    if isinstance(order, str):
        try:
            fn = ORDERS[order]
        except KeyError:
            raise ValueError(
                f"unknown order {order!r}; valid: {sorted(ORDERS)} or a permutation of 0..{D - 1}"
            ) from None
        return fn(n, D, device, generator)
    t = torch.as_tensor(order, dtype=torch.long, device=device)
    if t.dim() == 1:
        t = t.expand(n, -1)
    if t.dim() != 2 or t.shape != (n, D):
        raise ValueError(f"an order must have shape (D,) or (n, D) = ({n}, {D}); got "
                         f"{tuple(t.shape)}")
    expected = torch.arange(D, device=device).expand(n, D)
    if not torch.equal(t.sort(dim=1).values, expected):
        raise ValueError(f"an order must be a permutation of 0..{D - 1} in every row")
    return t.clone()


def restrict_order(order: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the positions where ``keep`` is true to the front, preserving their relative order.

    Args:
        order: ``(B, D)`` permutations.
        keep: ``(B, D)`` bool, indexed by position.
    Returns:
        ``(seq, count)``: ``seq (B, D)`` with the kept positions first (in order), then the
        rest; ``count (B,)`` the number of kept positions per row.
    """
    drop_key = (~keep).gather(1, order).to(torch.int8)  # (B, D): 0 = keep, in order
    idx = torch.sort(drop_key, dim=1, stable=True).indices
    return order.gather(1, idx), keep.sum(dim=1)


def rank_of(order: torch.Tensor) -> torch.Tensor:
    """Step at which each position is visited: ``rank[b, order[b, t]] = t``."""
    rank = torch.empty_like(order)
    steps = torch.arange(order.shape[1], device=order.device).expand_as(order)
    return rank.scatter_(1, order, steps)


def parse_order(text: str, D: int) -> torch.Tensor:
    """A ``(D,)`` permutation from typed positions like ``"10 11 12, 0 1"``.

    The listed positions come first, in the given order; the rest follow left to right, so a
    user can say only what matters ("grow from position 10") without typing all D.
    Raises:
        ValueError: a token that is not an integer, a position outside ``0..D-1``, or a repeat.
    """
    tokens = text.replace(",", " ").split()
    listed: list[int] = []
    for tok in tokens:
        try:
            pos = int(tok)
        except ValueError:
            raise ValueError(f"{tok!r} is not a position; type integers between 0 and "
                             f"{D - 1}") from None
        if not 0 <= pos < D:
            raise ValueError(f"position {pos} is outside 0..{D - 1}")
        if pos in listed:
            raise ValueError(f"position {pos} is listed twice")
        listed.append(pos)
    rest = [i for i in range(D) if i not in set(listed)]
    return torch.tensor(listed + rest, dtype=torch.long)
