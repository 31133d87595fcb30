"""Exactly enumerable toy problems (K**D states), the ground truth for tests and benchmarks."""

from __future__ import annotations

import itertools

import torch

__all__ = ["all_states", "pairwise_field", "exact_log_marginal", "kl_divergence"]


def all_states(D: int, K: int) -> torch.Tensor:
    """Every sequence of length D over K tokens, shape ``(K**D, D)``, in lexicographic order."""
    if K**D > 2_000_000:
        raise ValueError(f"K**D = {K**D} states is too many to enumerate")
    return torch.tensor(list(itertools.product(range(K), repeat=D)), dtype=torch.long)


def pairwise_field(D: int, K: int, seed: int, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
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


def exact_log_marginal(xs: torch.Tensor, logp: torch.Tensor, x_partial: torch.Tensor, mask_id: int) -> torch.Tensor:
    """``log Σ_{completions} p(x)`` for each partial row (mask id = unobserved), by enumeration."""
    out = []
    for row in x_partial:
        obs = row != mask_id
        match = (xs[:, obs] == row[obs]).all(1)
        out.append(torch.logsumexp(logp[match], 0))
    return torch.stack(out)


def kl_divergence(logq: torch.Tensor, logp: torch.Tensor) -> float:
    """``KL(q‖p)`` for two log-probability vectors over the same enumerated states."""
    return float((logq.exp() * (logq - logp)).sum())
