"""ARM-EB baseline: its differentiable likelihood is the exact l2r ARM, and REINFORCE on it
learns."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import all_states, perturbed
from energies import get_energy
from mam_core import MaM, NetworkConfig
from mam_core.core.likelihood import arm_log_likelihood
from mam_core.training import train_arm_eb
from mam_core.core.config import TrainConfig


def test_arm_log_likelihood_matches_the_reference_and_is_normalised():
    m = perturbed(MaM(NetworkConfig(D=5, K=3, arch="mlp", hidden=32, n_layers=1)))
    x = all_states(5, 3)
    ll = arm_log_likelihood(m, x)
    ref = m.log_likelihood_arm(x, order="l2r")
    assert torch.allclose(ll.double(), ref, atol=1e-4)
    assert abs(torch.logsumexp(ll.double(), 0).item()) < 1e-4
    chunked = arm_log_likelihood(m, x[:7], chunk=4)
    assert torch.allclose(chunked, ll[:7], atol=1e-5)
    ll.sum().backward()  # differentiable through all D passes
    assert m.net.conditional_head.weight.grad is not None


@pytest.mark.slow
def test_arm_eb_training_approaches_the_ising_target():
    torch.manual_seed(0)
    ising = get_energy("ising", n=3, sigma=0.5, bias=0.2, periodic=False)
    m = MaM(NetworkConfig(D=9, K=2, arch="mlp", hidden=64, n_layers=2))
    x = ising.all_states()
    log_p_star = ising.exact_log_probs()

    def kl():
        with torch.no_grad():
            lp = arm_log_likelihood(m, x).double()
        return float((lp.exp() * (lp - log_p_star)).sum())

    before = kl()
    res = train_arm_eb(m, ising, TrainConfig(steps=300, batch_size=128, lr=3e-3, log_every=50),
                       progress=False)
    after = kl()
    assert after < 0.5 * before and after < 0.05, (before, after)
    assert res.history[-1]["kl_minus_logz"] > -math.inf
