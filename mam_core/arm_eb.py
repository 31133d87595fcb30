"""ARM-EB: the autoregressive baseline for energy-based training (what MaM is measured against).

An order-agnostic network used as a plain autoregressive model (a fixed left-to-right order)
trained with the *same* REINFORCE objective as MaM (DESIGN §2b):

    r = stopgrad(log p(x) − log f(x)), standardised over the batch;  L = mean(r · log p(x)).

The difference is where ``log p(x)`` comes from. MaM reads it off the marginal head in one pass;
the ARM must sum ``D`` conditionals, each needing its own forward pass with the later positions
masked, and backpropagate through all of them. Samples are exact ancestral draws (``D`` more
passes, no gradient), so the ARM needs no chains and no self-consistency term. Cost per step
therefore grows like ``D`` — the asymmetry ``bench/eb_step_cost.py`` measures.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .config import TrainConfig
from .model import MaM
from .objectives import LossOutput, reinforce_kl
from .distributed import local_batch
from .sampling import sample
from .trainers import TrainResult, run_training

__all__ = ["arm_log_likelihood", "arm_eb_loss", "train_arm_eb"]


def arm_log_likelihood(model: MaM, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Differentiable left-to-right ``log p_φ(x) = Σ_d log p_φ(x_d | x_{<d})``: ``(B, D) -> (B,)``.

    The ``D`` masked prefixes of every row go through the network as one ``(B·D, D)`` batch (in
    chunks of ``chunk`` rows if given): the same ``D`` passes of work, without a Python loop.
    """
    B, D = x.shape
    pos = torch.arange(D, device=x.device)
    visible = pos[None, :] < pos[:, None]  # (D, D): prefix d shows positions < d
    prefixes = torch.where(visible[None], x[:, None, :], model.mask_id).reshape(B * D, D)  # (B·D, D)
    parts = prefixes.split(chunk) if chunk else (prefixes,)
    logits = torch.cat([model.net.conditional(p) for p in parts]).view(B, D, D, -1)  # (B, d, D, K)
    # row d of each sequence predicts position d
    diag = logits[:, pos, pos]  # (B, D, K)
    lp = F.log_softmax(diag, dim=-1).gather(2, x.unsqueeze(-1)).squeeze(-1)  # (B, D)
    return lp.sum(dim=1)


def arm_eb_loss(model: MaM, x: torch.Tensor, log_f: torch.Tensor, chunk: int | None = None) -> LossOutput:
    """REINFORCE for ``KL(p_ARM ‖ p*)`` on exact samples ``x`` from the ARM."""
    return reinforce_kl(arm_log_likelihood(model, x, chunk), log_f)


def train_arm_eb(
    model: MaM,
    log_f: Callable[[torch.Tensor], torch.Tensor],
    cfg: TrainConfig,
    chunk: int | None = None,
    **kw,
) -> TrainResult:
    """Energy-based training of the ARM baseline: fresh ancestral samples every step."""

    def step_fn(step, gen):
        with torch.no_grad():
            x = sample(model, local_batch(cfg.batch_size), order="l2r", generator=gen)
            lf = torch.as_tensor(log_f(x), dtype=torch.float32, device=model.device)
        return arm_eb_loss(model, x, lf, chunk)

    return run_training(model, step_fn, cfg, "arm_eb", params=model.net.conditional_parameters(), **kw)
