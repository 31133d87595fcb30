"""MaM Studio engine: Generative Marginalization Models for discrete sequences.

A :class:`MaM` gives ``log p(x_S)`` for any subset S of a sequence in one forward pass
(marginal head) and any-order conditionals ``p(x_i | x_S)`` (conditional head).  See
``DESIGN.md`` for the mathematics.
"""

from .checkpoint import Checkpoint, CheckpointError, load, load_checkpoint, save, save_checkpoint
from .config import PRESETS, NetworkConfig, TrainConfig, get_preset
from .likelihood import log_likelihood_arm
from .model import MaM, resolve_device
from .objectives import LossOutput, ao_arm_loss, energy_based_loss, self_consistency_loss
from .sampling import censor_and_resample, sample
from .trainers import TrainingDiverged, TrainResult, distill, run_training, train_arm, train_eb
from .vocab import MASK_TOKEN, UnknownTokenError, Vocabulary

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
