"""Training on top of the engine: one loop (:mod:`.loop`), its resumable state (:mod:`.state`),
multi-process helpers (:mod:`.distributed`) and the training modes (:mod:`.trainers`).

Like :mod:`mam_core.core`, this package never imports chemistry, energies or RDKit: rewards come
in as callables ``x (B, D) -> log f(x) (B,)``.
"""

from .loop import TrainingDiverged, TrainResult, lr_factor, run_training
from .state import CHECKPOINT_NAME, Checkpointer, StopFlag
from .trainers import distill, train_arm, train_arm_eb, train_eb, train_policy

__all__ = [
    "CHECKPOINT_NAME",
    "Checkpointer",
    "StopFlag",
    "TrainResult",
    "TrainingDiverged",
    "distill",
    "lr_factor",
    "run_training",
    "train_arm",
    "train_arm_eb",
    "train_eb",
    "train_policy",
]
