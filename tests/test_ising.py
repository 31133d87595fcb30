"""Tests for the lattice Ising energy: hand values, exact enumeration and the Gibbs sampler."""

from __future__ import annotations

import math

import pytest
import torch

from energies import ENERGIES, IsingEnergy, IsingParams, get_energy


@pytest.fixture(autouse=True)
def _single_thread():
    """The sampler works on small tensors, where intra-op threads only add contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _checkerboard(n: int) -> torch.Tensor:
    r, c = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return ((r + c) % 2).reshape(1, n * n)  # (1, D), x_{r,c} = (r + c) mod 2


def _exact_moments(e: IsingEnergy) -> tuple[torch.Tensor, float, float]:
    """Exact site marginals, and mean and std of log f under p*."""
    p = e.exact_log_probs().exp()  # (2^D,)
    log_f = e.log_f(e.all_states(), dtype=torch.float64)  # (2^D,)
    mean = float((p * log_f).sum())
    std = math.sqrt(float((p * (log_f - mean) ** 2).sum()))
    return e.exact_site_marginals(), mean, std


def _assert_matches_exact(e: IsingEnergy, x: torch.Tensor, z_max: float = 5.0) -> None:
    """Sample site frequencies and mean log f lie within z_max standard errors of the truth."""
    marg, mean, std = _exact_moments(e)
    c = x.shape[0]
    se = (marg * (1 - marg) / c).sqrt()  # (D,)
    z_marg = ((x.double().mean(0) - marg).abs() / se).max().item()
    z_mean = abs(e.log_f(x, dtype=torch.float64).mean().item() - mean) / (std / math.sqrt(c))
    assert z_marg < z_max, f"site marginals off by {z_marg:.1f} SE"
    assert z_mean < z_max, f"mean log f off by {z_mean:.1f} SE"


# --------------------------------------------------------------------------- params & registry


def test_registry_builds_ising_and_lists_names_on_error():
    e = get_energy("ising", n=3, sigma=0.5)
    assert isinstance(e, IsingEnergy) and ENERGIES["ising"] is IsingEnergy
    assert e.params == IsingParams(n=3, sigma=0.5)
    assert "3×3" in e.description and "σ=0.5" in e.description
    with pytest.raises(ValueError, match="ising"):
        get_energy("no-such-energy")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=1), "n must be >= 2"),
        (dict(n=2), "periodic lattice needs n >= 3"),
        (dict(n=3.0), "must be an int"),
        (dict(n=3, sigma=float("nan")), "sigma must be finite"),
        (dict(n=3, bias=float("inf")), "bias must be finite"),
        (dict(n=3, sigma="0.1"), "sigma must be a real number"),
        (dict(n=3, periodic="yes"), "periodic must be a bool"),
    ],
)
def test_bad_params_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IsingEnergy(**kwargs)


def test_open_2x2_is_allowed():
    e = IsingEnergy(2, periodic=False)
    assert e.edges.tolist() == [[0, 1], [0, 2], [1, 3], [2, 3]]  # a single square


# --------------------------------------------------------------------------- lattice and values


@pytest.mark.parametrize("n, periodic, num_edges", [(3, True, 18), (4, True, 32), (3, False, 12)])
def test_lattice_structure(n, periodic, num_edges):
    e = IsingEnergy(n, periodic=periodic)
    a = e.adjacency
    assert a.shape == (n * n, n * n) and e.edges.shape == (num_edges, 2)
    assert torch.equal(a, a.T) and a.diagonal().abs().sum() == 0
    assert a.sum() == 2 * num_edges  # each undirected edge appears twice in A
    if periodic:
        assert torch.all(a.sum(1) == 4)
    # Site (1, 1) = id n + 1 neighbours (0,1), (1,0), (1,2), (2,1): row-major indexing.
    assert set(torch.nonzero(a[n + 1]).flatten().tolist()) == {1, n, n + 2, 2 * n + 1}


# Hand values at sigma=0.1, bias=0.2: log f = 2σ·Σ_edges s_i s_j + bias·Σ_i s_i.
#  3x3 periodic (18 edges): ones 3.6+1.8=5.4; zeros 3.6−1.8=1.8; checkerboard: per row the
#   two inner horizontal edges disagree and the wrap edge agrees (−1 per row, same per column),
#   so Σ s_i s_j = −6 → −1.2, and 4 ones vs 5 zeros gives Σ s = −1 → −0.2; total −1.4.
#  4x4 periodic (32 edges): ones 6.4+3.2=9.6; zeros 6.4−3.2=3.2; checkerboard: every edge
#   disagrees → −6.4, Σ s = 0; total −6.4.
#  3x3 open (12 edges): ones 2.4+1.8=4.2; ones with the centre flipped: 4 edges disagree,
#   Σ s_i s_j = 12−8 = 4 → 0.8, Σ s = 7 → 1.4; total 2.2.
@pytest.mark.parametrize(
    "n, periodic, expected_ones, expected_zeros, expected_checker",
    [(3, True, 5.4, 1.8, -1.4), (4, True, 9.6, 3.2, -6.4)],
)
def test_hand_computed_values(n, periodic, expected_ones, expected_zeros, expected_checker):
    e = IsingEnergy(n, sigma=0.1, bias=0.2, periodic=periodic)
    d = n * n
    x = torch.cat([torch.ones(1, d, dtype=torch.long), torch.zeros(1, d, dtype=torch.long),
                   _checkerboard(n)])  # (3, D)
    expected = torch.tensor([expected_ones, expected_zeros, expected_checker], dtype=torch.float64)
    out = e(x)
    assert out.dtype == torch.float32 and out.shape == (3,)
    assert torch.allclose(out.double(), expected, atol=1e-5)
    assert torch.allclose(e.log_f(x, dtype=torch.float64), expected, atol=1e-12)
    assert torch.allclose(e.energy(x, dtype=torch.float64), -expected, atol=1e-12)


def test_hand_values_open_lattice():
    e = IsingEnergy(3, sigma=0.1, bias=0.2, periodic=False)
    x = torch.ones(2, 9, dtype=torch.long)
    x[1, 4] = 0  # flip the centre
    assert torch.allclose(e.log_f(x, dtype=torch.float64), torch.tensor([4.2, 2.2]).double())


@pytest.mark.parametrize("n, periodic", [(3, True), (4, True), (4, False), (5, True)])
def test_matches_dense_quadratic_form(n, periodic):
    """log f equals the paper's sᵀJs + bᵀs with J = σA built densely."""
    g = torch.Generator().manual_seed(1)
    e = IsingEnergy(n, sigma=0.37, bias=-0.15, periodic=periodic)
    x = torch.randint(0, 2, (64, n * n), generator=g)  # (B, D)
    s = 2.0 * x.double() - 1.0
    j = 0.37 * e.adjacency.double()
    dense = torch.einsum("bi,ij,bj->b", s, j, s) + (-0.15) * s.sum(-1)
    assert torch.allclose(e.log_f(x, dtype=torch.float64), dense, atol=1e-10)
    assert torch.allclose(e(x.int()).double(), dense, atol=1e-4)  # int32/float32 path


