"""Exact enumeration helpers (mam_core.core.enumeration), shared by the tests and the Ising
energy."""

from __future__ import annotations

import itertools

import pytest
import torch

from energies import IsingEnergy
from mam_core.core.enumeration import all_states, exact_log_marginal, pairwise_field


def test_all_states_is_lexicographic_and_refuses_huge_spaces():
    assert torch.equal(all_states(3, 3), torch.tensor(list(itertools.product(range(3), repeat=3))))
    assert all_states(4, 2)[5].tolist() == [0, 1, 0, 1]  # row k = binary digits of k
    with pytest.raises(ValueError, match="too many"):
        all_states(30, 2)


def test_exact_log_marginal_sums_the_completions():
    xs, logp = pairwise_field(D=4, K=3, seed=0)
    mask = 3
    rows = torch.tensor([[mask] * 4, [0, mask, 2, mask], [1, 2, 0, 1], [mask, mask, mask, 2]])
    got = exact_log_marginal(xs, logp, rows, mask)
    for row, value in zip(rows, got):
        obs = row != mask
        brute = torch.logsumexp(torch.stack([lp
                                             for x, lp in zip(xs,
                                                              logp) if (x[obs] == row[obs]).all()]),
                                                              0)
        assert torch.allclose(value, brute, atol=1e-12)
    assert abs(float(got[0])) < 1e-12  # nothing observed: log 1


def test_the_ising_energy_enumerates_with_the_same_helpers():
    e = IsingEnergy(n=3, sigma=0.5)
    assert torch.equal(e.all_states(), all_states(9, 2))
    x = e.all_states()[:7].clone()
    x[:, ::2] = e.mask_id
    assert torch.equal(e.exact_log_marginal(x),
                       exact_log_marginal(e.all_states(), e.exact_log_probs(), x, e.mask_id))
