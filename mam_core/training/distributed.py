"""Multi-process training under ``torchrun``: one process per GPU (NCCL) or per CPU worker (gloo).

Every trainer goes through :func:`mam_core.training.loop.run_training`, which asks this module who
it is (rank, world size) and wraps the network in ``DistributedDataParallel`` when there is more
than one process. Everything here is a no-op in a single process, so the same code runs
unchanged with or without ``torchrun``.

Conventions: ``TrainConfig.batch_size`` is the *global* batch; each rank trains on
``batch_size / world_size`` examples (or persistent chains) per step, so a 1-process run and an
N-process run with the same global batch optimise the same objective. Only rank 0 writes
checkpoints, logs and progress bars.
"""

from __future__ import annotations

import contextlib
import datetime
import os

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from ..core.collectives import (
    all_true,
    any_true,
    barrier,
    gather_rows,
    global_mean_std,
    is_distributed,
    is_main,
    mean_metrics,
    rank,
    world_size,
)

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
    "distributed_step",
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


def shutdown(wait_for_peers: bool = True) -> None:
    """Leave the process group. After a clean run the ranks leave together: one that tears down
    gloo while a peer is still finishing (rank 0 writes checkpoints) can abort the peer at exit.
    After an error there is no waiting, since the peers may never reach the barrier."""
    if dist.is_available() and dist.is_initialized():
        try:
            if wait_for_peers:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def local_batch(global_batch: int) -> int:
    """This rank's share of a global batch; the global batch must split evenly."""
    n = world_size()
    if global_batch % n:
        raise ValueError(f"batch size {global_batch} does not split evenly over {n} processes")
    return global_batch // n


def rank_seed(seed: int) -> int:
    """Rank 0 keeps ``seed`` (single-process runs are unchanged); other ranks draw their own
    streams."""
    return seed + 1_000_003 * rank()


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
        self.sampler = DistributedSampler(range(n), num_replicas=world_size(), rank=rank(),
                                          shuffle=True, seed=seed)
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


class _LossStep(torch.nn.Module):
    """Lets ``DistributedDataParallel`` see one training step as one forward call.

    Our objectives make several passes through both heads (and sample under ``no_grad``) before
    a single backward, so DDP wraps the whole step rather than the network's ``forward``; its
    gradient hooks sit on the same parameters either way.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.last = None

    def forward(self, step_fn, step, gen):
        self.last = step_fn(step, gen)
        return self.last.loss


@contextlib.contextmanager
def distributed_step(model, step_fn, params: list):
    """Yield ``step_fn`` as is in one process; under torchrun, called through DDP so gradients are
    averaged over ranks during backward.

    Only ``params`` (what this stage trains, each used by every step) are handed to DDP: the
    others are frozen for the run, so DDP never waits for a gradient that cannot come.
    """
    if not is_distributed():
        yield step_fn
        return
    from torch.nn.parallel import DistributedDataParallel as DDP

    trained = {id(p) for p in params}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in trained]
    for p in frozen:
        p.requires_grad_(False)
    try:
        holder = _LossStep(model)
        cuda = model.device.type == "cuda"
        index = model.device.index
        if index is None and cuda:
            index = torch.cuda.current_device()
        ddp = DDP(holder, device_ids=[index] if cuda else None)

        def wrapped(step, gen):
            ddp(step_fn, step, gen)
            return holder.last

        yield wrapped
    finally:
        for p in frozen:
            p.requires_grad_(True)
