"""Worker for tests/test_distributed.py: run as one process (plain python) or under torchrun.

    python tests/ddp_worker.py MODE OUT                    # 1 process, the whole global batch
    torchrun --nproc_per_node 2 tests/ddp_worker.py MODE OUT

MODE ``loop``: :func:`run_training` on a deterministic loss (both heads, no sampling) over a fixed
global batch of 16 rows split over ranks, so 1- and 2-process runs must agree to float precision.
MODE ``trainers``: a few steps of each real trainer (stage 1, stage 2, energy-based).
Each rank writes its final weights to ``OUT/<stage>.rank<R>.pt`` and its history to JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from mam_core import MaM, NetworkConfig
from mam_core.training import distributed as dist
from mam_core.core.config import TrainConfig
from mam_core.core.objectives import LossOutput
from mam_core.training import distill, run_training, train_arm, train_eb

D, K = 6, 3


def new_model() -> MaM:
    torch.manual_seed(0)
    return MaM(NetworkConfig(D=D, K=K, arch="mlp", hidden=32, n_layers=2))


def dump(model: MaM, history: list, out: Path, stage: str) -> None:
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()},
               out / f"{stage}.rank{dist.rank()}.pt")
    (out / f"{stage}.rank{dist.rank()}.json").write_text(json.dumps(history))


def run_loop(out: Path) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, K, (16, D), generator=g)
    per = dist.local_batch(16)
    mine = x[dist.rank() * per : (dist.rank() + 1) * per]
    model = new_model()
    masked = mine.clone()
    masked[:, :3] = model.mask_id

    def step_fn(step, gen):
        logits = model.conditional_logits(masked)[:, :3]  # predict the three hidden positions
        ce = F.cross_entropy(logits.reshape(-1, K), mine[:, :3].reshape(-1))
        nll = -model.log_marginal(mine).mean()
        return LossOutput(ce + 0.1 * nll, {"ce": float(ce.detach()), "nll": float(nll.detach())})

    cfg = TrainConfig(steps=5, batch_size=16, lr=1e-2, log_every=1, checkpoint_every=0)
    res = run_training(model, step_fn, cfg, "loop", state={"chains": mine.clone()},
                       out_dir=out / "ckpt", progress=False)
    dump(model, res.history, out, "loop")


def log_f(x: torch.Tensor) -> torch.Tensor:
    s = 2.0 * x.float() - 1.0
    return 0.5 * (s[:, :-1] * s[:, 1:]).sum(1)


@torch.no_grad()
def quality(model: MaM, data: torch.Tensor) -> dict:
    """What each stage is for, measured exactly: AO-ARM (l2r) NLL of the data, the marginal's
    NLL of the data, its mean distance to the AO-ARM's, and the exact KL of the energy-based model
    to p* ∝ f over all 2^D states."""
    states = torch.tensor([[(i >> d) & 1 for d in range(D)] for i in range(2**D)])
    if model.K == K:
        arm, marg = model.log_likelihood_arm(data, order="l2r"), model.log_marginal(data)
    return {
        "arm_nll": float(-arm.mean()) if model.K == K else None,
        "marginal_nll": float(-marg.mean()) if model.K == K else None,
        "marginal_gap": float((marg - arm).abs().mean()) if model.K == K else None,
        "eb_kl": None if model.K != 2 else float(_kl(model.log_likelihood_arm(states, order="l2r"),
                                                     log_f(states))),
    }


def _kl(logp: torch.Tensor, log_f: torch.Tensor) -> torch.Tensor:
    log_target = log_f - torch.logsumexp(log_f, 0)
    return (logp.exp() * (logp - log_target)).sum()


def run_trainers(out: Path) -> None:
    g = torch.Generator().manual_seed(2)
    data = torch.randint(0, K, (64, D), generator=g)
    data[:, 1] = data[:, 0]  # some structure to learn
    model = new_model()
    metrics = {"init": quality(model, data)}
    res = train_arm(model, data, TrainConfig(steps=40, batch_size=16, lr=3e-3, log_every=5),
                    progress=False)
    dump(model, res.history, out, "arm")
    metrics["arm"] = quality(model, data)
    res = distill(model, data, TrainConfig(steps=40, batch_size=16, lr=3e-3, log_every=5),
                  progress=False)
    dump(model, res.history, out, "distill")
    metrics["distill"] = quality(model, data)

    torch.manual_seed(0)
    eb = MaM(NetworkConfig(D=D, K=2, arch="mlp", hidden=32, n_layers=2))
    metrics["eb_init"] = quality(eb, data)
    res = train_eb(eb, log_f, TrainConfig(steps=40, batch_size=32, lr=3e-3, log_every=5),
                   progress=False)
    dump(eb, res.history, out, "eb")
    metrics["eb"] = quality(eb, data)
    if dist.is_main():
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if dist.launched_by_torchrun():
        dist.init_from_env("cpu")
    torch.set_num_threads(1)
    finished = False
    try:
        {"loop": run_loop, "trainers": run_trainers}[mode](out)
        finished = True
    finally:
        dist.shutdown(wait_for_peers=finished)
