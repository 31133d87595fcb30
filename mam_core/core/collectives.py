"""Who this process is (rank, world size) and the collectives the engine needs, under
``torch.distributed``; every function is a no-op (or the identity) in a single process.

The engine's energy-based loss standardises its REINFORCE baseline over every rank's samples
(:func:`global_mean_std`), so these live beside it; joining a process group, sharding data and
wrapping a network in ``DistributedDataParallel`` are training's job
(:mod:`mam_core.training.distributed`, which re-exports everything here).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = [
    "is_distributed",
    "rank",
    "world_size",
    "is_main",
    "all_true",
    "any_true",
    "mean_metrics",
    "gather_rows",
    "global_mean_std",
    "barrier",
]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _reduce_flag(flag: bool, op) -> bool:
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device())
    dist.all_reduce(t, op=op)
    return bool(t.item())


def all_true(flag: bool) -> bool:
    """True on every rank only when ``flag`` is true on every rank (e.g. "the loss is finite")."""
    return _reduce_flag(flag, dist.ReduceOp.MIN)


def any_true(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (e.g. "a stop was requested")."""
    return _reduce_flag(flag, dist.ReduceOp.MAX)


def mean_metrics(metrics: dict) -> dict:
    """Average the float entries of a metrics dict over ranks; the rest (step counters, which
    every rank shares) are taken from rank 0."""
    if not is_distributed():
        return metrics
    gathered: list = [None] * world_size()
    dist.all_gather_object(gathered, metrics)
    out = dict(gathered[0])
    for key in out:
        vals = [g.get(key) for g in gathered]
        if all(isinstance(v, float) for v in vals):
            out[key] = sum(vals) / len(vals)
    return out


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate each rank's ``t`` along dim 0, in rank order (all ranks get the result, on
    CPU)."""
    if not is_distributed():
        return t.detach().cpu()
    dev = _comm_device()
    local = t.detach().to(dev).contiguous()
    parts = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(parts, local)
    return torch.cat(parts).cpu()


def global_mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) std of ``x`` over all ranks' values, as if they were one batch.

    Used for the REINFORCE baseline so the standardisation does not depend on the process count.
    """
    x = x.detach().flatten()
    if not is_distributed():
        if x.numel() > 1:
            return x.mean(), x.std()
        return x.mean(), torch.zeros((), dtype=x.dtype, device=x.device)
    x = x.double()
    s = torch.stack([x.sum(), (x * x).sum(),
                     torch.tensor(float(x.numel()), dtype=x.dtype, device=x.device)])
    s = s.to(_comm_device())
    dist.all_reduce(s)
    s = s.to(x.device)
    n = s[2]
    mean = s[0] / n
    var = (s[1] - n * mean * mean) / (n - 1).clamp(min=1)
    return mean.float(), var.clamp(min=0).sqrt().float()


def barrier() -> None:
    if is_distributed():
        dist.barrier()
