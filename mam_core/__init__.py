"""MaM Studio engine: Generative Marginalization Models for discrete sequences.

A :class:`MaM` gives ``log p(x_S)`` for any subset S of a sequence in one forward pass
(marginal head) and any-order conditionals ``p(x_i | x_S)`` (conditional head).  See
``DESIGN.md`` for the mathematics.

Layers, each importing only the ones before it:

* :mod:`mam_core.core` — the generic engine (model, networks, orders, sampling, likelihoods,
  objectives, checkpoints, token files); torch only;
* :mod:`mam_core.training` — the training loop, resumable state, torchrun helpers, the modes;
* :mod:`mam_core.chem` — molecules: tokenizers, RDKit helpers, properties, metrics, MOSES;
* :mod:`energies` (a sibling package) — rewards ``log f(x)``;
* :mod:`mam_core.workflows` — use cases shared by the CLI, the app and the benchmarks;
* :mod:`mam_core.cli`, ``app/``, ``pages/`` — the user interfaces.

This module re-exports the engine and training API only, so ``import mam_core`` needs no RDKit.
"""

from .core.checkpoint import (
    Checkpoint,
    CheckpointError,
    load,
    load_checkpoint,
    save,
    save_checkpoint,
)
from .core.config import PRESETS, NetworkConfig, TrainConfig, get_preset
from .core.likelihood import log_likelihood_arm
from .core.model import MaM, resolve_device
from .core.objectives import LossOutput, ao_arm_loss, energy_based_loss, self_consistency_loss
from .core.sampling import censor_and_resample, sample
from .core.vocab import MASK_TOKEN, UnknownTokenError, Vocabulary
from .training import TrainingDiverged, TrainResult, distill, run_training, train_arm, train_eb

__all__ = [
    "MaM",
    "NetworkConfig",
    "TrainConfig",
    "PRESETS",
    "get_preset",
    "Vocabulary",
    "UnknownTokenError",
    "MASK_TOKEN",
    "save",
    "load",
    "save_checkpoint",
    "load_checkpoint",
    "Checkpoint",
    "CheckpointError",
    "log_likelihood_arm",
    "sample",
    "censor_and_resample",
    "LossOutput",
    "ao_arm_loss",
    "self_consistency_loss",
    "energy_based_loss",
    "run_training",
    "train_arm",
    "distill",
    "train_eb",
    "TrainResult",
    "TrainingDiverged",
    "resolve_device",
]
