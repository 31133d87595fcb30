"""Reward-driven fine-tuning of a pretrained MaM: target ``p*(x) ∝ p_prior(x)^β · f(x)``.

Training energy-based from scratch (``p* ∝ f``) finds whatever maximises the reward, drug-like or
not. A chemist usually wants molecules that stay close to the data the model was trained on while
moving towards the reward, so fine-tuning tilts the pretrained model itself:

    log p*(x) = β · log p_prior(x) + log f(x)

``β = 0`` is pure reward, large ``β`` stays at the prior. Two ways to optimise it:

* ``"sampler"`` (SMILES and fragment-block models, the default there): every step draws fresh
  molecules left to right under the full syntax constraint (rings steered too, so that every
  draw is a molecule to score) and moves those conditionals by REINFORCE
  (:func:`mam_core.training.trainers.train_policy`), with
  ``log p_prior`` the pretrained sampler's own log-probability of the same draws; the marginal
  head follows by self-consistency. Persistent random-order chains of these models are mostly
  strings that are not molecules, and training on them destroyed a pretrained model within
  30 steps (validity 0.87 → 0.78, quality 0.59 → 0.34 at learning rate 1e-4).
* ``"chains"`` (SELFIES and token models, the paper's setting): persistent block-Gibbs chains and
  REINFORCE on the one-pass marginal (:func:`mam_core.training.trainers.train_eb`), with
  ``log p_prior`` the frozen prior's marginal: one network pass per batch.

Fixed substructures, checkpoints, resume and stop work the same way in both.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Callable

import torch

from ..chem.grammar import grammar_for
from ..chem.molecules import tokenizer_of
from ..core.config import TrainConfig
from ..core.model import MaM, bf16_is_faster
from ..training import TrainResult, train_eb, train_policy
from .generate import default_order, plan_design

__all__ = ["PriorTiltedTarget", "fine_tune", "fine_tune_method", "fine_tune_precision",
           "fine_tune_template", "energy_run_info", "METHODS"]

#: the ways :func:`fine_tune` can optimise (see the module docstring)
METHODS = ("auto", "sampler", "chains")


class PriorTiltedTarget:
    """``x (B, D) -> β·log p_prior(x) + log f(x)`` with a frozen prior.

    After each call ``last_metrics`` holds the batch means of the two parts (``reward_mean`` is
    the energy's ``log f`` alone, the number a chemist follows), which the trainer logs.
    """

    def __init__(self, prior: MaM, energy: Callable[[torch.Tensor], torch.Tensor],
                 beta: float = 1.0):
        beta = float(beta)
        if not beta >= 0.0 or beta == float("inf"):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        # used under no_grad only; its requires_grad flags stay as they are
        self.prior = prior.eval()
        self.energy = energy
        self.beta = beta
        self.last_metrics: dict[str, float] = {}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        reward = LoggedReward(self.energy)
        log_f = reward(x)
        log_prior = self.prior.log_marginal(x).float()
        self.last_metrics = {**reward.last_metrics, "prior_log_p_mean": float(log_prior.mean())}
        return self.beta * log_prior + log_f


def energy_run_info(energy) -> dict:
    """What a run records about its reward: name, description and parameters (as JSON data)."""
    info = {"energy": getattr(energy, "name", type(energy).__name__),
            "energy_description": getattr(energy, "description", "")}
    params = getattr(energy, "params", None)
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        params = dataclasses.asdict(params)
    if isinstance(params, dict):
        info["energy_params"] = params
    return info


class LoggedReward:
    """``log f`` as given, with the batch mean and spread kept in ``last_metrics`` for the log."""

    def __init__(self, energy: Callable[[torch.Tensor], torch.Tensor]):
        self.energy = energy
        self.last_metrics: dict[str, float] = {}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        log_f = torch.as_tensor(self.energy(x), dtype=torch.float32, device=x.device)
        self.last_metrics = {"reward_mean": float(log_f.mean()),
                             "reward_std": float(log_f.std()) if log_f.numel() > 1 else 0.0}
        return log_f


def fine_tune_method(model: MaM, method: str = "auto") -> str:
    """``"sampler"`` for models the app samples under a syntax constraint, else ``"chains"``."""
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r}; valid: {list(METHODS)}")
    if method != "auto":
        return method
    tok = tokenizer_of(model)
    return "sampler" if tok is not None and grammar_for(tok) is not None else "chains"


def fine_tune_precision(model: MaM, method: str = "auto") -> str:
    """``"bf16"`` for the sampler method where bfloat16 runs this model's network faster than
    float32 on its device (:func:`~mam_core.core.model.bf16_is_faster`), else ``"fp32"``.

    A sampler fine-tuning step is mostly network passes: drawing the batch (model and
    reference, one pass each per position) and one pass with gradients over 16 contexts per
    molecule. Under bfloat16 a step of 32 molecules took 14.3 s against 27.2 s on one AMD EPYC
    core (``bench/lipophilicity_sweep.py --precision fp32 bf16``), and its policy gradient
    agrees with float32's on the same batch at cosine 0.99
    (``bench/policy_gradient_precision.py``). The chains method (SELFIES models, about 0.5 s a
    step) stays in float32: its loss compares one-pass log-marginals of chains and prior, which
    was not measured under bfloat16.
    """
    if fine_tune_method(model, method) != "sampler":
        return "fp32"
    return "bf16" if bf16_is_faster(model.device) else "fp32"


def fine_tune_template(model: MaM, fragment: str | None, start: int = 0):
    """The fixed substructure for ``fragment`` (``None`` or empty: de novo), planned as the
    Design page plans it: new atoms only at attachment points on fragment-block models, the
    capped fragment at ``start`` on SELFIES / SMILES models.

    Raises:
        FragmentError: the fragment cannot be used with this model.
    """
    return plan_design(model, 1, fragment, start, seed=0).templates[0] if fragment else None


def fine_tune(
    model: MaM,
    energy: Callable[[torch.Tensor], torch.Tensor],
    cfg: TrainConfig,
    beta: float = 1.0,
    template: torch.Tensor | None = None,
    prior: MaM | None = None,
    method: str = "auto",
    **kw,
) -> TrainResult:
    """Fine-tune ``model`` in place towards ``p_prior^β · f``.

    Args:
        energy: ``(B, D) ids -> (B,)`` finite ``log f`` (see :mod:`energies`).
        beta: weight of the prior's log-probability (0 = reward only).
        template: ``(D,)`` ids with the mask id at free positions; the rest is a fixed substructure.
        prior: the pretrained model (default: a frozen copy of ``model`` as it is now; pass it
            explicitly when ``model`` is a resumed, already fine-tuned run).
        method: ``"auto"``, ``"sampler"`` or ``"chains"`` (see the module docstring).
        **kw: passed to the trainer (``out_dir``, ``resume``, ``stop_file``, ``on_log``,
            ``progress``, ...).
    """
    if prior is None:
        prior = copy.deepcopy(model)
    elif prior.D != model.D or prior.K != model.K:
        raise ValueError(f"the prior has D={prior.D}, K={prior.K} but the model has D={model.D}, "
                         f"K={model.K}")
    method = fine_tune_method(model, method)
    info = {**energy_run_info(energy), **(kw.pop("run_info", None) or {})}
    info["fine_tuned"] = True
    info["method"] = method
    if method == "sampler":
        order = default_order(model)
        info["beta"] = float(beta)
        info["order"] = order
        return train_policy(model, LoggedReward(energy), cfg, order=order,
                            constraint=grammar_for(tokenizer_of(model)), template=template,
                            reference=prior, beta=beta, run_info=info, **kw)
    target = PriorTiltedTarget(prior, energy, beta)
    info["beta"] = target.beta
    return train_eb(model, target, cfg, template=template, run_info=info, **kw)
