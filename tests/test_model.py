"""The MaM model against exact enumeration on tiny problems (D <= 6)."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import all_states, perturbed
from mam_core import MaM, NetworkConfig
from mam_core.core.orders import restrict_order


def test_arm_is_normalised_for_a_fixed_order(tiny_model):
    xs = all_states(6, 3)
    for order in ["l2r", "r2l", torch.tensor([3, 0, 5, 1, 4, 2])]:
        total = tiny_model.log_likelihood_arm(xs, order=order).exp().sum()
        assert abs(float(total) - 1.0) < 1e-4


def test_arm_mixture_over_orders_is_normalised(tiny_model):
    xs = all_states(6, 3)
    # same seed -> the same M orders for every row, so the mixture is a distribution
    g = torch.Generator().manual_seed(3)
    orders = torch.rand(4, 6, generator=g).argsort(1)
    logps = torch.stack([tiny_model.log_likelihood_arm(xs, order=o) for o in orders])
    mix = torch.logsumexp(logps, 0) - math.log(4)
    assert abs(float(mix.exp().sum()) - 1.0) < 1e-4


def test_per_order_likelihoods_reduce_to_the_mixture_and_to_the_order_average(tiny_model):
    from mam_core.core.likelihood import log_likelihood_arm_per_order, log_mean_exp
    from mam_core.core.orders import make_orders

    x = all_states(6, 3)[::37]  # 20 sequences
    per = log_likelihood_arm_per_order(tiny_model, x, num_orders=5, seed=4)  # (5, 20)
    g = torch.Generator().manual_seed(4)
    for m in range(5):  # draw m: one random order per sequence
        orders = make_orders("random", len(x), 6, "cpu", g)
        for b in range(len(x)):
            one = tiny_model.log_likelihood_arm(x[b:b + 1], order=orders[b])
            assert torch.allclose(per[m, b], one)
    mix = tiny_model.log_likelihood_arm(x, num_orders=5, seed=4)
    assert torch.allclose(log_mean_exp(per), mix)
    # Jensen: the mixture is at least the average; an untrained network's orders disagree
    gap = mix - per.mean(0)
    assert (gap >= -1e-9).all() and float(gap.mean()) > 1e-3


def test_ao_arm_bound_is_the_order_average_of_the_exact_nll(tiny_model):
    import itertools

    from mam_core.core.likelihood import ao_arm_bound

    x = all_states(6, 3)[::97]  # 8 sequences
    orders = torch.tensor(list(itertools.permutations(range(6))))  # all 720
    exact = -torch.stack([tiny_model.log_likelihood_arm(x, order=o) for o in orders]).mean()
    tiny_model.train()
    bound = ao_arm_bound(tiny_model, x.repeat(250, 1), batch_size=500, passes=2, seed=1)
    assert tiny_model.training  # the caller's mode comes back
    assert abs(bound - float(exact)) < 0.02 * float(exact)
    assert bound == ao_arm_bound(tiny_model, x.repeat(250, 1), batch_size=500, passes=2, seed=1)
    assert bound != ao_arm_bound(tiny_model, x.repeat(250, 1), batch_size=500, passes=2, seed=2)


def test_arm_partial_input_equals_sum_over_completions(tiny_model):
    """The slow marginal of x_S is the enumerated sum of the joint whose order visits S first."""
    xs = all_states(6, 3)
    order = torch.tensor([2, 5, 0, 3, 1, 4])
    x = torch.tensor([[1, 3, 0, 3, 3, 2], [3, 3, 3, 3, 3, 1], [3, 3, 3, 3, 3, 3]])
    slow = tiny_model.log_likelihood_arm(x, order=order)
    for row, value in zip(x, slow):
        observed = row != 3
        seq, _ = restrict_order(order[None], observed[None])
        joint = tiny_model.log_likelihood_arm(xs, order=seq[0])
        match = (xs[:, observed] == row[observed]).all(1)
        assert torch.allclose(value, torch.logsumexp(joint[match], 0), atol=1e-6)


def test_log_marginal_of_empty_set_is_zero_and_untrained_model_is_uniform():
    m = MaM(NetworkConfig(D=5, K=4, arch="mlp", hidden=16, n_layers=1))
    assert torch.allclose(m.log_marginal(m.empty(3)), torch.zeros(3))
    x = torch.tensor([[0, 1, 4, 4, 2]])
    assert torch.allclose(m.log_marginal(x), torch.tensor([-3 * math.log(4)]), atol=1e-5)
    xs = all_states(5, 4)
    assert abs(float(torch.logsumexp(m.log_marginal(xs).detach().double(), 0))) < 1e-4


def test_log_marginal_is_one_pass(tiny_model, monkeypatch):
    calls = []
    trunk = tiny_model.net.marginal_trunk
    orig = trunk.forward
    monkeypatch.setattr(trunk, "forward", lambda x: calls.append(x.shape[0]) or orig(x))
    x = all_states(6, 3)[:50]
    tiny_model.log_marginal(x)
    assert calls == [51]  # the batch plus one all-masked row, in a single pass


def test_conditional_logits_shape(tiny_model):
    x = torch.full((4, 6), 3)
    assert tiny_model.conditional_logits(x).shape == (4, 6, 3)
    lp = tiny_model.conditional_log_probs(x)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(4, 6), atol=1e-5)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 5, dtype=torch.long), "length D=6"),
        (torch.full((2, 6), 4), "token ids must be in"),
        (torch.full((2, 6), -1), "token ids must be in"),
        (torch.zeros(2, 6), "integers"),
        (torch.zeros(2, 3, 6, dtype=torch.long), "shape"),
    ],
)
def test_bad_input_is_rejected(tiny_model, bad, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.log_marginal(bad)
    with pytest.raises(ValueError, match=message):
        tiny_model.log_likelihood_arm(bad)


def test_config_validation():
    with pytest.raises(ValueError, match="unknown architecture"):
        NetworkConfig(D=4, K=2, arch="rnn")
    with pytest.raises(ValueError, match="divisible"):
        NetworkConfig(D=4, K=2, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="K must be"):
        NetworkConfig(D=4, K=1)
    with pytest.raises(ValueError, match="unknown NetworkConfig keys"):
        NetworkConfig.from_dict({"D": 4, "K": 2, "width": 3})


def test_perturbed_marginal_still_normalised_at_empty_set():
    m = perturbed(MaM(NetworkConfig(D=4, K=2, arch="transformer", d_model=16, n_layers=1,
                                    n_heads=2)))
    assert float(m.log_marginal(m.empty(1)).detach().abs()) < 1e-6


@pytest.mark.parametrize("pool", ["cls", "cls+sum"])
def test_both_marginal_heads_start_uniform(pool):
    m = MaM(NetworkConfig(D=5, K=3, d_model=16, n_layers=1, n_heads=2, marginal_pool=pool))
    x = torch.tensor([[0, 1, 3, 3, 2], [3, 3, 3, 3, 3]])
    expected = -torch.tensor([3.0, 0.0]) * math.log(3)
    assert torch.allclose(m.log_marginal(x), expected, atol=1e-6)


def test_old_configs_without_marginal_pool_read_as_cls():
    d = NetworkConfig(D=4, K=2).to_dict()
    d.pop("marginal_pool")
    assert NetworkConfig.from_dict(d).marginal_pool == "cls"
    with pytest.raises(ValueError, match="marginal_pool"):
        NetworkConfig(D=4, K=2, marginal_pool="mean")


def test_with_marginal_pool_keeps_the_conditionals_and_warm_start_copies_the_trunk():
    torch.manual_seed(0)
    m = perturbed(MaM(NetworkConfig(D=5, K=3, d_model=16, n_layers=1, n_heads=2,
                                    marginal_pool="cls")))
    new = m.with_marginal_pool("cls+sum")
    assert new.config.marginal_pool == "cls+sum" and new.net.position_head is not None
    x = torch.tensor([[0, 1, 3, 3, 2]])
    assert torch.allclose(new.conditional_logits(x), m.conditional_logits(x))
    assert m.with_marginal_pool("cls") is m
    assert new.warm_start_marginal()
    for a, b in zip(new.net.marginal_trunk.parameters(), new.net.conditional_trunk.parameters()):
        assert torch.equal(a, b) and a is not b
    shared = MaM(NetworkConfig(D=5, K=3, d_model=16, n_layers=1, n_heads=2, shared_trunk=True))
    assert not shared.warm_start_marginal()


def test_copy_marginal_from_takes_theta_keeps_phi_and_refuses_another_shape():
    cfg = NetworkConfig(D=4, K=3, arch="mlp", hidden=16, n_layers=1)
    a, b = MaM(cfg), MaM(cfg)
    phi = [p.clone() for p in a.conditional_parameters()]
    a.copy_marginal_from(b)
    assert all(torch.equal(p, q) for p, q in zip(a.marginal_parameters(), b.marginal_parameters()))
    assert all(torch.equal(p, q) for p, q in zip(a.conditional_parameters(), phi))
    x = torch.tensor([[0, 1, 2, 0]])
    assert torch.allclose(a.log_marginal(x), b.log_marginal(x))
    with pytest.raises(ValueError, match="another shape"):
        a.copy_marginal_from(MaM(NetworkConfig(D=4, K=3, arch="mlp", hidden=8, n_layers=1)))


def test_bf16_trunk_marginal_stays_close_to_float32():
    """The screening path: trunk in bfloat16, heads (and their sum over positions) in float32."""
    model = perturbed(MaM(NetworkConfig(D=24, K=8, arch="transformer", d_model=64, n_layers=2,
                                        n_heads=4, marginal_pool="cls+sum")), scale=0.05).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 9, (64, 24), generator=g)  # values 0..K, K = mask
    with torch.no_grad():
        exact = model.log_marginal(x)
        fast = model.log_marginal(x, bf16=True)
    assert fast.dtype == torch.float32
    assert (fast - exact).abs().max() < 0.02 * exact.abs().mean()
    assert not torch.equal(fast, exact)  # it did run in bfloat16


@pytest.mark.parametrize("arch,shared", [("transformer", False), ("transformer", True),
                                         ("mlp", False)])
def test_conditional_at_one_position_is_the_full_conditional_there(arch, shared):
    """The sampler's one-position conditional (the transformer's last layer computed for the
    queried slot only) is the full conditional at that position, row by row."""
    from mam_core.core.networks import build_network

    torch.manual_seed(0)
    cfg = NetworkConfig(D=9, K=5, arch=arch, shared_trunk=shared, d_model=16, n_layers=3,
                        n_heads=2, hidden=32, dropout=0.1)
    net = build_network(cfg).eval()
    for p in net.parameters():  # the marginal head starts at zero; move everything
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randint(0, cfg.K + 1, (32, cfg.D))
    pos = torch.randint(0, cfg.D, (32,))
    with torch.no_grad():
        full = net.conditional(x)  # (32, D, K)
        at = net.conditional_at(x, pos)
    assert at.shape == (32, cfg.K)
    torch.testing.assert_close(at, full[torch.arange(32), pos], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(at, full[torch.arange(32), (pos + 1) % cfg.D], atol=1e-3)


def test_marginal_heads_stay_float32_under_bfloat16_autocast():
    """``--precision bf16`` training runs the model under autocast; log p ≈ −225 in bfloat16
    has steps of 1 nat, coarser than the differences self-consistency compares (0.93 nats off
    when the heads ran under the autocast too)."""
    torch.manual_seed(0)
    m = MaM(NetworkConfig(D=64, K=35, arch="transformer", d_model=64, n_layers=2, n_heads=4,
                          marginal_pool="cls+sum"))
    for p in m.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.randint(0, 35, (16, 64))
    with torch.no_grad():
        ref = m.log_marginal(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m.log_marginal(x)
    assert float(ref.abs().min()) > 200
    assert low.dtype == torch.float32 and float((low - ref).abs().max()) < 0.1


def test_inference_precision_follows_the_measured_speed_not_the_cpu_flags(monkeypatch):
    """Some CPUs with AVX512-BF16 multiply in bfloat16 at half float32's speed; choosing bfloat16
    from the flags alone made sampling 1.5x slower there."""
    import mam_core.core.model as model_mod

    monkeypatch.setattr(model_mod, "bf16_is_native", lambda device: True)
    for bf16_seconds, expected in ((2.0, False), (0.5, True)):
        model_mod._cpu_bf16_is_faster.cache_clear()
        timed = {torch.bfloat16: bf16_seconds, torch.float32: 1.0}
        monkeypatch.setattr(model_mod, "matmul_seconds", lambda dtype, *a, t=timed, **k: t[dtype])
        assert model_mod.bf16_is_faster("cpu") is expected
    # without bfloat16 kernels nothing is timed
    model_mod._cpu_bf16_is_faster.cache_clear()
    monkeypatch.setattr(model_mod, "bf16_is_native", lambda device: False)
    monkeypatch.setattr(model_mod, "matmul_seconds", lambda *a, **k: 1 / 0)
    assert model_mod.bf16_is_faster("cpu") is False
    model_mod._cpu_bf16_is_faster.cache_clear()


def test_matmul_timing_measures_both_precisions():
    from mam_core.core.model import matmul_seconds

    for dtype in (torch.float32, torch.bfloat16):
        assert 0 < matmul_seconds(dtype, repeats=1) < 5
