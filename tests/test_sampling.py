"""Any-order sampling and censor-and-resample."""

from __future__ import annotations

import pytest
import torch

from conftest import all_states, perturbed
from mam_core import MaM, NetworkConfig
from mam_core.core.sampling import sample


@pytest.fixture
def model():
    return perturbed(MaM(NetworkConfig(D=4, K=2, arch="mlp", hidden=32, n_layers=2)), scale=0.5)


def _empirical(samples: torch.Tensor, K: int) -> torch.Tensor:
    D = samples.shape[1]
    idx = (samples * (K ** torch.arange(D - 1, -1, -1))).sum(1)
    return torch.bincount(idx, minlength=K**D).double() / samples.shape[0]


@pytest.mark.parametrize("order", ["l2r", "r2l", "random-fixed"])
def test_samples_follow_the_arm_distribution_of_their_order(model, order):
    """Sampling in order σ draws from the ARM p_φ(x | σ), checked against enumeration."""
    spec = torch.tensor([2, 0, 3, 1]) if order == "random-fixed" else order
    x = model.sample(20000, order=spec, seed=1)
    exact = model.log_likelihood_arm(all_states(4, 2), order=spec).exp()
    tv = 0.5 * (exact - _empirical(x, 2)).abs().sum()
    assert tv < 0.03


def test_every_order_option_gives_valid_samples(model):
    for order in ["random", "l2r", "r2l", torch.tensor([3, 2, 1, 0]),
                  torch.stack([torch.randperm(4) for _ in range(5)])]:
        x = model.sample(5, order=order, seed=0)
        assert x.shape == (5, 4) and x.min() >= 0 and x.max() <= 1


def test_bad_orders_are_rejected(model):
    with pytest.raises(ValueError, match="unknown order"):
        model.sample(3, order="zigzag")
    with pytest.raises(ValueError, match="permutation"):
        model.sample(3, order=torch.tensor([0, 0, 1, 2]))
    with pytest.raises(ValueError, match="shape"):
        model.sample(3, order=torch.tensor([0, 1, 2]))


def test_template_positions_never_change():
    m = perturbed(MaM(NetworkConfig(D=8, K=5, arch="transformer", d_model=32, n_layers=2,
                                    n_heads=4)))
    template = torch.tensor([4, 5, 5, 0, 5, 2, 5, 5])  # 5 = mask
    fixed = template != 5
    for order in ["random", "l2r", "r2l", torch.arange(7, -1, -1)]:
        x = m.sample(200, order=order, template=template, seed=3)
        assert (x[:, fixed] == template[fixed]).all()
        assert (x != 5).all()


def test_template_conditional_distribution_is_right(model):
    """With x_0 fixed, left-to-right sampling draws from p_φ(x_1.. | x_0) of the l2r ARM."""
    template = torch.tensor([1, 2, 2, 2])
    x = model.sample(20000, order="l2r", template=template, seed=2)
    xs = all_states(4, 2)
    joint = model.log_likelihood_arm(xs, order="l2r")
    cond = torch.where(xs[:, 0] == 1, joint, torch.tensor(-torch.inf, dtype=joint.dtype))
    cond = (cond - torch.logsumexp(cond, 0)).exp()
    assert 0.5 * (cond - _empirical(x, 2)).abs().sum() < 0.03


def test_sampling_is_reproducible_with_a_seed(model):
    assert torch.equal(model.sample(50, seed=7), model.sample(50, seed=7))


def test_trajectory_fills_one_position_per_step(model):
    x, traj = model.sample(3, order="l2r", seed=0, return_trajectory=True)
    assert len(traj) == 5
    assert [int((t == 2).sum(1)[0]) for t in traj] == [4, 3, 2, 1, 0]
    assert torch.equal(traj[-1], x)


def test_censor_and_resample_changes_at_most_k_free_positions():
    m = perturbed(MaM(NetworkConfig(D=10, K=3, arch="mlp", hidden=32, n_layers=2)), scale=0.5)
    x = m.sample(500, seed=0)
    frozen = torch.zeros(10, dtype=torch.bool)
    frozen[[0, 4, 9]] = True
    y = m.censor_and_resample(x, 4, frozen=frozen, seed=1)
    assert (y[:, frozen] == x[:, frozen]).all()
    assert ((y != x).sum(1) <= 4).all()
    assert (y != x).any()
    assert y.max() < 3


def test_censor_and_resample_keeps_an_ar_distribution_stationary():
    """For a fixed order, resampling the last k positions of that order from p_φ leaves the
    ARM p_φ(·|σ) invariant (an exact block-Gibbs step): checked by enumeration."""
    m = perturbed(MaM(NetworkConfig(D=4, K=2, arch="mlp", hidden=32, n_layers=2)), scale=0.5)
    x = m.sample(20000, order="l2r", seed=0)
    y = m.censor_and_resample(x, 2, order="l2r", seed=1)
    exact = m.log_likelihood_arm(all_states(4, 2), order="l2r").exp()
    assert 0.5 * (exact - _empirical(y, 2)).abs().sum() < 0.03


