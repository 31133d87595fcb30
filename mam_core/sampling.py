"""Any-order ancestral sampling and the censor-and-resample (block Gibbs) move.

Both fill masked positions one at a time from the conditional head ``p_φ(x_i | x_S)``, so
sampling costs one forward pass per filled position whatever the order.
"""

from __future__ import annotations

import torch

from .orders import make_orders, restrict_order
from .rng import make_generator

__all__ = ["sample", "censor_and_resample", "fill_in_order"]


def _draw(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    """One categorical draw per row from ``(n, K)`` logits."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (n, K)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (n,)


def fill_in_order(
    model,
    x: torch.Tensor,
    seq: torch.Tensor,
    start: torch.Tensor,
    count: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    trajectory: list | None = None,
) -> torch.Tensor:
    """Fill positions ``seq[b, start[b] : start[b] + count[b]]`` of ``x`` one by one.

    The positions must already hold the mask id.  Rows with fewer positions to fill simply
    stop early; the number of network passes is ``max(count)``.
    """
    rows = torch.arange(x.shape[0], device=x.device)
    steps = int(count.max()) if count.numel() else 0
    for t in range(steps):
        active = t < count  # (n,)
        pos = seq.gather(1, (start + t).clamp(max=seq.shape[1] - 1).unsqueeze(1)).squeeze(1)  # (n,)
        logits = model.net.conditional(x)[rows, pos]  # (n, K)
        tok = _draw(logits, temperature, generator)  # (n,)
        x[rows, pos] = torch.where(active, tok, x[rows, pos])
        if trajectory is not None:
            trajectory.append(x.clone())
    return x


@torch.no_grad()
def sample(
    model,
    n: int,
    order="random",
    template: torch.Tensor | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
):
    """Draw ``n`` sequences from ``p_φ`` in any order.

    Args:
        model: a :class:`~mam_core.model.MaM`.
        n: number of samples.
        order: ``"random"``, ``"l2r"``, ``"r2l"`` or a permutation tensor ``(D,)``/``(n, D)``.
            With a template, only its masked positions are visited, in this order.
        template: ``(D,)`` or ``(n, D)`` ids; observed (non-mask) positions are kept exactly
            and the mask-id positions are sampled.
        temperature: softmax temperature (``0`` = greedy).
        seed / generator: for reproducible draws.
        return_trajectory: also return the list of ``(n, D)`` states after each filled position.
    Returns:
        ``(n, D)`` long tensor of ids in ``0..K-1`` (and the trajectory if asked).
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    dev = model.device
    gen = make_generator(seed, dev, generator)
    if template is None:
        x = model.empty(n)
    else:
        t = model.check_input(template)
        if t.shape[0] not in (1, n):
            raise ValueError(f"template has {t.shape[0]} rows; expected 1 or n={n}")
        x = t.expand(n, -1).clone()
    orders = make_orders(order, n, model.D, dev, gen)
    seq, count = restrict_order(orders, x == model.mask_id)
    trajectory: list | None = [x.clone()] if return_trajectory else None
    was_training = model.training
    model.eval()
    try:
        x = fill_in_order(model, x, seq, torch.zeros_like(count), count, temperature, gen, trajectory)
    finally:
        model.train(was_training)
    return (x, trajectory) if return_trajectory else x


@torch.no_grad()
def censor_and_resample(
    model,
    x: torch.Tensor,
    k: int,
    order="random",
    frozen: torch.Tensor | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Block-Gibbs move on persistent chains (DESIGN §2a): mask the last ``k`` positions of an
    order and resample them one by one from ``p_φ``.

    Args:
        x: ``(B, D)`` complete sequences (ids ``0..K-1``).
        k: block size (paper: 4); clipped to the number of free positions.
        frozen: optional ``(D,)`` or ``(B, D)`` bool, positions that are never censored (a
            fixed substructure).
    Returns:
        A new ``(B, D)`` tensor; ``x`` is not modified.
    """
    x = model.check_input(x, allow_mask=False).clone()
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    B, D = x.shape
    dev = x.device
    gen = make_generator(seed, dev, generator)
    free = torch.ones_like(x, dtype=torch.bool)
    if frozen is not None:
        free = ~torch.as_tensor(frozen, dtype=torch.bool, device=dev).expand(B, D)
    orders = make_orders(order, B, D, dev, gen)
    seq, n_free = restrict_order(orders, free)  # free positions first, in order
    count = n_free.clamp(max=k)
    start = n_free - count  # the last `count` free positions of the order
    steps = torch.arange(k, device=dev)  # censor the whole block first, in one scatter
    block = seq.gather(1, (start[:, None] + steps).clamp(max=D - 1))  # (B, k)
    in_block = steps < count[:, None]  # (B, k)
    x[torch.arange(B, device=dev)[:, None].expand_as(block)[in_block], block[in_block]] = model.mask_id
    was_training = model.training
    model.eval()
    try:
        return fill_in_order(model, x, seq, start, count, temperature, gen)
    finally:
        model.train(was_training)
