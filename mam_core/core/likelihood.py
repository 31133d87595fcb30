"""Log-likelihoods: the exact AO-ARM way (D passes) that MaM's one-pass marginal replaces.

``log p_φ(x_S | σ) = Σ_{d} log p_φ(x_{σ(d)} | x_{σ(<d)})`` over the observed positions only,
visited in the order σ restricted to S; averaged over orders with log-mean-exp (DESIGN §1).

:func:`arm_log_likelihood` is the differentiable left-to-right version the autoregressive
energy-based baseline trains with (:func:`mam_core.training.trainers.train_arm_eb`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .orders import make_orders, restrict_order
from .rng import make_generator

__all__ = ["log_likelihood_arm", "log_likelihood_arm_given_order", "log_likelihood_arm_per_order",
           "log_mean_exp", "log_sum_over_spellings", "arm_log_likelihood", "ao_arm_bound"]


@torch.no_grad()
def log_likelihood_arm_given_order(model, x: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """``log p_φ(x_S | σ)`` for one order per row; ``max |S|`` sequential passes batched over B.

    Args:
        x: ``(B, D)`` checked ids, mask id at unobserved positions.
        orders: ``(B, D)`` permutations.
    Returns:
        ``(B,)`` float64 log-likelihoods in nats.
    """
    B = x.shape[0]
    observed = x != model.mask_id
    seq, count = restrict_order(orders, observed)
    rows = torch.arange(B, device=x.device)
    cur = model.empty(B)
    total = torch.zeros(B, dtype=torch.float64, device=x.device)
    for t in range(int(count.max()) if B else 0):
        active = t < count
        pos = seq[:, t]  # (B,)
        tok = x[rows, pos]  # (B,)
        logits = model.conditional_logits(cur, check=False)[rows, pos]  # (B, K)
        lp = F.log_softmax(logits.double(), dim=-1).gather(1, tok.clamp(max=model.K - 1)[:, None])
        total += torch.where(active, lp.squeeze(1), torch.zeros_like(total))
        cur[rows, pos] = torch.where(active, tok, cur[rows, pos])
    return total


@torch.no_grad()
def log_likelihood_arm_per_order(
    model,
    x: torch.Tensor,
    num_orders: int = 1,
    order=None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``log p_φ(x_S | σ)`` for ``num_orders`` random orders σ per row (drawn afresh for each
    row and draw): ``(M, B)`` float64 nats.

    Two ways to reduce it, both consistent as ``M`` grows: :func:`log_likelihood_arm`'s
    log-mean-exp (the likelihood of the mixture over orders, a tighter bound that rises with
    ``M``) and the plain mean (``E_σ log p_φ(x | σ)``, the stage-1 bound that self-consistency
    distils into the marginal, DESIGN §1–2).  Their difference measures how much the
    conditionals disagree between orders.
    """
    x = model.check_input(x)
    if num_orders < 1:
        raise ValueError(f"num_orders must be >= 1, got {num_orders}")
    gen = make_generator(seed, model.device, generator)
    if order is not None and not (isinstance(order, str) and order == "random"):
        num_orders = 1
    spec = "random" if order is None else order
    was_training = model.training
    model.eval()
    try:
        return torch.stack(
            [
                log_likelihood_arm_given_order(
                    model, x, make_orders(spec, x.shape[0], model.D, x.device, gen)
                )
                for _ in range(num_orders)
            ]
        )  # (M, B)
    finally:
        model.train(was_training)


def log_mean_exp(per_order: torch.Tensor) -> torch.Tensor:
    """``log mean_m exp(per_order[m])`` over the first dimension: the mixture over orders."""
    return torch.logsumexp(per_order, dim=0) - math.log(per_order.shape[0])


