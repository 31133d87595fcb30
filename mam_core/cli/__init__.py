"""The ``mam`` command line: train (AO-ARM, distillation, energy-based), prepare data, sample,
score and evaluate.

One module per command family: :mod:`.train` (train-arm, distill, train-eb), :mod:`.data`
(prepare-data) and :mod:`.infer` (sample, score, eval), with what they share in :mod:`.common`.
Each subcommand maps to one ``run_<name>`` function.  Only this package prints; the library logs.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys

import torch

from ..chem.molecules import MoleculeDataError
from ..core import checkpoint as ckpt
from ..core.data import DataError
from ..training import TrainingDiverged
from ..training import distributed as dist
from . import data, infer, train
from .common import CLIError
from .train import TRAINING_COMMANDS

__all__ = ["main", "build_parser", "CLIError"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mam",
                                     description="Generative Marginalization Models (MaM Studio)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    train.add_parsers(sub)
    data.add_parsers(sub)
    infer.add_parsers(sub)
    return parser


def _join_torchrun(args) -> None:
    """Under ``torchrun`` (WORLD_SIZE > 1): join the process group, pin this rank's device and
    silence progress bars on all ranks but 0."""
    if args.command not in TRAINING_COMMANDS:
        raise CLIError(f"only {', '.join(TRAINING_COMMANDS)} run under torchrun; run 'mam "
                       f"{args.command}' as one process")
    args.device = str(dist.init_from_env(args.device))
    if not dist.is_main():
        args.no_progress = True


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    who = f"mam {args.command}"
    finished = False
    try:
        if dist.launched_by_torchrun():
            _join_torchrun(args)
            who = f"mam {args.command} [rank {dist.rank()}]"
        if getattr(args, "threads", None):
            torch.set_num_threads(args.threads)
        if args.command in TRAINING_COMMANDS:
            torch.manual_seed(args.seed)  # the network's initial weights: reruns are reproducible
        args.func(args)
        finished = True
    except (CLIError, DataError, MoleculeDataError, ckpt.CheckpointError, TrainingDiverged,
            ValueError, OSError, RuntimeError) as err:
        print(f"{who}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{who}: interrupted", file=sys.stderr)
        return 130
    finally:
        if dist.launched_by_torchrun():
            dist.shutdown(wait_for_peers=finished)
    if dist.launched_by_torchrun():
        _end_torchrun_worker(0)
    return 0


def _end_torchrun_worker(code: int) -> None:
    """End a torchrun worker once its work is saved and the process group is left, without the
    interpreter's teardown.

    A gloo worker can abort while the interpreter tears down (``terminate called without an
    active exception``, now and then, on a loaded machine) although every rank finished and the
    checkpoint is written; torchrun then reports the whole run as failed. Exit handlers and
    stream flushes run as at a normal exit; only the teardown of C++ objects is skipped.
    """
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
