"""The training modes, each a thin ``step_fn`` around :func:`~mam_core.training.loop.run_training`:
AO-ARM stage 1, marginal distillation (stage 2), energy-based training (persistent chains, or
fresh exact draws of the sampler itself for fine-tuning), and the autoregressive energy-based
baseline (ARM-EB) MaM is measured against.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..core.config import TrainConfig
from ..core.model import MaM
from ..core.objectives import (LossOutput, ao_arm_loss, arm_eb_loss, chain_consistency_loss,
                               energy_based_loss, policy_gradient_loss, self_consistency_loss)
from ..core.sampling import censor_and_resample, sample, sample_traced
from . import distributed as dist
from .loop import TrainResult, run_training

__all__ = ["train_arm", "distill", "train_eb", "train_policy", "train_arm_eb"]


def _check_data(model: MaM, data: torch.Tensor) -> torch.Tensor:
    data = model.check_input(data, allow_mask=False)
    if data.shape[0] == 0:
        raise ValueError("the training data is empty")
    return data


def _data_batches(data: torch.Tensor, n: int, seed: int) -> Callable[[int], torch.Tensor]:
    """``step -> (n, D)`` rows of ``data``: this rank's shard of a reshuffled epoch (see
    :class:`mam_core.training.distributed.ShardedBatches`)."""
    batches = dist.ShardedBatches(data.shape[0], n, seed) if n else None

    def get(step: int) -> torch.Tensor:
        if batches is None:
            return data[:0]
        return data[batches(step).to(data.device)]

    return get


@torch.no_grad()
def _energy_of(log_f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``log f(x)`` as a float32 ``(B,)`` tensor on ``x``'s device; a wrong shape is refused."""
    lf = torch.as_tensor(log_f(x), dtype=torch.float32, device=x.device)
    if lf.shape != (x.shape[0],):
        raise ValueError(f"the energy must return shape ({x.shape[0]},), got {tuple(lf.shape)}")
    return lf


def _chain_generator(model: MaM, cfg: TrainConfig) -> torch.Generator:
    gen0 = torch.Generator(device=model.device)
    gen0.manual_seed(dist.rank_seed(cfg.seed + 1))
    return gen0


def train_arm(model: MaM, data: torch.Tensor, cfg: TrainConfig, **kw) -> TrainResult:
    """Stage 1: fit the conditional head φ with the AO-ARM objective on complete sequences."""
    data = _check_data(model, data)
    batch = _data_batches(data, dist.local_batch(cfg.batch_size), cfg.seed)

    def step_fn(step, gen):
        return ao_arm_loss(model, batch(step), gen, cfg.l2r_fraction)

    kw.setdefault("run_info", {"n_train": int(data.shape[0])})
    return run_training(model, step_fn, cfg, "arm", params=model.conditional_parameters(), **kw)


def _init_chains(model: MaM, n: int, gen, template: torch.Tensor | None = None) -> torch.Tensor:
    return sample(model, n, order="random", template=template, generator=gen)


def distill(model: MaM, data: torch.Tensor, cfg: TrainConfig, warm_start: bool = True,
            **kw) -> TrainResult:
    """Stage 2: distil the marginal head θ from the frozen conditionals φ by self-consistency,
    on a mixture of data and persistent on-policy chains refreshed by censor-and-resample.
    ``cfg.sc_steps > 1`` constrains that many consecutive steps of an order at a time
    (:func:`~mam_core.core.objectives.chain_consistency_loss`).

    ``warm_start`` copies φ's trunk into θ's before the first step, unless θ was distilled
    before (separate trunks only; a resumed run restores its own weights afterwards anyway).
    """
    data = _check_data(model, data)
    if warm_start and not any(r.get("stage") == "distill"
                              for r in model.metadata.get("training", [])):
        model.warm_start_marginal()
    per_rank = dist.local_batch(cfg.batch_size)
    n_data = int(round(per_rank * cfg.data_fraction))
    n_chain = per_rank - n_data
    state = {"chains": _init_chains(model, max(n_chain, 1), _chain_generator(model, cfg))}
    params = model.marginal_parameters()
    batch = _data_batches(data, n_data, cfg.seed)

    def step_fn(step, gen):
        parts = [batch(step)] if n_data else []
        if n_chain:
            state["chains"].copy_(censor_and_resample(model, state["chains"], cfg.gibbs_k,
                                                      generator=gen))
            parts.append(state["chains"])
        if cfg.sc_steps > 1:
            return chain_consistency_loss(model, torch.cat(parts), min(cfg.sc_steps, model.D),
                                          gen)[0]
        loss, _, _ = self_consistency_loss(model, torch.cat(parts), gen, train_conditional=False)
        return loss

    kw.setdefault("run_info", {"n_train": int(data.shape[0])})
    return run_training(model, step_fn, cfg, "distill", params=params, state=state, **kw)