def log_sum_over_spellings(log_p: torch.Tensor, group: torch.Tensor, count: torch.Tensor,
                           reduce: str = "sum") -> torch.Tensor:
    """``log Σ_v p(v)`` over each group's ``count[g]`` sequences, from the ``log_p`` of some of
    them: ``log count[g] + log mean_{rows r of g} exp(log_p[r])``.

    Where one object can be written as several sequences (a molecule whose fragments may come in
    any order), the model's probability of the object is the sum over its spellings.  With every
    spelling scored once this is that sum exactly; with a uniform draw of them the mean inside the
    log is unbiased.  ``reduce="mean"`` puts the mean of the logs in place of the log of the mean:
    the lower bound a per-order average gives (Jensen).  A spelling may be scored more than once
    (under different orders, say) as long as each of a group's scored spellings is scored
    equally often.

    Args:
        log_p: ``(R,)`` log-probabilities of the scored rows.
        group: ``(R,)`` long, the group ``0..G-1`` each row belongs to (every group has a row).
        count: ``(G,)`` how many spellings each group has in all.
    Returns:
        ``(G,)`` float64.
    """
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    n_groups = count.shape[0]
    log_p = log_p.double()
    rows = torch.zeros(n_groups, dtype=torch.float64, device=log_p.device).index_add_(
        0, group, torch.ones_like(log_p))  # (G,) scored rows per group
    if bool((rows == 0).any()):
        raise ValueError("every group needs at least one scored row")
    if reduce == "mean":
        inner = torch.zeros_like(rows).index_add_(0, group, log_p) / rows
    else:
        top = torch.full_like(rows, -math.inf).scatter_reduce(0, group, log_p, "amax")
        inner = top + torch.log(torch.zeros_like(rows).index_add_(
            0, group, torch.exp(log_p - top[group])) / rows)
    return inner + torch.log(count.to(rows))


@torch.no_grad()
def log_likelihood_arm(
    model,
    x: torch.Tensor,
    num_orders: int = 1,
    order=None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Exact AO-ARM log-likelihood (the slow reference), log-mean-exp over ``num_orders``.

    Args:
        model: a :class:`~mam_core.core.model.MaM`.
        x: ``(B, D)`` ids; positions holding the mask id are marginalised out (only observed
            positions are scored), so this also gives ``log p(x_S)`` the slow way.
        num_orders: number of random orders M (ignored when ``order`` is given).
        order: ``None`` (random orders), ``"l2r"``, ``"r2l"``, ``"random"`` or a permutation.
    Returns:
        ``(B,)`` float64 log-likelihoods in nats.
    """
    return log_mean_exp(log_likelihood_arm_per_order(model, x, num_orders, order, seed, generator))


def arm_log_likelihood(model, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Differentiable left-to-right ``log p_φ(x) = Σ_d log p_φ(x_d | x_{<d})``: ``(B, D) -> (B,)``.

    The ``D`` masked prefixes of every row go through the network as one ``(B·D, D)`` batch (in
    chunks of ``chunk`` rows if given): the same ``D`` passes of work, without a Python loop.
    """
    B, D = x.shape
    pos = torch.arange(D, device=x.device)
    visible = pos[None, :] < pos[:, None]  # (D, D): prefix d shows positions < d
    prefixes = torch.where(visible[None], x[:, None, :], model.mask_id)  # (B, D, D)
    prefixes = prefixes.reshape(B * D, D)  # (B·D, D)
    parts = prefixes.split(chunk) if chunk else (prefixes,)
    logits = torch.cat([model.conditional_logits(p, check=False) for p in parts])
    logits = logits.view(B, D, D, -1)  # (B, d, D, K)
    # row d of each sequence predicts position d
    diag = logits[:, pos, pos]  # (B, D, K)
    lp = F.log_softmax(diag, dim=-1).gather(2, x.unsqueeze(-1)).squeeze(-1)  # (B, D)
    return lp.sum(dim=1)


@torch.no_grad()
def ao_arm_bound(model, x: torch.Tensor, batch_size: int = 256, passes: int = 1,
                 seed: int = 0) -> float:
    """The stage-1 objective on ``x``: nats per sequence, an upper bound on −log p averaged over
    orders (DESIGN §2a), one random order and cut per row and pass.

    Orders and cuts come from ``seed``, so values for successive checkpoints on the same
    held-out molecules are comparable (a learning curve), at the cost of D passes less than the
    exact :func:`log_likelihood_arm`.
    """
    from .objectives import ao_arm_loss

    was_training = model.training
    model.eval()
    try:
        gen = torch.Generator(device=model.device).manual_seed(seed)
        total = sum(float(ao_arm_loss(model, b.to(model.device), gen).loss) * len(b)
                    for _ in range(passes) for b in x.split(batch_size))
    finally:
        model.train(was_training)
    return total / (passes * len(x))