def test_sample_rejects_bad_arguments(model):
    with pytest.raises(ValueError):
        model.sample(0)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=-1.0)
    with pytest.raises(ValueError, match="length D=4"):
        model.sample(2, template=torch.tensor([0, 1, 2]))


# ----------------------------------------------------------------------------- top-p, confidence
def test_top_p_keeps_only_the_nucleus():
    from mam_core.core.sampling import _draw

    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1]])).expand(4000, 3)
    g = torch.Generator().manual_seed(0)
    assert set(_draw(logits, 1.0, g, top_p=0.5).tolist()) == {0}
    kept = _draw(logits, 1.0, g, top_p=0.85)
    assert set(kept.tolist()) == {0, 1}
    assert abs(float((kept == 0).float().mean()) - 2 / 3) < 0.03  # renormalised 0.6 : 0.3
    with pytest.raises(ValueError, match="top_p"):
        sample(MaM(NetworkConfig(D=3, K=2, arch="mlp", hidden=8, n_layers=1)), 2, top_p=0.0)


def test_confidence_order_fills_the_most_certain_position_first():
    model = perturbed(MaM(NetworkConfig(D=6, K=3, arch="mlp", hidden=32, n_layers=2)), scale=1.0)
    x, traj = model.sample(5, order="confidence", seed=0, return_trajectory=True)
    assert len(traj) == 7 and (x != model.mask_id).all()
    probs = torch.softmax(model.conditional_logits(model.empty(5)), dim=-1).amax(-1)  # (5, D)
    first = (traj[1] != model.mask_id).float().argmax(dim=1)
    assert torch.equal(first, probs.argmax(dim=1))


def test_confidence_keeps_a_template_and_fills_several_per_pass():
    model = perturbed(MaM(NetworkConfig(D=6, K=3, arch="mlp", hidden=32, n_layers=2)), scale=1.0)
    template = torch.tensor([2, model.mask_id, model.mask_id, 0, model.mask_id, model.mask_id])
    x, traj = model.sample(4, order="confidence", template=template, seed=1, per_pass=2,
                           return_trajectory=True)
    assert (x[:, [0, 3]] == torch.tensor([2, 0])).all() and (x != model.mask_id).all()
    assert len(traj) == 1 + 2  # four masked positions, two per pass
    with pytest.raises(ValueError, match="confidence"):
        model.sample(2, order="random", per_pass=2)


def _forbid_one_at_position_two(x, pos, mask_id):
    allowed = torch.ones(x.shape[0], 2, dtype=torch.bool)
    allowed[pos == 2, 1] = False
    return allowed


@pytest.mark.parametrize("order", ["l2r", "random", "confidence"])
def test_a_constraint_removes_tokens_and_renormalises(model, order):
    """Token 1 forbidden at position 2: it never appears there; elsewhere both tokens do."""
    x = model.sample(400, order=order, seed=0, constraint=_forbid_one_at_position_two)
    assert (x[:, 2] == 0).all()
    assert all(0 < x[:, i].float().mean() < 1 for i in (0, 1, 3))


def test_a_constraint_that_allows_nothing_leaves_the_model_as_it_is(model):
    def nothing(x, pos, mask_id):
        return torch.zeros(x.shape[0], 2, dtype=torch.bool)

    constrained = model.sample(50, order="l2r", seed=3, constraint=nothing)
    assert torch.equal(constrained, model.sample(50, order="l2r", seed=3))


def test_bf16_sampling_follows_the_float32_arm_distribution():
    """In bfloat16 the network moves the conditionals too little to show in the samples."""
    model = perturbed(MaM(NetworkConfig(D=4, K=2, arch="transformer", d_model=32, n_layers=2,
                                        n_heads=2)), scale=0.3)
    x = model.sample(20000, order="l2r", seed=1, bf16=True)
    exact = model.log_likelihood_arm(all_states(4, 2), order="l2r").exp()
    assert 0.5 * (exact - _empirical(x, 2)).abs().sum() < 0.03


