"""Training loops: AO-ARM stage 1, marginal distillation (stage 2) and energy-based training.

All three share :func:`run_training`, which owns the optimizer (Adam, warm-up + cosine decay,
gradient clipping), the non-finite guard, tqdm progress, periodic atomic checkpoints,
``resume`` and clean stops (a stop file or SIGINT/SIGTERM).  A mode only supplies a
``step_fn(step, generator) -> LossOutput`` and the tensors it keeps between steps (persistent
chains), which are saved with the checkpoint so a resumed run continues exactly.

Under ``torchrun`` the same loop runs on every rank (:mod:`mam_core.distributed`): the network
is wrapped in ``DistributedDataParallel`` around the whole step, each rank works on its share of
the global batch, metrics are averaged over ranks, and rank 0 alone writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from . import distributed as dist
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .model import MaM
from .objectives import LossOutput, ao_arm_loss, energy_based_loss, self_consistency_loss
from .sampling import censor_and_resample, sample

__all__ = [
    "TrainingDiverged",
    "TrainResult",
    "run_training",
    "train_arm",
    "distill",
    "train_eb",
    "CHECKPOINT_NAME",
]

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "checkpoint.pt"


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


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    if cfg.warmup and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    t = min(max(step - cfg.warmup, 0) / span, 1.0)
    return cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


class _LossStep(torch.nn.Module):
    """Lets ``DistributedDataParallel`` see one training step as one forward call.

    Our objectives make several passes through both heads (and sample under ``no_grad``) before
    a single backward, so DDP wraps the whole step rather than the network's ``forward``; its
    gradient hooks sit on the same parameters either way.
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.last: LossOutput | None = None

    def forward(self, step_fn, step, gen):
        self.last = step_fn(step, gen)
        return self.last.loss


@contextlib.contextmanager
def _distributed_step(model: MaM, step_fn, params: list):
    """Yield ``step_fn`` as is in one process; under torchrun, called through DDP so gradients are
    averaged over ranks during backward.

    Only ``params`` (what this stage trains, each used by every step) are handed to DDP: the
    others are frozen for the run, so DDP never waits for a gradient that cannot come.
    """
    if not dist.is_distributed():
        yield step_fn
        return
    from torch.nn.parallel import DistributedDataParallel as DDP

    trained = {id(p) for p in params}
    frozen = [p for p in model.net.parameters() if p.requires_grad and id(p) not in trained]
    for p in frozen:
        p.requires_grad_(False)
    try:
        holder = _LossStep(model.net)
        cuda = model.device.type == "cuda"
        index = model.device.index if model.device.index is not None else (torch.cuda.current_device() if cuda else None)
        ddp = DDP(holder, device_ids=[index] if cuda else None)

        def wrapped(step, gen):
            ddp(step_fn, step, gen)
            return holder.last

        yield wrapped
    finally:
        for p in frozen:
            p.requires_grad_(True)


