"""Both training modes against brute force on exactly enumerable problems, plus the trainer's
guards (non-finite losses, resume, stop file)."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch

from conftest import exact_log_marginal, pairwise_field
from energies import IsingEnergy
from mam_core import MaM, NetworkConfig, TrainConfig, TrainingDiverged, distill, train_arm, train_eb
from mam_core.core.objectives import LossOutput, ao_arm_loss, reinforce_kl, self_consistency_loss
from mam_core.core.enumeration import kl_divergence as _kl
from mam_core.training import run_training


def _pairwise_samples(D: int, K: int, seed: int, n: int):
    """Every state of a pairwise field, its exact log-probabilities, and ``n`` draws from it."""
    xs, logp = pairwise_field(D, K, seed=seed)
    g = torch.Generator().manual_seed(0)
    return xs, logp, xs[torch.multinomial(logp.exp(), n, replacement=True, generator=g)]


@pytest.mark.slow
def test_mle_two_stages_match_brute_force():
    D, K = 8, 3
    xs, logp, data = _pairwise_samples(D, K, 1, 20000)
    model = MaM(NetworkConfig(D=D, K=K, arch="mlp", hidden=128, n_layers=3))

    train_arm(model, data, TrainConfig(steps=2000, batch_size=256, lr=1e-3), progress=False)
    arm = model.log_likelihood_arm(xs, order="l2r")
    assert _kl(logp, arm) < 0.05  # stage 1 fits the data distribution

    res = distill(model, data, TrainConfig(steps=2000, batch_size=256, lr=1e-3), progress=False)
    assert [s["stage"] for s in model.metadata["training"]] == ["arm", "distill"]
    assert res.history and res.history[-1]["sc_abs_err"] < 0.05
    with torch.no_grad():
        mam = model.log_marginal(xs).double()
        assert abs(float(torch.logsumexp(mam, 0))) < 0.05  # full-level marginals sum to ~1
        assert _kl(logp, mam) < 0.05
        assert float(model.log_marginal(model.empty(1)).abs()) < 1e-5

        # random subsets: the one-pass marginal against the ARM's exact (slow) marginals
        gg = torch.Generator().manual_seed(5)
        partial = data[:400].clone()
        partial[torch.rand(400, D, generator=gg) < 0.5] = K
        one_pass = model.log_marginal(partial).double()
        slow = model.log_likelihood_arm(partial, num_orders=16, seed=0)
        assert float((one_pass - slow).abs().mean()) < 0.05
        true = exact_log_marginal(xs, logp, partial, K)
        assert float((one_pass - true).abs().mean()) < 0.08

        # one-step self-consistency on held-in data
        out, e, _ = self_consistency_loss(model, data[:2000], torch.Generator().manual_seed(1))
        assert float(e.abs().mean()) < 0.05


@pytest.mark.slow
def test_energy_based_ising_3x3_reaches_small_exact_kl():
    """The paper's coupling (σ = 0.1, DESIGN §3): a target spread over many states (entropy 4.9
    nats, KL 1.36 to uniform), so the chains move and both heads must learn all of it. At σ = 0.5
    97 % of the mass sits on one state, the chains never leave it, and the marginal's error on
    states no chain visits decided the KL (0.03 or 0.19 by seed and machine). Here seeds 0-2
    reach marginal KL 7e-5 to 9e-5 and AO-ARM KL 2.5e-3 to 3.0e-3 after 800 steps."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one reduction order: the same run on every machine
    try:
        _ising_3x3_checks()
    finally:
        torch.set_num_threads(threads)