def test_bf16_weights_cast_once_per_draw_give_the_same_draws_as_a_cast_per_pass(monkeypatch):
    """The sampling loops keep one autocast context open over every pass, so each weight is cast
    to bfloat16 once per draw; the draws must be exactly those of a context per pass."""
    import contextlib

    import mam_core.core.sampling as sampling

    model = perturbed(MaM(NetworkConfig(D=6, K=3, arch="transformer", d_model=32, n_layers=2,
                                        n_heads=2)), scale=0.5)
    for order in ("l2r", "confidence"):
        once = model.sample(300, order=order, seed=4, bf16=True, temperature=1.5)
        with monkeypatch.context() as m:
            m.setattr(sampling, "_weights_cast_once", lambda x, bf16: contextlib.nullcontext())
            per_pass = model.sample(300, order=order, seed=4, bf16=True, temperature=1.5)
        assert torch.equal(once, per_pass), order
    # and bfloat16 is really in use: float32 draws differ somewhere at this temperature
    assert not torch.equal(once, model.sample(300, order="confidence", seed=4, temperature=1.5))


def test_a_position_with_one_allowed_token_costs_no_network_pass(model, monkeypatch):
    rows_seen = []
    conditional = model.net.conditional
    monkeypatch.setattr(model.net, "conditional",
                        lambda x: rows_seen.append(x.shape[0]) or conditional(x))
    x = model.sample(10, order="l2r", seed=0, constraint=_forbid_one_at_position_two)
    assert rows_seen == [10, 10, 10]  # positions 0, 1 and 3; position 2 is forced
    assert (x[:, 2] == 0).all()


def _masked_nucleus(probs: list[float], allowed: list[bool], top_p: float) -> dict[int, float]:
    """What :func:`_draw` draws from after masking: token -> probability (the reference)."""
    from mam_core.core.sampling import nucleus

    logits = torch.log(torch.tensor(probs, dtype=torch.float64)).masked_fill(
        ~torch.tensor(allowed), float("-inf"))
    kept = nucleus(torch.softmax(logits, -1).unsqueeze(0), top_p)[0]
    total = float(kept.sum())
    return {i: float(q) / total for i, q in enumerate(kept) if q > 0}


def test_nucleus_asked_token_by_token_is_the_nucleus_of_the_masked_distribution():
    """Asking the constraint about the likeliest tokens only gives exactly the nucleus that
    masking all K tokens first gives, over peaked and flat conditionals, and asks about far
    fewer tokens when the conditional is peaked."""
    from mam_core.core.sampling import nucleus_of_allowed

    gen = torch.Generator().manual_seed(0)
    asked_peaked = []
    for trial in range(400):
        scale = (0.3, 2.0, 6.0)[trial % 3]
        probs = torch.softmax(scale * torch.randn(12, generator=gen, dtype=torch.float64), 0)
        allowed = (torch.rand(12, generator=gen) < 0.6).tolist()
        allowed[trial % 12] = True
        top_p = (0.3, 0.7, 0.9, 0.99)[trial % 4]
        asked = []
        kept = nucleus_of_allowed(probs.tolist(), lambda i: asked.append(i) or allowed[i], top_p)
        total = sum(q for _, q in kept)
        got = {t: q / total for t, q in kept}
        want = _masked_nucleus(probs.tolist(), allowed, top_p)
        assert got.keys() == want.keys()
        assert all(abs(got[t] - want[t]) < 1e-9 for t in got)
        if scale == 6.0:
            asked_peaked.append(len(asked))
    assert sum(asked_peaked) / len(asked_peaked) < 4  # of 12
    assert nucleus_of_allowed([0.5, 0.5], lambda i: False, 0.9) == []


def test_sampling_with_a_token_by_token_constraint_matches_the_masked_distribution():
    """``fill_in_order`` asks a constraint with ``checks`` token by token; the distribution of
    whole sequences is the one the mask gives (exact enumeration, D=3, K=3)."""
    model = perturbed(MaM(NetworkConfig(D=3, K=3, arch="mlp", hidden=16, n_layers=1)), scale=1.0)

    def rule(x, p, i):
        return i != int(x[p - 1]) if p > 0 else i != 2  # no repeats, no 2 first

    class Mask:
        def __call__(self, x, pos, mask_id):
            return torch.tensor([[rule(x[b], int(pos[b]), i) for i in range(3)]
                                 for b in range(x.shape[0])])

    class ByToken(Mask):
        def checks(self, x, pos, mask_id):
            return [(lambda i, b=b: rule(x[b], int(pos[b]), i)) for b in range(x.shape[0])]

    n = 6000
    counts = {}
    for constraint in (Mask(), ByToken()):
        x = model.sample(n, order="l2r", seed=1, constraint=constraint, top_p=0.8)
        rows, c = torch.unique(x, dim=0, return_counts=True)
        counts[type(constraint).__name__] = {tuple(r.tolist()): int(k) / n for r, k in zip(rows, c)}
    mask, by_token = counts["Mask"], counts["ByToken"]
    assert mask.keys() == by_token.keys()
    assert all(abs(mask[k] - by_token[k]) < 0.03 for k in mask)
    assert all(rule(torch.tensor(k), p, k[p]) for k in by_token for p in range(3))
