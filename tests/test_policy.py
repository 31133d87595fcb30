"""Fine-tuning the sampler itself: traced draws, the one-pass policy gradient and its trainer,
checked against exact enumeration on a tiny model with a constraint."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import all_states, perturbed
from mam_core import MaM, NetworkConfig
from mam_core.core.config import TrainConfig
from mam_core.core.objectives import policy_gradient_loss
from mam_core.core.sampling import sample_traced
from mam_core.training import train_policy

D, K = 4, 3


def no_repeats(x: torch.Tensor, pos: torch.Tensor, mask_id: int) -> torch.Tensor:
    """A toy syntax: a token may not repeat its left neighbour's; position 3 is forced to 0
    after a 2 (a one-choice position, like the pads after a molecule's end)."""
    n = x.shape[0]
    allowed = torch.ones(n, K, dtype=torch.bool)
    rows = torch.arange(n)
    left = torch.where(pos > 0, x[rows, (pos - 1).clamp(min=0)], torch.full_like(pos, mask_id))
    has_left = (pos > 0) & (left != mask_id)
    allowed[rows[has_left], left[has_left]] = False
    forced = (pos == 3) & (left == 2)
    allowed[forced] = torch.tensor([True, False, False])
    return allowed


def exact_log_q(model, xs: torch.Tensor) -> torch.Tensor:
    """Differentiable left-to-right log-probability under ``no_repeats``, one prefix at a time."""
    total = torch.zeros(xs.shape[0])
    for d in range(D):
        prefix = xs.clone()
        prefix[:, d:] = model.mask_id
        allowed = no_repeats(prefix, torch.full((xs.shape[0],), d), model.mask_id)
        logits = model.conditional_logits(prefix)[:, d].masked_fill(~allowed, float("-inf"))
        total = total + F.log_softmax(logits, -1).gather(1, xs[:, d:d + 1]).squeeze(1)
    return total


@pytest.fixture
def model():
    torch.manual_seed(0)
    return perturbed(MaM(NetworkConfig(D=D, K=K, arch="mlp", hidden=32, n_layers=2)), scale=0.5)


def test_traced_draws_follow_the_constrained_sampler_and_know_their_log_probability(model):
    reference = perturbed(copy.deepcopy(model), scale=0.3)
    x, trace = sample_traced(model, 4000, "l2r", constraint=no_repeats, reference=reference,
                             generator=torch.Generator().manual_seed(0))
    assert not (x[:, 1:] == x[:, :-1]).any()  # the constraint held everywhere
    with torch.no_grad():
        assert torch.allclose(trace.log_q, exact_log_q(model, x), atol=1e-4)
        assert torch.allclose(trace.log_ref, exact_log_q(reference, x), atol=1e-4)
    # the draws follow q: empirical frequencies of every allowed string against exp(log q)
    xs = all_states(D, K)
    ok = (xs[:, 1:] != xs[:, :-1]).all(1) & ((xs[:, 2] != 2) | (xs[:, 3] == 0))
    with torch.no_grad():
        q = exact_log_q(model, xs[ok]).exp()
    assert float(q.sum()) == pytest.approx(1.0, abs=1e-5)
    codes = (x * K ** torch.arange(D - 1, -1, -1)).sum(1)
    emp = torch.bincount(codes, minlength=K**D).double()[ok] / x.shape[0]
    assert 0.5 * float((emp - q.double()).abs().sum()) < 0.04
    # chosen = not forced: position 0 always, position 3 only where position 2 is not a 2
    assert trace.chosen[:, :3].all()
    assert torch.equal(trace.chosen[:, 3], x[:, 2] != 2)


def test_bf16_traced_draws_score_a_copy_of_the_sampler_exactly_as_the_sampler(model):
    """Under bfloat16 the reference is scored at the sampler's precision: a reference that is a
    copy of the sampler gives log q − log q_ref = 0 exactly (scoring it in float32 left the
    rounding difference of every drawn token in the fine-tuning reward), and log q is still the
    float32 log-probability up to bfloat16 rounding."""
    reference = copy.deepcopy(model)
    x, trace = sample_traced(model, 500, "l2r", constraint=no_repeats, reference=reference,
                             generator=torch.Generator().manual_seed(0), bf16=True)
    assert not (x[:, 1:] == x[:, :-1]).any()
    assert torch.equal(trace.log_q, trace.log_ref)
    with torch.no_grad():
        exact = exact_log_q(model, x)
    assert not torch.equal(trace.log_q, exact)  # the network did run in bfloat16
    assert torch.allclose(trace.log_q, exact, atol=0.05)


def test_a_policy_step_in_bf16_draws_its_batch_in_bf16(model, monkeypatch):
    from mam_core.training import trainers

    seen = []

    def spy(*args, **kw):
        seen.append(kw.get("bf16", False))
        return sample_traced(*args, **kw)

    monkeypatch.setattr(trainers, "sample_traced", spy)
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(steps=1, batch_size=8, precision=precision, log_every=1)
        train_policy(model, lambda x: torch.zeros(x.shape[0]), cfg, constraint=no_repeats,
                     reference=copy.deepcopy(model), beta=1.0, progress=False)
    assert seen == [False, True]


def test_a_template_position_is_context_never_a_choice(model):
    template = torch.tensor([model.mask_id, 1, model.mask_id, model.mask_id])
    x, trace = sample_traced(model, 50, "l2r", template=template, constraint=no_repeats,
                             generator=torch.Generator().manual_seed(1))
    assert (x[:, 1] == 1).all() and not trace.chosen[:, 1].any()
    assert (trace.step[:, 1] == -1).all()
    ctx = trace.context(x, torch.arange(50), torch.zeros(50, dtype=torch.long), model.mask_id)
    assert (ctx[:, 1] == 1).all() and (ctx[:, [0, 2, 3]] == model.mask_id).all()


def test_policy_gradient_with_every_position_is_the_exact_reinforce_gradient(model):
    """With as many positions per row as there are choices, the one-pass estimate is exactly
    ∇ mean(adv · log q(x)) with log q summed over all D conditionals."""
    reference = perturbed(copy.deepcopy(model), scale=0.3)
    x, trace = sample_traced(model, 64, "l2r", constraint=no_repeats, reference=reference,
                             generator=torch.Generator().manual_seed(2))
    log_f = -(x == 2).sum(1).float()
    out = policy_gradient_loss(model, x, trace, log_f, beta=0.5, positions_per_row=D)
    grads = torch.autograd.grad(out.loss, list(model.net.parameters()), allow_unused=True)
    r = trace.log_q - 0.5 * trace.log_ref - log_f
    adv = (r - r.mean()) / (r.std() + 1e-8)
    expected = (adv * exact_log_q(model, x)).mean()
    want = torch.autograd.grad(expected, list(model.net.parameters()), allow_unused=True)
    for g, w in zip(grads, want):
        if w is None:
            assert g is None or float(g.abs().max()) == 0.0
        else:
            assert torch.allclose(g, w, atol=1e-5)
    assert out.metrics["kl_minus_logz"] == pytest.approx(float(r.mean()), abs=1e-5)


def test_policy_gradient_refuses_a_prior_weight_without_reference(model):
    x, trace = sample_traced(model, 4, "l2r", generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="reference"):
        policy_gradient_loss(model, x, trace, torch.zeros(4), beta=1.0)
    with pytest.raises(ValueError, match="non-finite"):
        policy_gradient_loss(model, x, trace, torch.tensor([0.0, float("nan"), 0.0, 0.0]))
    with pytest.raises(ValueError, match="reference"):
        train_policy(model, lambda x: torch.zeros(x.shape[0]), TrainConfig(steps=1), beta=1.0)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_policy_approaches_the_tilted_target(model, precision):
    """KL(q ‖ p*) with p* ∝ q_ref^β · f, by enumeration, falls to a twentieth, in float32 and
    under bfloat16 (the app's fine-tuning where it is faster); every draw respects the
    constraint."""
    reference = copy.deepcopy(model)
    xs = all_states(D, K)
    xs = xs[(xs[:, 1:] != xs[:, :-1]).all(1) & ((xs[:, 2] != 2) | (xs[:, 3] == 0))]
    reward = (xs == 2).sum(1).float() * 1.5  # log f: many 2s

    def log_f(x):
        return (x == 2).sum(1).float() * 1.5

    def kl() -> float:
        with torch.no_grad():
            lq = exact_log_q(model, xs)
            target = 0.5 * exact_log_q(reference, xs) + reward
            target = target - torch.logsumexp(target, 0)
            return float((lq.exp() * (lq - target)).sum())

    before = kl()
    seen = []
    cfg = TrainConfig(steps=150, batch_size=64, lr=3e-3, log_every=50, seed=0, sc_weight=1.0,
                      precision=precision)
    res = train_policy(model, log_f, cfg, order="l2r", constraint=no_repeats, reference=reference,
                       beta=0.5, progress=False,
                       on_log=lambda rec: seen.append(rec["kl_minus_logz"]))
    after = kl()
    assert res.step == 150 and len(seen) == 3
    # measured: 1.01 -> 0.00003 in float32, 1.01 -> 0.0005 in bfloat16
    assert after < 0.05 * before, (before, after)
    x = model.sample(500, order="l2r", constraint=no_repeats, seed=0)
    assert not (x[:, 1:] == x[:, :-1]).any()