def check_writable(out_dir: Path) -> None:
    """Fail before training starts when the output folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-", delete=True) as f:
            f.write(b"0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise OSError(f"cannot write to output folder {out_dir}: {err.strerror or err}") from None


class _StopFlag:
    """Set by SIGINT/SIGTERM or by a stop file, so the loop can save and stop between steps."""

    def __init__(self, stop_file: str | os.PathLike | None):
        self.stop_file = Path(stop_file) if stop_file else None
        self.requested = False
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # second signal: give up at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def __bool__(self) -> bool:
        return self.requested or bool(self.stop_file and self.stop_file.exists())


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
    state = state if state is not None else {}
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / CHECKPOINT_NAME if out is not None else None
    main = dist.is_main()
    if out is not None:
        err = None
        if main:
            try:
                check_writable(out)
            except OSError as e:
                err = e
        if not dist.all_true(err is None):
            raise err or OSError(f"cannot write to output folder {out} (checked on rank 0)")
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = generator
    if gen is None:
        gen = torch.Generator(device=model.device)
        gen.manual_seed(dist.rank_seed(cfg.seed))

    history: list = []
    start_step = 0
    skipped_total = 0
    record = {"stage": stage, "config": cfg.to_dict(), **(run_info or {}), "history": history}
    stages = list(model.metadata.get("training", []))
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        ts = ck.train_state
        if ts is None:
            raise CheckpointError(f"{ckpt_path} holds no training state to resume from")
        if ts.get("stage") != stage:
            raise CheckpointError(f"{ckpt_path} is a '{ts.get('stage')}' run; cannot resume it as '{stage}'")
        if ck.model.config != model.config:
            raise CheckpointError(f"{ckpt_path} was trained with a different network config: {ck.model.config}")
        model.load_state_dict(ck.model.state_dict())
        opt.load_state_dict(ts["optimizer"])
        start_step = int(ts["step"])
        skipped_total = int(ts.get("skipped", 0))
        _restore_state(state, ts.get("extra", {}), gen, ts)
        stages = list(ck.metadata.get("training", []))
        if stages and stages[-1].get("stage") == stage:
            prev = stages.pop()
            history.extend(prev.get("history", []))
        log.info("resumed %s from step %d", ckpt_path, start_step)
    elif resume:
        log.warning("no checkpoint at %s; starting a new run", ckpt_path)

    def save(step: int) -> None:
        """Collective under torchrun (every rank's chains and RNG go in); rank 0 writes."""
        if ckpt_path is None:
            return
        extra = {k: dist.gather_rows(v) for k, v in state.items()}
        rng_ranks = dist.gather_rows(gen.get_state()[None])
        if main:
            record["steps_done"] = step
            model.metadata["training"] = stages + [record]
            train_state = {
                "stage": stage,
                "step": step,
                "skipped": skipped_total,
                "optimizer": opt.state_dict(),
                "extra": extra,
                "rng": rng_ranks[0],
                "rng_ranks": rng_ranks,
            }
            save_checkpoint(model, ckpt_path, train_state=train_state)
        dist.barrier()

    model.train()
    t_start = time.perf_counter()
    t_last = t_start
    bad_in_row = 0
    stopped_early = False
    step = start_step
    bar = tqdm(total=cfg.steps, initial=start_step, desc=stage, disable=not (progress and main), dynamic_ncols=True)
    distributed = dist.is_distributed()
    with _StopFlag(stop_file) as stop, _distributed_step(model, step_fn, params) as step_call:
        while step < cfg.steps:
            if dist.any_true(bool(stop)):
                stopped_early = True
                break
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(step, cfg)
            out_loss = step_call(step, gen)
            loss = out_loss.loss
            grad_norm = float("nan")
            ok = dist.all_true(bool(torch.isfinite(loss)))
            if ok or distributed:
                # under DDP every rank must run backward so the gradient all-reduce completes;
                # a non-finite step is then discarded on all ranks alike
                opt.zero_grad(set_to_none=True)
                loss.backward()
                # clip_grad_norm_ with max_norm=inf measures the norm without clipping
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf))
                ok = ok and math.isfinite(grad_norm)
            if not ok:
                opt.zero_grad(set_to_none=True)
                bad_in_row += 1
                skipped_total += 1
                log.warning("step %d: non-finite loss or gradient, skipped (%d in a row)", step, bad_in_row)
                if bad_in_row >= cfg.max_bad_steps:
                    bar.close()
                    where = f"; the last good checkpoint is {ckpt_path}" if ckpt_path and ckpt_path.exists() else ""
                    raise TrainingDiverged(
                        f"{stage}: {bad_in_row} consecutive non-finite losses/gradients at step {step}"
                        f" (try a lower --lr){where}"
                    )
                step += 1  # a skipped step still counts, so a bad batch cannot stall the run
                bar.update(1)
                continue
            opt.step()
            bad_in_row = 0
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                rec = dist.mean_metrics({
                    "step": step,
                    "loss": float(loss.detach()),
                    "lr": opt.param_groups[0]["lr"],
                    "grad_norm": grad_norm,
                    "sec_per_step": (now - t_last) / cfg.log_every if step % cfg.log_every == 0 else None,
                    "skipped": skipped_total,
                    **out_loss.metrics,
                })
                t_last = now
                history.append(rec)
                bar.set_postfix({k: f"{v:.3g}" for k, v in rec.items() if k in ("loss", "bits_per_dim", "sc_abs_err", "kl_minus_logz")})
                if on_log is not None and main:
                    on_log(rec)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save(step)
    bar.close()
    save(step)
    model.metadata["training"] = stages + [record]
    record["steps_done"] = step
    model.eval()
    return TrainResult(
        model=model,
        step=step,
        history=history,
        stopped_early=stopped_early,
        skipped_steps=skipped_total,
        checkpoint=str(ckpt_path) if ckpt_path else None,
        seconds=time.perf_counter() - t_start,
    )


