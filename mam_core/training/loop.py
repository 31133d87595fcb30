"""The training loop every mode shares: Adam with warm-up and cosine decay, gradient clipping, the
non-finite guard, tqdm progress and history records.

A mode only supplies a ``step_fn(step, generator) -> LossOutput`` and the tensors it keeps
between steps (persistent chains); :class:`~mam_core.training.state.Checkpointer` saves and
restores them with the weights, optimizer and random streams, so a resumed run continues
exactly, and :class:`~mam_core.training.state.StopFlag` ends a run cleanly on a stop file or
SIGINT/SIGTERM.

Under ``torchrun`` the same loop runs on every rank (:mod:`mam_core.training.distributed`): the
network is wrapped in ``DistributedDataParallel`` around the whole step, each rank works on its
share of the global batch, metrics are averaged over ranks, and rank 0 alone writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..core.config import TrainConfig
from ..core.model import MaM
from ..core.networks import plain_attention
from ..core.objectives import LossOutput
from . import distributed as dist
from .state import Checkpointer, StopFlag

__all__ = ["TrainingDiverged", "TrainResult", "run_training", "lr_factor",
           "median_seconds_per_step", "shown_metrics", "step_attention"]

log = logging.getLogger(__name__)

#: Metrics shown beside the progress bar.
_SHOWN = ("loss", "bits_per_dim", "sc_abs_err", "kl_minus_logz")


class TrainingDiverged(RuntimeError):
    """Too many consecutive non-finite losses or gradients; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    model: MaM
    step: int
    history: list = field(default_factory=list)
    stopped_early: bool = False
    skipped_steps: int = 0
    checkpoint: str | None = None
    seconds: float = 0.0


def shown_metrics(record: dict) -> dict:
    """The float values of a history record to four significant digits, for a log line: a
    learning rate of 4.9e-5 rounded to four decimals would read 0.0."""
    return {k: float(f"{v:.4g}") for k, v in record.items() if isinstance(v, float)}


