"""Training objectives as plain functions ``(model, batch, ...) -> LossOutput``.

None of them steps an optimizer, so trainers stay short and each loss is testable alone.

* :func:`ao_arm_loss` — stage 1, the any-order ARM objective for the conditional head φ.
* :func:`self_consistency_loss` — marginalisation self-consistency between θ and φ
  (stage 2 distillation with φ frozen; energy-based training with both trained).
* :func:`chain_consistency_loss` — self-consistency over ``k`` consecutive steps of an order
  (stage 2 only, φ frozen): penalises the error a marginal accumulates along a walk, not only
  per step.
* :func:`energy_based_loss` — REINFORCE estimate of ∇KL(p_θ‖p*) plus λ·self-consistency.
* :func:`arm_eb_loss` — the same REINFORCE estimate for the autoregressive baseline, whose
  ``log p(x)`` sums D conditionals instead of reading one marginal.
* :func:`policy_gradient_loss` — REINFORCE on the sampler itself (exact draws in a fixed order,
  :func:`mam_core.core.sampling.sample_traced`), one network pass for a few positions per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .collectives import global_mean_std
from .likelihood import arm_log_likelihood
from .orders import make_orders, rank_of, restrict_order

__all__ = [
    "LossOutput",
    "ao_arm_loss",
    "self_consistency_loss",
    "chain_consistency_loss",
    "energy_based_loss",
    "reinforce_kl",
    "consistency_pairs",
    "arm_eb_loss",
    "policy_gradient_loss",
]


@dataclass
class LossOutput:
    """A scalar loss to differentiate and float metrics to log."""

    loss: torch.Tensor
    metrics: dict = field(default_factory=dict)


def random_cut(B: int, D: int, device, generator=None, frozen: torch.Tensor | None = None):
    """A random order per row and the 0-based step ``cut = d − 1`` with ``d ~ U{1..D}``.

    With ``frozen`` (``(D,)``/``(B, D)`` bool, a fixed substructure), the frozen positions are
    visited first and ``cut`` is drawn from the free steps only, so they are always observed.
    Returns ``(orders (B, D), cut (B,))``.
    """
    orders = make_orders("random", B, D, device, generator)  # (B, D)
    lo = torch.zeros(B, dtype=torch.long, device=device)
    if frozen is not None:
        orders, lo = restrict_order(orders, frozen.to(device).expand(B, D))
    span = (D - lo).clamp(min=1)
    cut = lo + (torch.rand(B, device=device, generator=generator) * span).long()
    return orders, cut.clamp(max=D - 1)


def ao_arm_loss(model, x: torch.Tensor, generator: torch.Generator | None = None,
                l2r_fraction: float = 0.0) -> LossOutput:
    """Stage-1 AO-ARM loss (DESIGN §2a): mask σ(≥d), score the masked positions, weight D/(D−d+1).

    An unbiased estimate of ``−E_σ log p_φ(x|σ)`` (an upper bound on the NLL), reported in nats
    per sequence and bits per dimension.

    Args:
        x: ``(B, D)`` complete sequences (ids ``0..K-1``).
        l2r_fraction: share of rows whose observed set is a prefix (the positions before the
            cut) instead of a uniform order's. Samplers that write left to right read only
            conditionals given prefixes, which uniform orders almost never show; those rows
            train them directly (the same weighted sum over the masked positions), the rest keep
            every other context trained. With ``l2r_fraction > 0`` the loss is a training signal,
            no longer the AO-ARM bound.
    """
    B, D = x.shape
    orders, cut = random_cut(B, D, x.device, generator)
    if l2r_fraction > 0:
        rows = torch.rand(B, device=x.device, generator=generator) < l2r_fraction
        orders = torch.where(rows[:, None], make_orders("l2r", B, D, x.device), orders)
    masked = rank_of(orders) >= cut[:, None]  # (B, D): σ(≥d) hidden
    x_masked = torch.where(masked, model.mask_id, x)  # (B, D)
    logits = model.conditional_logits(x_masked, check=False)  # (B, D, K)
    lp = F.log_softmax(logits, dim=-1).gather(2, x.unsqueeze(-1)).squeeze(-1)  # (B, D)
    n_masked = masked.sum(dim=1)  # D - d + 1
    per_seq = -(D / n_masked) * (lp * masked).sum(dim=1)  # (B,)
    loss = per_seq.mean()
    nats = float(loss.detach())
    return LossOutput(loss, {"nll_nats": nats, "bits_per_dim": nats / (D * math.log(2))})


def consistency_pairs(x: torch.Tensor, mask_id: int, generator=None,
                      frozen: torch.Tensor | None = None):
    """Sample one self-consistency constraint per row.

    Returns ``(x_prev, x_cur, pos)``: ``x_prev`` shows σ(<d), ``x_cur`` shows σ(≤d), and ``pos``
    is the position σ(d) revealed in between.  Frozen positions (a fixed substructure) are
    always observed, so constraints only walk over the free positions.
    """
    B, D = x.shape
    orders, cut = random_cut(B, D, x.device, generator, frozen)
    rank = rank_of(orders)
    x_prev = torch.where(rank < cut[:, None], x, mask_id)
    x_cur = torch.where(rank <= cut[:, None], x, mask_id)
    pos = orders.gather(1, cut[:, None]).squeeze(1)
    return x_prev, x_cur, pos


def self_consistency_loss(
    model,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    train_conditional: bool = True,
    frozen: torch.Tensor | None = None,
    extra_rows: torch.Tensor | None = None,
):
    """Marginalisation self-consistency (DESIGN §1).

    ``e = log p_θ(x_{σ(<d)}) + log p_φ(x_{σ(d)} | x_{σ(<d)}) − log p_θ(x_{σ(≤d)})`` and
    ``L_sc = D · mean(e²)``; normalisation ``log p_θ(∅) = 0`` holds by construction.

    Args:
        train_conditional: ``False`` freezes φ (stage-2 distillation: only θ moves).
        extra_rows: more rows ``(B', D)`` whose marginals the caller also needs; they share the
            same forward pass and are returned as the third element.
    Returns:
        ``(LossOutput, e, extra_log_marginals)``.
    """
    B, D = x.shape
    x_prev, x_cur, pos = consistency_pairs(x, model.mask_id, generator, frozen)
    parts = [x_prev, x_cur] + ([extra_rows] if extra_rows is not None else [])
    # one trunk pass for every marginal
    lm = model.log_marginal(torch.cat(parts, dim=0), check=False)
    lm_prev, lm_cur, lm_extra = lm[:B], lm[B : 2 * B], lm[2 * B :]
    rows = torch.arange(B, device=x.device)
    with torch.set_grad_enabled(train_conditional and torch.is_grad_enabled()):
        logits = model.conditional_logits(x_prev, check=False)[rows, pos]  # (B, K)
        lc = F.log_softmax(logits, dim=-1).gather(1, x[rows, pos][:, None]).squeeze(1)  # (B,)
    if not train_conditional:
        lc = lc.detach()
    e = lm_prev + lc - lm_cur  # (B,)
    loss = D * (e**2).mean()
    metrics = {"sc_loss": float(loss.detach()), "sc_abs_err": float(e.detach().abs().mean())}
    return LossOutput(loss, metrics), e, lm_extra


def chain_consistency_loss(model, x: torch.Tensor, k: int,
                           generator: torch.Generator | None = None):
    """Self-consistency over ``k`` consecutive steps of a random order, φ frozen (stage 2).

    ``e = log p_θ(x_{σ(<d)}) + Σ_{j<k} log p_φ(x_{σ(d+j)} | x_{σ(<d+j)}) − log p_θ(x_{σ(<d+k)})``
    with ``d ~ U{0..D−k}``, and ``L = (D/k)·mean(e²)``.  The ``k``-step errors are sums of the
    one-step errors along the walk, so both losses vanish at the same θ; where θ cannot be
    exact, the one-step loss lets small per-step errors of one sign add up (a marginal that
    shrinks every molecule's log p towards the average), which this loss sees.  ``k = D`` is a
    regression of ``log p_θ(x)`` onto one order's AO-ARM likelihood, whose mean over orders is
    what self-consistency distils.  Costs ``k`` frozen conditional passes (one position each)
    per row, beside the two marginal passes.

    Returns:
        ``(LossOutput, e)``.
    """
    B, D = x.shape
    if not 1 <= k <= D:
        raise ValueError(f"k must be in 1..D={D}, got {k}")
    orders = make_orders("random", B, D, x.device, generator)  # (B, D)
    rank = rank_of(orders)  # (B, D)
    start = (torch.rand(B, device=x.device, generator=generator) * (D - k + 1)).long()
    start = start.clamp(max=D - k)  # (B,)
    x_prev = torch.where(rank < start[:, None], x, model.mask_id)
    x_cur = torch.where(rank < (start + k)[:, None], x, model.mask_id)
    lm = model.log_marginal(torch.cat([x_prev, x_cur]), check=False)
    with torch.no_grad():
        steps = start[None, :] + torch.arange(k, device=x.device)[:, None]  # (k, B)
        seen = torch.where(rank[None] < steps[:, :, None], x[None], model.mask_id)  # (k, B, D)
        pos = orders.gather(1, steps.T).T  # (k, B)
        tok = x.gather(1, pos.T).T  # (k, B)
        logits = model.net.conditional_at(seen.reshape(k * B, D), pos.reshape(-1))  # (kB, K)
        lc = F.log_softmax(logits.float(), dim=-1).gather(1, tok.reshape(-1, 1))
        lc = lc.reshape(k, B).sum(0)  # (B,)
    e = lm[:B] + lc - lm[B:]
    loss = (D / k) * (e**2).mean()
    metrics = {"sc_loss": float(loss.detach()), "sc_abs_err": float(e.detach().abs().mean())}
    return LossOutput(loss, metrics), e


def energy_based_loss(
    model,
    x: torch.Tensor,
    log_f: torch.Tensor,
    sc_weight: float = 4.0,
    generator: torch.Generator | None = None,
    frozen: torch.Tensor | None = None,
) -> LossOutput:
    """Energy-based objective (DESIGN §2b): REINFORCE for KL(p_θ‖p*) plus λ·L_sc.

    ``r = stopgrad(log p_θ(x) − log f(x))`` standardised over the batch,
    ``L_kl = mean(r·log p_θ(x))``.
    The samples ``x`` come from ``p_φ`` (persistent chains); self-consistency ties ``p_φ`` to
    ``p_θ`` so the samples follow the model being trained.

    Args:
        x: ``(B, D)`` complete samples.
        log_f: ``(B,)`` finite unnormalised target log-density of each sample.
    Returns:
        metrics include ``kl_minus_logz = mean(log p_θ − log f)`` (= KL − log Z, an estimate),
        ``log_f_mean`` and ``log_f_std``.
    """
    sc, _, logp = self_consistency_loss(model, x, generator, True, frozen, extra_rows=x)
    kl = reinforce_kl(logp, log_f)
    loss = kl.loss + sc_weight * sc.loss
    return LossOutput(loss, {**kl.metrics, "loss": float(loss.detach()), **sc.metrics})


def reinforce_kl(logp: torch.Tensor, log_f: torch.Tensor) -> LossOutput:
    """REINFORCE surrogate for ``KL(p ‖ p*)`` on samples from ``p``, shared by MaM and ARM-EB.

    ``r = stopgrad(log p − log f)`` standardised over the batch; the loss is ``mean(r·log p)``.
    """
    r = (logp - log_f).detach()  # (B,)
    r_std, metrics = _standardised(r, log_f)
    loss = (r_std * logp).mean()
    return LossOutput(loss, {"loss": float(loss.detach()), **metrics,
                             "log_p_mean": float(logp.detach().mean())})


def _standardised(r: torch.Tensor, log_f: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """REINFORCE advantages: ``r = log q − log p*`` standardised over the batch (every rank's
    samples under torchrun), once the energy's values are checked finite; plus the metrics
    every energy-based loss logs."""
    if not torch.isfinite(log_f).all():
        bad = int((~torch.isfinite(log_f)).sum())
        raise ValueError(f"the energy returned {bad} non-finite values (NaN/inf); energies must be "
                         "finite")
    mean, std = global_mean_std(r)
    metrics = {"kl_minus_logz": float(r.mean()), "log_f_mean": float(log_f.mean()),
               "log_f_std": float(log_f.std()) if log_f.numel() > 1 else 0.0}
    return (r - mean) / (std + 1e-8), metrics

def arm_eb_loss(model, x: torch.Tensor, log_f: torch.Tensor,
                chunk: int | None = None) -> LossOutput:
    """REINFORCE for ``KL(p_ARM ‖ p*)`` on exact samples ``x`` from the ARM (left to right)."""
    return reinforce_kl(arm_log_likelihood(model, x, chunk), log_f)


def policy_gradient_loss(
    model,
    x: torch.Tensor,
    trace,
    log_f: torch.Tensor,
    beta: float = 0.0,
    positions_per_row: int = 16,
    generator: torch.Generator | None = None,
) -> LossOutput:
    """REINFORCE for ``KL(q ‖ p*)``, ``p* ∝ q_ref^β · f``, where ``q`` is the sampler that drew
    ``x`` (the model's conditionals in a fixed order, under a constraint if any).

    ``r = log q(x) − β·log q_ref(x) − log f(x)`` comes exactly from the draw's trace; the score
    ``∇ log q(x) = Σ_d ∇ log q(x_d | context_d)`` is estimated without bias from
    ``positions_per_row`` of the row's chosen positions, drawn uniformly without replacement and
    weighted by ``n_chosen / m`` (every position, weight 1, where a row has no more than ``m``):
    one network pass over ``B·m`` contexts instead of ``D``.

    Args:
        trace: the :class:`mam_core.core.sampling.DrawTrace` of ``x`` (with ``log_ref`` when
            ``beta > 0``).
        log_f: ``(B,)`` finite log rewards.
    """
    if beta > 0 and trace.log_ref is None:
        raise ValueError("beta > 0 needs a draw traced with a reference model")
    log_q = trace.log_q
    r = log_q - log_f
    if beta > 0:
        r = r - beta * trace.log_ref
    adv, metrics = _standardised(r, log_f)  # (B,)
    n_chosen = trace.chosen.sum(dim=1)  # (B,)
    metrics["log_q_mean"] = float(log_q.mean())
    if beta > 0:
        metrics["log_ref_mean"] = float(trace.log_ref.mean())
    if not bool((n_chosen > 0).any()):  # nothing was drawn: no gradient, but a graph for the loop
        loss = sum(p.sum() for p in model.parameters()) * 0.0
        return LossOutput(loss, {"loss": 0.0, **metrics})
    # m of each row's chosen positions, uniformly without replacement (all of them where it has
    # at most m): the top-m of random keys, with the unchosen positions' keys at -1
    m = min(max(1, int(positions_per_row)), int(n_chosen.max()))
    keys = torch.rand(trace.chosen.shape, generator=generator, device=x.device)
    keys = torch.where(trace.chosen, keys, torch.full_like(keys, -1.0))
    top = keys.topk(m, dim=1)  # (B, m)
    picked = top.values >= 0
    rows = torch.arange(x.shape[0], device=x.device)[:, None].expand(-1, m)[picked]
    pos = top.indices[picked]
    ctx = trace.context(x, rows, pos, model.mask_id)  # (Σ picked, D)
    logits = model.conditional_logits(ctx, check=False)[torch.arange(rows.numel()), pos]
    logits = logits.float().masked_fill(~trace.allowed[rows, pos], float("-inf"))
    lc = F.log_softmax(logits, dim=-1).gather(1, x[rows, pos][:, None]).squeeze(1)
    scale = n_chosen.float() / n_chosen.clamp(max=m).clamp(min=1).float()  # n / picked, per row
    loss = (adv[rows] * scale[rows] * lc).sum() / x.shape[0]
    return LossOutput(loss, {"loss": float(loss.detach()), **metrics})
