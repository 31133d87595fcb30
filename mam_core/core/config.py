"""Configuration dataclasses and named presets.

A model is rebuilt from its :class:`NetworkConfig` alone (stored in every checkpoint), so every
field here is plain JSON data.  Training settings live in :class:`TrainConfig`; presets give
sizes known to work on a 2-core CPU (``cpu_tiny``) and the paper's GPU sizes (``paper_gpu``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

__all__ = [
    "NetworkConfig",
    "TrainConfig",
    "PRESETS",
    "get_preset",
    "config_from_dict",
]

ARCHITECTURES = ("transformer", "mlp")
MARGINAL_POOLS = ("cls", "cls+sum")
PRECISIONS = ("fp32", "bf16")
#: Attention kernels a training step may use (see :func:`mam_core.training.loop.step_attention`).
ATTENTION_KERNELS = ("auto", "fused", "plain")


def _reject_unknown(cls, d: dict) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}; valid: {sorted(names)}")


@dataclass
class NetworkConfig:
    """Shape of the two-headed network.

    ``D`` and ``K`` are the sequence length and number of real tokens; everything else sizes the
    trunk(s).  ``shared_trunk=False`` (the default) gives the marginal head θ and the conditional
    head φ separate trunks, as the paper does; ``True`` shares one trunk and halves the cost of a
    forward pass that needs both heads.
    """

    D: int  # sequence length (positions)
    K: int  # number of real tokens; id K is the mask
    arch: str = "transformer"  # "transformer" (molecules) or "mlp" (energy-based, paper choice)
    shared_trunk: bool = False  # one trunk for both heads, or two independent ones
    d_model: int = 128  # transformer width
    n_layers: int = 4  # transformer blocks / residual MLP blocks
    n_heads: int = 4  # attention heads (transformer only)
    hidden: int = 512  # residual-MLP width (mlp only)
    dropout: float = 0.0  # off by default: MaM objectives are already noisy
    # How the transformer marginal head reads the trunk: "cls" (one pooled token) or "cls+sum"
    # (CLS plus a sum of per-position scores; log p(x_S) grows with |S|, a sum fits that shape).
    marginal_pool: str = "cls+sum"

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; valid: {list(ARCHITECTURES)}")
        for name in ("D", "K", "d_model", "n_layers", "n_heads", "hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"NetworkConfig.{name} must be a positive integer, got {v!r}")
        if self.K < 2:
            raise ValueError(f"K must be at least 2 (got {self.K})")
        if self.arch == "transformer" and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.marginal_pool not in MARGINAL_POOLS:
            raise ValueError(f"unknown marginal_pool {self.marginal_pool!r}; valid: "
                             f"{list(MARGINAL_POOLS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkConfig":
        _reject_unknown(cls, d)
        # Checkpoints written before ``marginal_pool`` existed used the CLS token alone.
        return cls(**{"marginal_pool": "cls", **d})


@dataclass
class TrainConfig:
    """Optimisation settings shared by all trainers (ARM stage 1, distillation, energy-based)."""

    steps: int = 2000  # optimizer steps
    batch_size: int = 256  # examples (or persistent chains) per step
    lr: float = 1e-3  # Adam learning rate at the start
    # cosine decay ends at lr * lr_min_ratio (keeps normalisation stable)
    lr_min_ratio: float = 0.05
    warmup: int = 0  # linear warm-up steps
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # global-norm clip; 0 disables
    seed: int = 0
    checkpoint_every: int = 500  # steps between atomic checkpoints (0: only at the end)
    log_every: int = 50  # steps between history records
    max_bad_steps: int = 10  # consecutive non-finite losses/gradients before the run stops
    # stage 2 / energy-based
    sc_weight: float = 4.0  # λ: weight of the self-consistency penalty (paper: 4)
    gibbs_k: int = 4  # censor-and-resample block size for persistent chains (paper: 4)
    data_fraction: float = 0.5  # stage 2: share of each batch from data (rest from chains)
    sc_steps: int = 1  # stage 2: consecutive steps of an order per consistency constraint
    l2r_fraction: float = 0.0  # stage 1: share of rows trained in the left-to-right order
    device: str = "auto"
    # "bf16": each step's forward pass and loss under bfloat16 autocast (weights, optimizer and
    # backward stay float32); "fp32": plain float32 (TF32 matrix products on CUDA)
    precision: str = "fp32"
    # attention in the training steps: "fused" (PyTorch's kernels), "plain" (two matrix products
    # and a float32 softmax) or "auto" (plain under bf16 on CPU, where it is faster, else fused)
    attention: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if not 0.0 <= self.l2r_fraction <= 1.0:
            raise ValueError(f"l2r_fraction must be in [0, 1], got {self.l2r_fraction}")
        if not 0.0 <= self.data_fraction <= 1.0:
            raise ValueError(f"data_fraction must be in [0, 1], got {self.data_fraction}")
        if self.sc_steps < 1:
            raise ValueError(f"sc_steps must be >= 1, got {self.sc_steps}")
        if self.gibbs_k < 1:
            raise ValueError(f"gibbs_k must be >= 1, got {self.gibbs_k}")
        if self.max_bad_steps < 1:
            raise ValueError("max_bad_steps must be >= 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid: {list(PRECISIONS)}")
        if self.attention not in ATTENTION_KERNELS:
            raise ValueError(f"unknown attention kernel {self.attention!r}; valid: "
                             f"{list(ATTENTION_KERNELS)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        _reject_unknown(cls, d)
        return cls(**d)


def config_from_dict(d: dict) -> NetworkConfig:
    return NetworkConfig.from_dict(d)


@dataclass(frozen=True)
class Preset:
    """Network sizes (D and K come from the data) plus training defaults."""

    network: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    about: str = ""


PRESETS: dict[str, Preset] = {
    "cpu_tiny": Preset(
        network=dict(arch="transformer", d_model=64, n_layers=2, n_heads=4),
        train=dict(steps=500, batch_size=128, lr=1e-3),
        about="seconds on a laptop; tests and demos",
    ),
    "cpu_small": Preset(
        network=dict(arch="transformer", d_model=128, n_layers=4, n_heads=4),
        train=dict(steps=6000, batch_size=128, lr=1e-3),
        about="the shipped molecule model: well under an hour on 2 CPU cores",
    ),
    "mlp_eb": Preset(
        network=dict(arch="mlp", hidden=256, n_layers=3),
        train=dict(steps=3000, batch_size=256, lr=1e-3),
        about="energy-based runs on small lattices (CPU)",
    ),
    "paper_gpu": Preset(
        network=dict(arch="transformer", d_model=768, n_layers=12, n_heads=12),
        train=dict(steps=200_000, batch_size=512, lr=3e-4, warmup=2000),
        about="paper size for MOSES (12-layer d=768 transformer); GPU",
    ),
    "paper_gpu_eb": Preset(
        network=dict(arch="mlp", hidden=2048, n_layers=4),
        train=dict(steps=50_000, batch_size=512, lr=1e-4),
        about="paper size for energy-based runs (4-block residual MLP, width 2048); GPU",
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; valid: {sorted(PRESETS)}") from None