def _ising_3x3_checks():
    energy = IsingEnergy(3, sigma=0.1, bias=0.2)
    logp_true = energy.exact_log_probs()
    states = energy.all_states()
    model = MaM(NetworkConfig(D=9, K=2, arch="mlp", hidden=256, n_layers=3))
    res = train_eb(model, energy, TrainConfig(steps=800, batch_size=256, lr=1e-3, log_every=100),
                   progress=False)
    with torch.no_grad():
        lm = model.log_marginal(states).double()
    log_z = float(torch.logsumexp(lm, 0))
    assert abs(log_z) < 0.05  # normalisation holds up to self-consistency error
    assert _kl(lm - log_z, logp_true) < 2e-3
    assert _kl(model.log_likelihood_arm(states, order="l2r"), logp_true) < 1e-2
    # samples from the conditional head match the exact single-site marginals
    samples = model.sample(20000, seed=0).double().mean(0)
    assert float((samples - energy.exact_site_marginals()).abs().max()) < 0.02  # 0.005 measured
    # the target is far from uniform, so this is not trivially satisfied
    assert float(energy.exact_site_marginals().min()) > 0.7
    keys = res.history[-1].keys()
    assert {"kl_minus_logz", "log_f_mean", "log_f_std", "sc_abs_err", "sec_per_step"} <= set(keys)


def test_the_logged_kl_estimate_is_kl_minus_log_z():
    """On samples of p* itself KL = 0, so the batch mean of log p − log f is exactly −log Z."""
    energy = IsingEnergy(3, sigma=0.5, bias=0.2)
    states, log_p = energy.all_states(), energy.exact_log_probs()
    log_f = energy.log_f(states, dtype=torch.float64)
    metric = reinforce_kl(log_p.clone().requires_grad_(), log_f).metrics["kl_minus_logz"]
    assert metric == pytest.approx(-energy.exact_log_partition(),
                                   abs=1e-9)  # KL − log Z with KL = 0


def _tiny_eb(steps, **kw):
    torch.manual_seed(0)
    model = MaM(NetworkConfig(D=9, K=2, arch="mlp", hidden=32, n_layers=1))
    cfg = TrainConfig(steps=steps, batch_size=32, checkpoint_every=10, log_every=5)
    return model, train_eb(model, IsingEnergy(3, sigma=0.3), cfg, progress=False, **kw)


def test_resume_continues_exactly(tmp_path):
    full, _ = _tiny_eb(30)
    # the same run, interrupted by a stop file after step 10, then resumed to 30
    stop = tmp_path / "STOP"
    calls = {"n": 0}

    def on_log(rec):
        calls["n"] += 1
        if rec["step"] >= 10:
            stop.touch()

    part, res = _tiny_eb(30, out_dir=tmp_path, stop_file=stop, on_log=on_log)
    assert res.stopped_early and res.step == 10
    stop.unlink()
    resumed, res2 = _tiny_eb(30, out_dir=tmp_path, resume=True)
    assert res2.step == 30 and not res2.stopped_early
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    steps = [h["step"] for h in resumed.metadata["training"][-1]["history"]]
    assert steps == list(range(5, 31, 5))
    assert not list(tmp_path.glob("*.tmp"))


def test_non_finite_losses_stop_with_a_clear_message_and_keep_the_checkpoint(tmp_path):
    model = MaM(NetworkConfig(D=4, K=2, arch="mlp", hidden=8, n_layers=1))
    x = torch.randint(0, 2, (64, 4))
    cfg = TrainConfig(steps=40, batch_size=8, checkpoint_every=5, max_bad_steps=3)

    def step_fn(step, gen):
        loss = model.conditional_logits(x).logsumexp(-1).mean()
        return LossOutput(loss * (float("nan") if step >= 12 else 1.0))

    with pytest.raises(TrainingDiverged, match="3 consecutive non-finite"):
        run_training(model, step_fn, cfg, "arm", out_dir=tmp_path, progress=False)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["train_state"]["step"] == 10
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values())