# --------------------------------------------------------------------------- exact enumeration


@pytest.fixture(scope="module")
def small() -> IsingEnergy:
    return IsingEnergy(3, sigma=0.5, bias=0.2)


def test_all_states_order(small):
    states = small.all_states()
    assert states.shape == (512, 9) and states.dtype == torch.long
    assert states[5].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 1]  # row k = binary digits of k
    assert torch.unique(states, dim=0).shape[0] == 512


def test_exact_log_probs_normalised(small):
    lp = small.exact_log_probs()
    assert lp.dtype == torch.float64 and lp.shape == (512,)
    assert abs(torch.logsumexp(lp, 0).item()) < 1e-12
    log_f = small.log_f(small.all_states(), dtype=torch.float64)
    assert math.isclose(small.exact_log_partition(), torch.logsumexp(log_f, 0).item())


def test_site_marginals_match_explicit_sums(small):
    p = small.exact_log_probs().exp()
    states = small.all_states()
    explicit = torch.tensor([p[states[:, d] == 1].sum().item() for d in range(9)])
    assert torch.allclose(small.exact_site_marginals(), explicit.double(), atol=1e-12)
    # Translation invariance of the periodic lattice: every site has the same marginal.
    assert torch.allclose(explicit, explicit[0].expand(9), atol=1e-12)


def test_exact_log_marginal(small):
    g = torch.Generator().manual_seed(2)
    states, lp = small.all_states(), small.exact_log_probs()
    full = torch.full((1, 9), 2)
    assert abs(small.exact_log_marginal(full).item()) < 1e-12  # nothing observed: log 1
    idx = torch.randint(0, 512, (16,), generator=g)
    assert torch.allclose(small.exact_log_marginal(states[idx]), lp[idx], atol=1e-12)
    # Partial rows: compare with an explicit sum over matching states, and check that
    # marginalising one more site is a logsumexp over its two values.
    x = states[idx].clone()
    x[torch.rand(x.shape, generator=g) < 0.5] = 2  # (16, 9)
    got = small.exact_log_marginal(x)
    for b in range(16):
        obs = x[b] != 2
        match = (states[:, obs] == x[b, obs]).all(dim=1)
        assert math.isclose(got[b].item(), torch.logsumexp(lp[match], 0).item(), abs_tol=1e-10)
    x[:, 0] = 2
    parent = small.exact_log_marginal(x)
    children = torch.stack([small.exact_log_marginal(x.index_fill(1, torch.tensor([0]), v))
                            for v in (0, 1)])  # (2, 16)
    assert torch.allclose(parent, torch.logsumexp(children, 0), atol=1e-10)


def test_enumeration_refused_above_20_sites():
    with pytest.raises(ValueError, match="D <= 20"):
        IsingEnergy(5).exact_log_probs()


# --------------------------------------------------------------------------- Gibbs sampler


