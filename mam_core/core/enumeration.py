"""Exact enumeration over all K**D states: the ground truth for tests, benchmarks and any energy
small enough to sum (the Ising energy's exact marginals use these helpers too)."""

from __future__ import annotations

import torch

__all__ = ["MAX_STATES", "all_states", "pairwise_field", "exact_log_marginal", "kl_divergence"]

#: Largest number of states enumerated (2^21: every 20-site binary lattice fits).
MAX_STATES = 2**21


def all_states(D: int, K: int) -> torch.Tensor:
    """Every sequence of length D over K tokens, shape ``(K**D, D)``, in lexicographic order.

    Row ``k`` holds the base-K digits of ``k`` with position 0 the most significant, so for
    ``K = 2`` row ``k`` is the binary expansion of ``k``.

    Raises:
        ValueError: If ``K**D`` exceeds :data:`MAX_STATES`.
    """
    if K**D > MAX_STATES:
        raise ValueError(f"K**D = {K**D} states is too many to enumerate (at most {MAX_STATES})")
    k = torch.arange(K**D, dtype=torch.long)  # (K^D,)
    place = K ** torch.arange(D - 1, -1, -1, dtype=torch.long)  # (D,) most significant first
    return (k[:, None] // place) % K  # (K^D, D)


def pairwise_field(D: int, K: int, seed: int,
                   scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random pairwise Markov random field; returns ``(states, exact log-probs (K**D,))``."""
    g = torch.Generator().manual_seed(seed)
    unary = scale * torch.randn(D, K, generator=g, dtype=torch.float64)
    pair = scale * torch.randn(D, D, K, K, generator=g, dtype=torch.float64) / 2
    xs = all_states(D, K)
    e = unary[torch.arange(D), xs].sum(1)
    for i in range(D):
        for j in range(i + 1, D):
            e += pair[i, j][xs[:, i], xs[:, j]]
    return xs, e - torch.logsumexp(e, 0)


def exact_log_marginal(xs: torch.Tensor, logp: torch.Tensor, x_partial: torch.Tensor,
                       mask_id: int) -> torch.Tensor:
    """``log p(x_S) = log Σ_{completions} p(x)`` for each partial row, by enumeration.

    Args:
        xs: ``(N, D)`` every state (e.g. :func:`all_states`).
        logp: ``(N,)`` normalised log-probabilities of ``xs``.
        x_partial: ``(B, D)`` ids; ``mask_id`` marks the unobserved positions.
        mask_id: The mask id.

    Returns:
        ``(B,)`` in ``logp``'s dtype on ``x_partial``'s device; a fully masked row gives
        ``logsumexp(logp)`` (0 for a normalised ``logp``).
    """
    xs, logp = xs.cpu(), logp.cpu()
    x = x_partial.detach().to("cpu", torch.long)  # (B, D)
    observed = x != mask_id  # (B, D)
    n, d = xs.shape
    chunk = max(1, 2**22 // max(1, n * d))  # bound the (chunk, N, D) comparison to ~4M entries
    out = []
    for start in range(0, x.shape[0], chunk):
        rows, obs = x[start : start + chunk], observed[start : start + chunk]  # (b, D)
        agree = (xs[None] == rows[:, None]) | ~obs[:, None]  # (b, N, D)
        compatible = agree.all(-1)  # (b, N): state n completes row b
        out.append(torch.logsumexp(logp[None].masked_fill(~compatible, -torch.inf), dim=-1))  # (b,)
    result = torch.cat(out) if out else torch.zeros(0, dtype=logp.dtype)
    return result.to(x_partial.device)


def kl_divergence(logq: torch.Tensor, logp: torch.Tensor) -> float:
    """``KL(q‖p)`` for two log-probability vectors over the same enumerated states."""
    return float((logq.exp() * (logq - logp)).sum())