def test_isolated_non_finite_steps_are_skipped_and_counted():
    model = MaM(NetworkConfig(D=4, K=2, arch="mlp", hidden=8, n_layers=1))
    x = torch.randint(0, 2, (64, 4))

    def step_fn(step, gen):
        loss = model.conditional_logits(x).logsumexp(-1).mean()
        return LossOutput(loss * (float("inf") if step % 7 == 3 else 1.0))

    res = run_training(model, step_fn, TrainConfig(steps=20, batch_size=8, max_bad_steps=2), "arm",
                       progress=False)
    assert res.skipped_steps == 3 and res.step == 20
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_energy_is_a_clear_error():
    model = MaM(NetworkConfig(D=4, K=2, arch="mlp", hidden=8, n_layers=1))
    with pytest.raises(ValueError, match="non-finite"):
        train_eb(model, lambda x: torch.full((x.shape[0],), math.nan),
                 TrainConfig(steps=3, batch_size=8), progress=False)
    with pytest.raises(ValueError, match="shape"):
        train_eb(model, lambda x: torch.zeros(3), TrainConfig(steps=3, batch_size=8),
                 progress=False)


def test_unwritable_output_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    model = MaM(NetworkConfig(D=4, K=2, arch="mlp", hidden=8, n_layers=1))
    with pytest.raises(OSError, match="cannot write to output folder"):
        train_arm(model, torch.zeros(4, 4, dtype=torch.long), TrainConfig(steps=2, batch_size=2),
                  out_dir=blocker / "sub", progress=False)


def test_eb_with_a_template_never_moves_fixed_positions():
    energy = IsingEnergy(3, sigma=0.3)
    model = MaM(NetworkConfig(D=9, K=2, arch="mlp", hidden=32, n_layers=1))
    template = torch.tensor([0, 2, 2, 2, 1, 2, 2, 2, 0])
    seen = []
    res = train_eb(
        model,
        lambda x: seen.append(x.clone()) or energy(x),
        TrainConfig(steps=20, batch_size=64),
        template=template,
        progress=False,
    )
    fixed = template != 2
    assert all((x[:, fixed] == template[fixed]).all() for x in seen)
    assert res.step == 20


def test_bf16_steps_train_the_float32_weights():
    """Under ``precision="bf16"`` each step's forward runs in bfloat16 but the optimizer moves the
    float32 weights: the trained model must fit the data when evaluated in float32. (One autocast
    context around the whole loop kept the first step's bfloat16 weights for every forward pass,
    so the loss fell while the float32 weights drifted into nonsense.)"""
    D, K = 6, 3
    xs, logp, data = _pairwise_samples(D, K, 2, 5000)
    kls = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = MaM(NetworkConfig(D=D, K=K, arch="mlp", hidden=64, n_layers=2))
        res = train_arm(model, data, TrainConfig(steps=600, batch_size=256, lr=3e-3,
                                                 precision=precision, log_every=100),
                        progress=False)
        assert res.history[-1]["loss"] < res.history[0]["loss"]
        with torch.no_grad():
            kls[precision] = _kl(logp, model.log_likelihood_arm(xs, order="l2r"))
    assert kls["fp32"] < 0.05
    assert kls["bf16"] < 0.05
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")


