"""Multi-process training under ``torchrun``: one process per GPU (NCCL) or per CPU worker (gloo).

Every trainer goes through :func:`mam_core.trainers.run_training`, which asks this module who it
is (rank, world size) and wraps the network in ``DistributedDataParallel`` when there is more
than one process. Everything here is a no-op in a single process, so the same code runs
unchanged with or without ``torchrun``.

Conventions: ``TrainConfig.batch_size`` is the *global* batch; each rank trains on
``batch_size / world_size`` examples (or persistent chains) per step, so a 1-process run and an
N-process run with the same global batch optimise the same objective. Only rank 0 writes
checkpoints, logs and progress bars.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

__all__ = [
    "launched_by_torchrun",
    "init_from_env",
    "shutdown",
    "is_distributed",
    "rank",
    "world_size",
    "is_main",
    "local_batch",
    "rank_seed",
    "all_true",
    "any_true",
    "mean_metrics",
    "gather_rows",
    "global_mean_std",
    "barrier",
    "ShardedBatches",
]


def launched_by_torchrun() -> bool:
    """``torchrun`` sets ``WORLD_SIZE``; more than one process means distributed training."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "auto", timeout_s: float = 1800.0) -> torch.device:
    """Join the process group torchrun describes in the environment; return this rank's device.

    ``device="auto"`` uses ``cuda:LOCAL_RANK`` with NCCL when CUDA is present, else the CPU with
    gloo; ``"cpu"`` forces gloo. Safe to call twice.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but no CUDA GPU is available")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs are visible; "
                "use --nproc_per_node <= the number of GPUs"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=dev if use_cuda else None,
        )
    return dev


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def local_batch(global_batch: int) -> int:
    """This rank's share of a global batch; the global batch must split evenly."""
    n = world_size()
    if global_batch % n:
        raise ValueError(f"batch size {global_batch} does not split evenly over {n} processes")
    return global_batch // n


def rank_seed(seed: int) -> int:
    """Rank 0 keeps ``seed`` (single-process runs are unchanged); other ranks draw their own streams."""
    return seed + 1_000_003 * rank()


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


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
    """Concatenate each rank's ``t`` along dim 0, in rank order (all ranks get the result, on CPU)."""
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
        return x.mean(), (x.std() if x.numel() > 1 else torch.zeros((), dtype=x.dtype, device=x.device))
    x = x.double()
    s = torch.stack([x.sum(), (x * x).sum(), torch.tensor(float(x.numel()), dtype=x.dtype, device=x.device)])
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


class ShardedBatches:
    """Per-rank minibatch indices for step ``s`` of a run, from ``DistributedSampler`` epochs.

    The data are reshuffled every epoch (seeded by ``seed + epoch``, the same on every rank) and
    split disjointly over ranks, so one step's union over ranks is one global batch and a
    1-process run sees the same global batches. Indices are a pure function of the step, which
    is what lets ``--resume`` continue mid-epoch exactly.
    """

    def __init__(self, n: int, batch: int, seed: int = 0):
        if n < 1:
            raise ValueError("the training data is empty")
        self.batch = batch
        self.sampler = DistributedSampler(range(n), num_replicas=world_size(), rank=rank(), shuffle=True, seed=seed)
        self._epoch: int | None = None
        self._indices: list[int] = []

    def _epoch_indices(self, epoch: int) -> list[int]:
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._indices = list(self.sampler)
            self._epoch = epoch
        return self._indices

    def __call__(self, step: int) -> torch.Tensor:
        per_epoch = len(self.sampler)
        pos = step * self.batch
        out: list[int] = []
        while len(out) < self.batch:
            epoch, offset = divmod(pos, per_epoch)
            chunk = self._epoch_indices(epoch)[offset : offset + self.batch - len(out)]
            out.extend(chunk)
            pos += len(chunk)
        return torch.tensor(out, dtype=torch.long)
