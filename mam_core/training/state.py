"""What a training run keeps between steps and between processes: the checkpoint it resumes from
and saves to, and the stop request that ends it cleanly.

:class:`Checkpointer` owns ``OUT/checkpoint.pt``: it checks the folder is writable before the
first step, restores weights, optimizer, step counter, persistent chains and random streams on
``resume``, and saves them (a collective under ``torchrun``; rank 0 writes). :class:`StopFlag`
turns SIGINT/SIGTERM or a stop file into a flag the loop reads between steps.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from pathlib import Path

import torch

from ..core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..core.config import TrainConfig
from ..core.model import MaM
from . import distributed as dist

__all__ = ["CHECKPOINT_NAME", "Checkpointer", "StopFlag", "check_writable"]

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "checkpoint.pt"


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


class StopFlag:
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


class Checkpointer:
    """The resumable state of one training stage and the file it lives in.

    Args:
        model: the model being trained; its ``metadata["training"]`` gets this stage's record.
        opt: the optimizer (its state is saved and restored).
        gen: the run's random generator (its state is saved and restored, per rank).
        cfg: training settings, stored in the stage's record.
        stage: the stage label ("arm", "distill", "eb", "arm_eb").
        state: tensors the step function updates in place between steps (e.g. ``chains``).
        out_dir: folder for ``checkpoint.pt``; ``None`` keeps everything in memory.
        run_info: extra JSON data stored with this stage's record.

    Attributes:
        history: the stage's history records (a resumed run continues the stored list).
        skipped: non-finite steps skipped so far (saved, so a resumed run keeps counting).
    """

    def __init__(
        self,
        model: MaM,
        opt: torch.optim.Optimizer,
        gen: torch.Generator,
        cfg: TrainConfig,
        stage: str,
        state: dict[str, torch.Tensor],
        out_dir: str | os.PathLike | None = None,
        run_info: dict | None = None,
    ):
        out = Path(out_dir) if out_dir is not None else None
        self.path = out / CHECKPOINT_NAME if out is not None else None
        if out is not None:
            err = None
            if dist.is_main():
                try:
                    check_writable(out)
                except OSError as e:
                    err = e
            if not dist.all_true(err is None):
                raise err or OSError(f"cannot write to output folder {out} (checked on rank 0)")
        self.model, self.opt, self.gen, self.stage, self.state = model, opt, gen, stage, state
        self.history: list = []
        self.skipped = 0
        self.record = {"stage": stage, "config": cfg.to_dict(), **(run_info or {}),
                       "history": self.history}
        self.stages = list(model.metadata.get("training", []))

    def resume(self) -> int:
        """Restore the stored run when there is one and return the step to continue from (0 when
        there is no checkpoint, with a warning).

        Raises:
            CheckpointError: the file holds no training state, another stage, or another network.
        """
        path = self.path
        if path is None or not path.exists():
            log.warning("no checkpoint at %s; starting a new run", path)
            return 0
        ck = load_checkpoint(path)
        ts = ck.train_state
        if ts is None:
            raise CheckpointError(f"{path} holds no training state to resume from")
        if ts.get("stage") != self.stage:
            raise CheckpointError(
                f"{path} is a '{ts.get('stage')}' run; cannot resume it as '{self.stage}'"
            )
        if ck.model.config != self.model.config:
            raise CheckpointError(
                f"{path} was trained with a different network config: {ck.model.config}"
            )
        self.model.load_state_dict(ck.model.state_dict())
        self.opt.load_state_dict(ts["optimizer"])
        self.skipped = int(ts.get("skipped", 0))
        self._restore_state(ts)
        self.stages = list(ck.metadata.get("training", []))
        if self.stages and self.stages[-1].get("stage") == self.stage:
            prev = self.stages.pop()
            self.history.extend(prev.get("history", []))
        log.info("resumed %s from step %d", path, int(ts["step"]))
        return int(ts["step"])

    def save(self, step: int) -> None:
        """Collective under torchrun (every rank's chains and RNG go in); rank 0 writes."""
        if self.path is None:
            return
        extra = {k: dist.gather_rows(v) for k, v in self.state.items()}
        rng_ranks = dist.gather_rows(self.gen.get_state()[None])
        if dist.is_main():
            self.record["steps_done"] = step
            self.model.metadata["training"] = self.stages + [self.record]
            train_state = {
                "stage": self.stage,
                "step": step,
                "skipped": self.skipped,
                "optimizer": self.opt.state_dict(),
                "extra": extra,
                "rng": rng_ranks[0],
                "rng_ranks": rng_ranks,
            }
            save_checkpoint(self.model, self.path, train_state=train_state)
        dist.barrier()

    def finish(self, step: int) -> None:
        """Save the final state and leave this stage's record in the model's metadata."""
        self.save(step)
        self.model.metadata["training"] = self.stages + [self.record]
        self.record["steps_done"] = step

    def _restore_state(self, ts: dict) -> None:
        """Put saved chains and RNG back; under torchrun each rank takes its own rows.

        Checkpoints hold every rank's chains concatenated in rank order, so a run resumed with the
        same global batch continues exactly; a different process count re-splits the same chains.
        """
        state, gen = self.state, self.gen
        n, r = dist.world_size(), dist.rank()
        for k, v in ts.get("extra", {}).items():
            if k not in state:
                continue
            rows = state[k].shape[0]
            if v.shape[1:] == state[k].shape[1:] and v.shape[0] == rows * n:
                state[k].copy_(v[r * rows : (r + 1) * rows].to(state[k].device))
            else:
                log.warning(
                    "checkpoint %s has shape %s, expected %d x %s; starting fresh",
                    k,
                    tuple(v.shape),
                    rows * n,
                    tuple(state[k].shape[1:]),
                )
        ranks = ts.get("rng_ranks")
        if ranks is not None and ranks.shape[0] == n:
            gen.set_state(ranks[r].clone())
        elif n == 1 and "rng" in ts:
            gen.set_state(ts["rng"])
        else:
            log.warning(
                "the checkpoint was written by a different number of processes; random streams "
                "are reseeded"
            )