def _attention_kernels_run(cfg: TrainConfig, model: MaM, data: torch.Tensor) -> set[str]:
    """Names of PyTorch's attention operators that two training steps under ``cfg`` run."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_arm(model, data, cfg, progress=False)
    return {e.key for e in prof.key_averages() if "attention" in e.key}


def test_bf16_training_on_cpu_computes_attention_as_plain_products_and_fits_the_data():
    """On CPU under bfloat16, ``attention="auto"`` computes attention as plain matrix products
    (:func:`plain_attention`): PyTorch's fused kernel is slow there in its backward pass and its
    math kernel works in float32 (``bench/cpu_precision.py``).  Plain and fused attention must
    compute the same step, and a transformer trained this way must come as close to an exactly
    enumerable distribution as in float32."""
    from mam_core.core.networks import plain_attention
    from mam_core.training.loop import step_attention

    assert step_attention(torch.device("cpu"), TrainConfig(precision="bf16")) == "plain"
    assert step_attention(torch.device("cpu"), TrainConfig(precision="fp32")) == "fused"
    assert step_attention(torch.device("cuda"), TrainConfig(precision="bf16")) == "fused"
    with pytest.raises(ValueError, match="attention"):
        TrainConfig(attention="flash")

    D, K = 6, 3
    xs, logp, data = _pairwise_samples(D, K, 3, 5000)
    net = NetworkConfig(D=D, K=K, arch="transformer", d_model=32, n_layers=2, n_heads=2)
    ran = {}
    for attention in ("auto", "fused"):
        cfg = TrainConfig(steps=2, batch_size=64, lr=1e-9, precision="bf16", attention=attention)
        ran[attention] = _attention_kernels_run(cfg, MaM(net), data)
    assert any("scaled_dot_product" in k for k in ran["fused"])
    assert not any("scaled_dot_product" in k for k in ran["auto"]), ran["auto"]

    grads, losses = {}, {}
    model = MaM(net)
    for mode in ("plain", "fused"):
        model.zero_grad()
        plain = plain_attention() if mode == "plain" else contextlib.nullcontext()
        with torch.autocast("cpu", dtype=torch.bfloat16), plain:
            loss = ao_arm_loss(model, data[:64], torch.Generator().manual_seed(1)).loss
        loss.backward()
        losses[mode] = float(loss.detach())
        grads[mode] = torch.cat([p.grad.flatten() for p in model.conditional_parameters()
                                 if p.grad is not None])
    assert losses["plain"] == pytest.approx(losses["fused"], rel=1e-2)
    cos = torch.nn.functional.cosine_similarity(grads["plain"], grads["fused"], dim=0)
    assert cos > 0.999, cos

    kls = {}
    for precision in ("fp32", "bf16"):  # bf16 with attention "auto": plain products on CPU
        torch.manual_seed(0)
        model = MaM(net)
        with torch.no_grad():
            untrained = _kl(logp, model.log_likelihood_arm(xs, order="l2r"))
        train_arm(model, data, TrainConfig(steps=300, batch_size=128, lr=3e-3,
                                           precision=precision, log_every=100), progress=False)
        with torch.no_grad():
            kls[precision] = _kl(logp, model.log_likelihood_arm(xs, order="l2r"))
    assert kls["fp32"] < untrained / 2, (kls, untrained)
    assert abs(kls["bf16"] - kls["fp32"]) < 0.03, kls


def test_l2r_rows_observe_prefixes_and_every_order_still_fits():
    """``l2r_fraction`` shows the prefix contexts left-to-right samplers read, and a mixture still
    fits the data in every order (exact enumeration)."""
    D, K = 6, 3
    model = MaM(NetworkConfig(D=D, K=K, arch="mlp", hidden=32, n_layers=1))
    seen = []
    real = model.conditional_logits
    model.conditional_logits = lambda x, **kw: (seen.append(x.clone()), real(x, **kw))[1]
    x = torch.randint(0, K, (200, D), generator=torch.Generator().manual_seed(0))
    ao_arm_loss(model, x, torch.Generator().manual_seed(1), l2r_fraction=1.0)
    observed = seen[0] != model.mask_id
    n_obs = observed.sum(dim=1, keepdim=True)
    assert torch.equal(observed, torch.arange(D)[None, :] < n_obs)  # every row sees a prefix
    assert len(set(n_obs.flatten().tolist())) == D  # at every cut

    xs, logp, data = _pairwise_samples(D, K, 3, 5000)
    torch.manual_seed(0)
    model = MaM(NetworkConfig(D=D, K=K, arch="mlp", hidden=64, n_layers=2))
    train_arm(model, data, TrainConfig(steps=600, batch_size=256, lr=3e-3, l2r_fraction=0.5),
              progress=False)
    with torch.no_grad():
        for order in ("l2r", "r2l"):
            assert _kl(logp, model.log_likelihood_arm(xs, order=order)) < 0.05, order


def test_median_seconds_per_step_leaves_out_the_start_up_record():
    from mam_core.training.loop import median_seconds_per_step

    history = [{"sec_per_step": 9.0}, {"sec_per_step": 1.0}, {"sec_per_step": None},
               {"sec_per_step": 3.0}, {"sec_per_step": 2.0}]
    assert median_seconds_per_step(history) == 2.0


def test_chain_consistency_over_all_steps_regresses_onto_one_orders_arm_likelihood(tiny_model):
    """k = D: every row's target is the exact AO-ARM likelihood of x in one of the D! orders."""
    import itertools

    from mam_core.core.likelihood import log_likelihood_arm_given_order
    from mam_core.core.objectives import chain_consistency_loss

    model, D = tiny_model, tiny_model.D
    x = torch.randint(0, model.K, (4, D), generator=torch.Generator().manual_seed(0))
    _, e = chain_consistency_loss(model, x, D, torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = e + model.log_marginal(x)  # log p_θ(∅) = 0
        perms = torch.tensor(list(itertools.permutations(range(D))))  # (720, D)
        for row, t in zip(x, target):
            per_order = log_likelihood_arm_given_order(model, row.expand(len(perms), -1), perms)
            assert (per_order - float(t)).abs().min() < 1e-4


def test_chain_consistency_vanishes_for_consistent_heads_and_trains_only_the_marginal():
    """Uniform φ and an untrained (uniform) θ agree on every subset: zero error for every k;
    a perturbed θ does not, and the gradient reaches θ only."""
    from mam_core.core.objectives import chain_consistency_loss

    model = MaM(NetworkConfig(D=6, K=3, arch="transformer", d_model=16, n_layers=1, n_heads=2))
    with torch.no_grad():
        for p in model.net.conditional_head.parameters():
            p.zero_()
    x = torch.randint(0, 3, (32, 6), generator=torch.Generator().manual_seed(0))
    for k in (1, 3, 6):
        out, e = chain_consistency_loss(model, x, k, torch.Generator().manual_seed(k))
        assert float(e.detach().abs().max()) < 1e-5
    with torch.no_grad():
        for p in model.marginal_parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    out, _ = chain_consistency_loss(model, x, 3, torch.Generator().manual_seed(3))
    assert float(out.loss.detach()) > 1e-3
    out.loss.backward()
    assert all(p.grad is None for p in model.conditional_parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0
               for p in model.marginal_parameters())
    with pytest.raises(ValueError, match="k must be"):
        chain_consistency_loss(model, x, 7)


def test_distillation_over_chains_of_steps_reaches_the_exact_marginals():
    """``sc_steps = 3``: the same fixed point as one-step self-consistency (exact enumeration)."""
    D, K = 5, 2
    xs, logp, data = _pairwise_samples(D, K, 2, 5000)
    model = MaM(NetworkConfig(D=D, K=K, arch="mlp", hidden=64, n_layers=2))
    train_arm(model, data, TrainConfig(steps=500, batch_size=128, lr=3e-3), progress=False)
    res = distill(model, data, TrainConfig(steps=500, batch_size=128, lr=3e-3, sc_steps=3,
                                           data_fraction=1.0),
                  progress=False)
    assert res.history[-1]["sc_abs_err"] < 0.1
    with torch.no_grad():
        mam = model.log_marginal(xs).double()
        assert _kl(logp, mam) < 0.05
        partial = data[:400].clone()
        partial[torch.rand(400, D, generator=torch.Generator().manual_seed(5)) < 0.5] = K
        true = exact_log_marginal(xs, logp, partial, K)
        assert float((model.log_marginal(partial).double() - true).abs().mean()) < 0.08