def train_eb(
    model: MaM,
    log_f: Callable[[torch.Tensor], torch.Tensor],
    cfg: TrainConfig,
    template: torch.Tensor | None = None,
    **kw,
) -> TrainResult:
    """Energy-based training towards ``p*(x) ∝ f(x)`` with no data (DESIGN §2b).

    Args:
        log_f: callable ``(B, D) ids -> (B,)`` finite log f(x) (see :mod:`energies`).
        template: optional ``(D,)`` ids with the mask id at free positions: the observed
            positions are a fixed substructure, never resampled, and the model learns the
            free positions given them.
    """
    frozen = None
    if template is not None:
        template = model.check_input(template)[0]
        frozen = template != model.mask_id
    state = {"chains": _init_chains(model, dist.local_batch(cfg.batch_size),
                                    _chain_generator(model, cfg), template)}

    def step_fn(step, gen):
        chains = censor_and_resample(model, state["chains"], cfg.gibbs_k, frozen=frozen,
                                     generator=gen)
        state["chains"].copy_(chains)
        lf = _energy_of(log_f, chains)
        out = energy_based_loss(model, chains, lf, cfg.sc_weight, gen, frozen)
        # e.g. the raw reward when fine-tuning
        out.metrics.update(getattr(log_f, "last_metrics", None) or {})
        return out

    return run_training(model, step_fn, cfg, "eb", state=state, **kw)


def train_policy(
    model: MaM,
    log_f: Callable[[torch.Tensor], torch.Tensor],
    cfg: TrainConfig,
    order="l2r",
    constraint=None,
    template: torch.Tensor | None = None,
    reference: MaM | None = None,
    beta: float = 0.0,
    positions_per_row: int = 16,
    **kw,
) -> TrainResult:
    """Energy-based training of the sampler itself towards ``p* ∝ q_ref^β · f``.

    Every step draws ``cfg.batch_size`` fresh, exact samples the way they will be used (a fixed
    ``order`` under ``constraint``, e.g. left to right with a syntax), moves the conditionals by
    :func:`~mam_core.core.objectives.policy_gradient_loss`, and keeps the marginal head on the
    moving conditionals by self-consistency on the same samples (weight ``cfg.sc_weight``, φ
    frozen in that term). Unlike :func:`train_eb`, no sample is ever drawn outside the
    constraint, and the reward reaches the conditionals directly rather than through θ: this is
    what keeps a pretrained molecule model valid while it moves. A step costs two sampling
    passes per drawn position (model and reference) without gradients, plus two with.

    Args:
        log_f: callable ``(B, D) ids -> (B,)`` finite log f(x).
        constraint: ``constraint(x, pos, mask_id) -> (n, K) bool`` (see
            :func:`mam_core.core.sampling.sample`).
        template: ``(D,)`` ids with the mask id at free positions (a fixed substructure).
        reference: the frozen model the run started from; required when ``beta > 0``.
        beta: weight of ``log q_ref`` in the target (0 = reward only).
        positions_per_row: conditionals per molecule in the gradient estimate; fewer is
            cheaper but noisier (fine-tuning the default model towards logP −4 for 30 steps:
            4 positions left logP where it was and lowered quality 0.82 → 0.57; 16 moved logP
            2.6 → 1.7 at quality 0.76; ``bench/lipophilicity_sweep.py --positions``).
    """
    beta = float(beta)
    if not beta >= 0.0 or beta == float("inf"):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    if beta > 0 and reference is None:
        raise ValueError("beta > 0 needs the reference model")
    if reference is not None and (reference.D != model.D or reference.K != model.K):
        raise ValueError(f"the reference has D={reference.D}, K={reference.K} but the model has "
                         f"D={model.D}, K={model.K}")
    frozen = None
    if template is not None:
        template = model.check_input(template)[0]
        frozen = template != model.mask_id
    ref = reference if beta > 0 else None

    def step_fn(step, gen):
        x, trace = sample_traced(model, dist.local_batch(cfg.batch_size), order, template,
                                 constraint, ref, gen, bf16=cfg.precision == "bf16")
        lf = _energy_of(log_f, x)
        pg = policy_gradient_loss(model, x, trace, lf, beta, positions_per_row, gen)
        sc, _, _ = self_consistency_loss(model, x, gen, train_conditional=False, frozen=frozen)
        loss = pg.loss + cfg.sc_weight * sc.loss
        metrics = {**pg.metrics, **sc.metrics, "loss": float(loss.detach())}
        metrics.update(getattr(log_f, "last_metrics", None) or {})
        return LossOutput(loss, metrics)

    return run_training(model, step_fn, cfg, "policy", **kw)


def train_arm_eb(
    model: MaM,
    log_f: Callable[[torch.Tensor], torch.Tensor],
    cfg: TrainConfig,
    chunk: int | None = None,
    **kw,
) -> TrainResult:
    """Energy-based training of the ARM baseline: fresh ancestral samples every step.

    An order-agnostic network used as a plain autoregressive model (a fixed left-to-right order)
    trained with the *same* REINFORCE objective as MaM (DESIGN §2b). The difference is where
    ``log p(x)`` comes from: MaM reads it off the marginal head in one pass; the ARM sums ``D``
    conditionals (:func:`mam_core.core.likelihood.arm_log_likelihood`) and backpropagates through
    all of them. Samples are exact ancestral draws, so the ARM needs no chains and no
    self-consistency term; cost per step grows like ``D`` (``bench/eb_step_cost.py``).
    """

    def step_fn(step, gen):
        with torch.no_grad():
            x = sample(model, dist.local_batch(cfg.batch_size), order="l2r", generator=gen)
            lf = torch.as_tensor(log_f(x), dtype=torch.float32, device=model.device)
        return arm_eb_loss(model, x, lf, chunk)

    params = model.conditional_parameters()
    return run_training(model, step_fn, cfg, "arm_eb", params=params, **kw)