@pytest.mark.parametrize("n, sigma, periodic", [(3, 0.5, True), (4, 0.3, True), (3, 0.3, False)])
def test_gibbs_conditional_matches_enumeration(n, sigma, periodic):
    """sigmoid(2·(2·Σ_j J_ij s_j + b_i)) = p(s_i=+1, rest) / (p(+1, rest) + p(−1, rest))."""
    e = IsingEnergy(n, sigma=sigma, bias=0.2, periodic=periodic)
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 2 ** e.D, (32,), generator=g)
    x = e.all_states()[idx]  # (32, D)
    lp = e.exact_log_probs()
    weights = 2 ** (e.D - 1 - torch.arange(e.D))  # state id of a row = Σ_d x_d·2^(D−1−d)
    cond = torch.sigmoid(e.conditional_logits(x, dtype=torch.float64))  # (32, D)
    for d in range(e.D):
        up, down = x.clone(), x.clone()
        up[:, d], down[:, d] = 1, 0
        lp_up, lp_down = lp[(up * weights).sum(1)], lp[(down * weights).sum(1)]
        ratio = torch.exp(lp_up - torch.logaddexp(lp_up, lp_down))  # (32,)
        assert torch.allclose(cond[:, d], ratio, atol=1e-12), f"site {d}"


def test_gibbs_uses_checkerboard_only_when_valid():
    assert IsingEnergy(4).checkerboard and IsingEnergy(3, periodic=False).checkerboard
    assert not IsingEnergy(3).checkerboard  # odd torus is not bipartite


@pytest.mark.parametrize("n, sigma", [(3, 0.5), (4, 0.3)])
def test_gibbs_leaves_exact_distribution_invariant(n, sigma):
    """Strong coupling: start from exact samples and check p* is stationary.

    At these couplings the lattice is ordered; the spin-down mode is metastable and single-site
    Gibbs from a random start needs far more than a few hundred sweeps to leave it (measured:
    about half the chains still stuck after 1000 sweeps). Invariance is the property that makes
    the kernel correct, and here it detects a wrong coupling factor at > 100 SE. Convergence from
    random starts is tested at weaker coupling below. (3×3 = sequential scan, 4×4 = checkerboard.)
    """
    e = IsingEnergy(n, sigma=sigma, bias=0.2)
    g = torch.Generator().manual_seed(4)
    chains = 4000
    init = e.all_states()[torch.multinomial(e.exact_log_probs().exp(), chains, True, generator=g)]
    x = e.gibbs_sample(chains, 20, generator=g, init=init)
    _assert_matches_exact(e, x)


@pytest.mark.parametrize(
    "n, sigma, periodic", [(3, 0.15, True), (4, 0.2, True), (3, 0.2, False), (4, 0.1, True)]
)
def test_gibbs_converges_from_random_start(n, sigma, periodic):
    e = IsingEnergy(n, sigma=sigma, bias=0.2, periodic=periodic)
    g = torch.Generator().manual_seed(5)
    x = e.gibbs_sample(4000, 200, generator=g)
    assert x.shape == (4000, n * n) and x.dtype == torch.long
    assert set(x.unique().tolist()) <= {0, 1}
    _assert_matches_exact(e, x)


def test_gibbs_reproducible_and_validates():
    e = IsingEnergy(4)
    a = e.gibbs_sample(8, 5, generator=torch.Generator().manual_seed(0))
    b = e.gibbs_sample(8, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    init = torch.zeros(8, 16, dtype=torch.long)
    assert torch.equal(e.gibbs_sample(8, 0, init=init), init)  # zero sweeps returns the start
    with pytest.raises(ValueError, match="num_chains"):
        e.gibbs_sample(0, 5)
    with pytest.raises(ValueError, match="rows"):
        e.gibbs_sample(4, 5, init=init)
    with pytest.raises(ValueError, match="mask"):
        e.gibbs_sample(8, 5, init=torch.full((8, 16), 2))


# --------------------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.zeros(2, 8, dtype=torch.long), "D=9"),  # wrong D
        (torch.full((2, 9), 2), "mask tokens"),
        (torch.full((2, 9), 3), "outside"),
        (torch.full((2, 9), -1), "outside"),
        (torch.zeros(9, dtype=torch.long), "1-D"),
        (torch.zeros(2, 9), "integer"),
    ],
)
def test_bad_input_raises(small, x, match):
    with pytest.raises(ValueError, match=match):
        small(x)


def test_exact_log_marginal_rejects_out_of_range(small):
    with pytest.raises(ValueError, match="outside"):
        small.exact_log_marginal(torch.full((1, 9), 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    e = IsingEnergy(4, sigma=0.3)
    g = torch.Generator().manual_seed(6)
    x = torch.randint(0, 2, (32, 16), generator=g)
    out = e(x.cuda())
    assert out.device.type == "cuda"
    assert torch.allclose(out.cpu(), e(x))
    samples = e.gibbs_sample(64, 10, generator=torch.Generator("cuda").manual_seed(0))
    assert samples.device.type == "cuda" and samples.shape == (64, 16)
    assert torch.allclose(e.exact_log_marginal(x.cuda()).cpu(), e.exact_log_marginal(x))
