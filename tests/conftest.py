"""Shared fixtures: tiny exactly-enumerable problems and seeded models."""

from __future__ import annotations

import itertools

import pytest
import torch

from mam_core import MaM, NetworkConfig


def all_states(D: int, K: int) -> torch.Tensor:
    """Every sequence of length D over K tokens, shape (K**D, D)."""
    return torch.tensor(list(itertools.product(range(K), repeat=D)), dtype=torch.long)


def pairwise_field(D: int, K: int, seed: int, scale: float = 1.0):
    """A random pairwise Markov random field; returns (states, exact log-probs)."""
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
    """log Σ_{completions} p(x) for each partial row, by enumeration."""
    out = []
    for row in x_partial:
        obs = row != mask_id
        match = (xs[:, obs] == row[obs]).all(1)
        out.append(torch.logsumexp(logp[match], 0))
    return torch.stack(out)


def perturbed(model: MaM, scale: float = 0.2, seed: int = 0) -> MaM:
    """Randomise every weight (incl. the zero-initialised marginal output) so tests are not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


ARCHS = [
    dict(arch="mlp", hidden=32, n_layers=2),
    dict(arch="mlp", hidden=32, n_layers=2, shared_trunk=True),
    dict(arch="transformer", d_model=32, n_layers=2, n_heads=4),
    dict(arch="transformer", d_model=32, n_layers=2, n_heads=4, shared_trunk=True),
]


@pytest.fixture(params=ARCHS, ids=["mlp", "mlp-shared", "transformer", "transformer-shared"])
def tiny_model(request):
    """An untrained (but perturbed) D=6, K=3 model of every architecture."""
    return perturbed(MaM(NetworkConfig(D=6, K=3, **request.param)))