def _restore_state(state: dict, extra: dict, gen: torch.Generator, ts: dict) -> None:
    """Put saved chains and RNG back; under torchrun each rank takes its own rows.

    Checkpoints hold every rank's chains concatenated in rank order, so a run resumed with the
    same global batch continues exactly; a different process count re-splits the same chains.
    """
    n, r = dist.world_size(), dist.rank()
    for k, v in extra.items():
        if k not in state:
            continue
        rows = state[k].shape[0]
        if v.shape[1:] == state[k].shape[1:] and v.shape[0] == rows * n:
            state[k].copy_(v[r * rows : (r + 1) * rows].to(state[k].device))
        else:
            log.warning("checkpoint %s has shape %s, expected %d x %s; starting fresh", k, tuple(v.shape), rows * n, tuple(state[k].shape[1:]))
    ranks = ts.get("rng_ranks")
    if ranks is not None and ranks.shape[0] == n:
        gen.set_state(ranks[r].clone())
    elif n == 1 and "rng" in ts:
        gen.set_state(ts["rng"])
    else:
        log.warning("the checkpoint was written by a different number of processes; random streams are reseeded")


def _check_data(model: MaM, data: torch.Tensor) -> torch.Tensor:
    data = model.check_input(data, allow_mask=False)
    if data.shape[0] == 0:
        raise ValueError("the training data is empty")
    return data


def _data_batches(data: torch.Tensor, n: int, seed: int) -> Callable[[int], torch.Tensor]:
    """``step -> (n, D)`` rows of ``data``: this rank's shard of a reshuffled epoch (see
    :class:`mam_core.distributed.ShardedBatches`)."""
    batches = dist.ShardedBatches(data.shape[0], n, seed) if n else None

    def get(step: int) -> torch.Tensor:
        if batches is None:
            return data[:0]
        return data[batches(step).to(data.device)]

    return get


def _chain_generator(model: MaM, cfg: TrainConfig) -> torch.Generator:
    gen0 = torch.Generator(device=model.device)
    gen0.manual_seed(dist.rank_seed(cfg.seed + 1))
    return gen0


def train_arm(model: MaM, data: torch.Tensor, cfg: TrainConfig, **kw) -> TrainResult:
    """Stage 1: fit the conditional head φ with the AO-ARM objective on complete sequences."""
    data = _check_data(model, data)
    batch = _data_batches(data, dist.local_batch(cfg.batch_size), cfg.seed)

    def step_fn(step, gen):
        return ao_arm_loss(model, batch(step), gen)

    kw.setdefault("run_info", {"n_train": int(data.shape[0])})
    return run_training(model, step_fn, cfg, "arm", params=model.net.conditional_parameters(), **kw)


def _init_chains(model: MaM, n: int, gen, template: torch.Tensor | None = None) -> torch.Tensor:
    return sample(model, n, order="random", template=template, generator=gen)


def distill(model: MaM, data: torch.Tensor, cfg: TrainConfig, warm_start: bool = True, **kw) -> TrainResult:
    """Stage 2: distil the marginal head θ from the frozen conditionals φ by self-consistency,
    on a mixture of data and persistent on-policy chains refreshed by censor-and-resample.

    ``warm_start`` copies φ's trunk into θ's before the first step, unless θ was distilled
    before (separate trunks only; a resumed run restores its own weights afterwards anyway).
    """
    data = _check_data(model, data)
    if warm_start and not any(r.get("stage") == "distill" for r in model.metadata.get("training", [])):
        model.net.warm_start_marginal()
    per_rank = dist.local_batch(cfg.batch_size)
    n_data = int(round(per_rank * cfg.data_fraction))
    n_chain = per_rank - n_data
    state = {"chains": _init_chains(model, max(n_chain, 1), _chain_generator(model, cfg))}
    params = model.net.marginal_parameters()
    batch = _data_batches(data, n_data, cfg.seed)

    def step_fn(step, gen):
        parts = [batch(step)] if n_data else []
        if n_chain:
            state["chains"].copy_(censor_and_resample(model, state["chains"], cfg.gibbs_k, generator=gen))
            parts.append(state["chains"])
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
    state = {"chains": _init_chains(model, dist.local_batch(cfg.batch_size), _chain_generator(model, cfg), template)}

    def step_fn(step, gen):
        chains = censor_and_resample(model, state["chains"], cfg.gibbs_k, frozen=frozen, generator=gen)
        state["chains"].copy_(chains)
        with torch.no_grad():
            lf = torch.as_tensor(log_f(chains), dtype=torch.float32, device=model.device)
        if lf.shape != (chains.shape[0],):
            raise ValueError(f"the energy must return shape ({chains.shape[0]},), got {tuple(lf.shape)}")
        out = energy_based_loss(model, chains, lf, cfg.sc_weight, gen, frozen)
        out.metrics.update(getattr(log_f, "last_metrics", None) or {})  # e.g. the raw reward when fine-tuning
        return out

    return run_training(model, step_fn, cfg, "eb", state=state, **kw)