def median_seconds_per_step(history: list) -> float:
    """Median ``sec_per_step`` of a run's history records, without the first one (its interval
    includes start-up: data, first allocations, warm-up of the kernels)."""
    return statistics.median(r["sec_per_step"] for r in history[1:] if r.get("sec_per_step"))


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine decay to
    ``lr_min_ratio``."""
    if cfg.warmup and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    t = min(max(step - cfg.warmup, 0) / span, 1.0)
    return cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def run_training(
    model: MaM,
    step_fn: Callable[[int, torch.Generator | None], LossOutput],
    cfg: TrainConfig,
    stage: str,
    params: list | None = None,
    state: dict[str, torch.Tensor] | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_file: str | os.PathLike | None = None,
    on_log: Callable[[dict], None] | None = None,
    generator: torch.Generator | None = None,
    run_info: dict | None = None,
) -> TrainResult:
    """Optimise ``step_fn``'s loss for ``cfg.steps`` steps.

    Args:
        stage: label stored in the model's training history ("arm", "distill", "eb").
        params: parameters to optimise (default: all).
        state: tensors the step function updates in place between steps (e.g. ``chains``);
            saved in checkpoints and restored on resume.
        out_dir: folder for ``checkpoint.pt``; ``None`` trains without writing anything.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists.
        stop_file: stop cleanly (saving a checkpoint) as soon as this file exists.
        on_log: called with every history record (for live plots).
        run_info: extra JSON data stored with this stage (data source, energy, ...).
    Raises:
        TrainingDiverged: ``cfg.max_bad_steps`` non-finite steps in a row.
    """
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = generator if generator is not None else _seeded_generator(model, cfg.seed)
    ckpt = Checkpointer(model, opt, gen, cfg, stage, state if state is not None else {}, out_dir,
                        run_info)
    step = ckpt.resume() if resume else 0
    model.train()
    t_start = time.perf_counter()
    records = _Records(cfg, ckpt.history, on_log if dist.is_main() else None)
    bad_in_row, stopped_early = 0, False
    bar = tqdm(total=cfg.steps, initial=step, desc=stage, disable=not (progress and dist.is_main()),
               dynamic_ncols=True)
    with StopFlag(stop_file) as stop, dist.distributed_step(model, step_fn, params) as step_call:
        while step < cfg.steps:
            if dist.any_true(bool(stop)):
                stopped_early = True
                break
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, cfg)
            with _step_precision(model, cfg):
                out = step_call(step, gen)
            ok, grad_norm = _backward(out.loss, opt, params, cfg.grad_clip)
            if not ok:
                bad_in_row += 1
                ckpt.skipped += 1
                log.warning("step %d: non-finite loss or gradient, skipped (%d in a row)", step,
                            bad_in_row)
                if bad_in_row >= cfg.max_bad_steps:
                    bar.close()
                    raise _diverged(stage, bad_in_row, step, ckpt.path)
                step += 1  # a skipped step still counts, so a bad batch cannot stall the run
                bar.update(1)
                continue
            opt.step()
            bad_in_row = 0
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = records.add(step, out, opt.param_groups[0]["lr"], grad_norm, ckpt.skipped)
                bar.set_postfix({k: f"{v:.3g}" for k, v in rec.items() if k in _SHOWN})
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                ckpt.save(step)
    bar.close()
    ckpt.finish(step)
    model.eval()
    return TrainResult(model=model, step=step, history=ckpt.history, stopped_early=stopped_early,
                       skipped_steps=ckpt.skipped, checkpoint=str(ckpt.path) if ckpt.path else None,
                       seconds=time.perf_counter() - t_start)


@contextlib.contextmanager
def _step_precision(model: MaM, cfg: TrainConfig):
    """The arithmetic of one step's forward pass and loss: the precision, and the attention kernel
    :func:`step_attention` picks for it.

    Autocast keeps the low-precision copy of each weight for as long as its context is open, so
    the context must close after every step: one context around the whole loop would run every
    forward pass on the weights of the first step while the optimizer moves the float32 ones.
    The kernel chosen in the forward pass also runs the backward pass.
    """
    with contextlib.ExitStack() as stack:
        if cfg.precision == "bf16":
            stack.enter_context(torch.autocast(model.device.type, dtype=torch.bfloat16))
        if step_attention(model.device, cfg) == "plain":
            stack.enter_context(plain_attention())
        yield


def step_attention(device: torch.device, cfg: TrainConfig) -> str:
    """``"plain"`` or ``"fused"``: the attention of a training step
    (:func:`~mam_core.core.networks.plain_attention`).

    ``auto`` takes the plain products under bfloat16 on CPU: there PyTorch's fused (flash)
    attention spends more time in its backward pass than every matrix product of the step
    together, and its math kernel computes in float32, so a stage-1 step of 128 fragment-block
    molecules runs 1.8x faster with plain products (``bench/cpu_precision.py``); on GPUs
    and in float32 PyTorch's kernels are as fast or faster.
    """
    if cfg.attention != "auto":
        return cfg.attention
    return "plain" if cfg.precision == "bf16" and torch.device(device).type == "cpu" else "fused"


def _seeded_generator(model: MaM, seed: int) -> torch.Generator:
    gen = torch.Generator(device=model.device)
    gen.manual_seed(dist.rank_seed(seed))
    return gen


def _backward(loss: torch.Tensor, opt, params: list, grad_clip: float) -> tuple[bool, float]:
    """Backward and clip when the loss is finite on every rank: ``(ok, gradient norm)``.

    Under DDP every rank runs backward so the gradient all-reduce completes; a non-finite step is
    then discarded on all ranks alike (its gradients are zeroed).
    """
    grad_norm = float("nan")
    ok = dist.all_true(bool(torch.isfinite(loss)))
    if ok or dist.is_distributed():
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # clip_grad_norm_ with max_norm=inf measures the norm without clipping
        max_norm = grad_clip if grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        ok = ok and math.isfinite(grad_norm)
    if not ok:
        opt.zero_grad(set_to_none=True)
    return ok, grad_norm


def _diverged(stage: str, bad_in_row: int, step: int, ckpt_path) -> TrainingDiverged:
    where = f"; the last good checkpoint is {ckpt_path}" if ckpt_path and ckpt_path.exists() else ""
    return TrainingDiverged(
        f"{stage}: {bad_in_row} consecutive non-finite losses/gradients at step {step} (try a "
        f"lower --lr){where}"
    )


class _Records:
    """History records (averaged over ranks), with the time per step since the last record."""

    def __init__(self, cfg: TrainConfig, history: list, on_log: Callable[[dict], None] | None):
        self.cfg, self.history, self.on_log = cfg, history, on_log
        self.t_last = time.perf_counter()

    def add(self, step: int, out: LossOutput, lr: float, grad_norm: float, skipped: int) -> dict:
        now = time.perf_counter()
        every = self.cfg.log_every
        rec = dist.mean_metrics({
            "step": step,
            "loss": float(out.loss.detach()),
            "lr": lr,
            "grad_norm": grad_norm,
            "sec_per_step": (now - self.t_last) / every if step % every == 0 else None,
            "skipped": skipped,
            **out.metrics,
        })
        self.t_last = now
        self.history.append(rec)
        if self.on_log is not None:
            self.on_log(rec)
        return rec
