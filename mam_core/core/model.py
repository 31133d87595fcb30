"""The Marginalization Model (MaM): one-pass marginals plus any-order conditionals.

Shapes used throughout the package:

* ``B`` — batch size;
* ``D`` — sequence length (number of positions);
* ``K`` — number of real tokens; the id ``K`` is the mask token marking unobserved positions.

A partial input ``x`` is an integer tensor ``(B, D)`` with values in ``{0..K}``; its observed
positions form the subset ``S``.

Marginal head (DESIGN §1, §7): ``log p_θ(x_S) = −|S|·log K + g_θ(x_S) − g_θ(∅)``.  Subtracting
``g_θ`` of the all-masked input makes ``log p_θ(∅) = 0`` exact by construction, and the
``−|S| log K`` baseline makes an untrained model (``g`` constant) exactly the uniform
distribution, which is already self-consistent.
"""

from __future__ import annotations

import functools
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import NetworkConfig
from .networks import build_network
from .vocab import Vocabulary

__all__ = ["MaM", "resolve_device", "bf16_is_native", "bf16_is_faster", "scoring_batch_size"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; asking for CUDA without one is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N")
    return torch.device(device)


def scoring_batch_size(device: str | torch.device) -> int:
    """Rows per inference pass over complete sequences: large on a GPU; on a CPU 128 rows keep
    the activations in cache (1,000 molecules of D = 64 through the default model take 0.8 s on
    2 threads in batches of 128 against 1.2 s in batches of 512)."""
    return 512 if torch.device(device).type == "cuda" else 128


def bf16_is_native(device: str | torch.device) -> bool:
    """Whether bfloat16 matrix products have fast kernels on ``device``: CUDA GPUs that support
    them, CPUs for which oneDNN has bfloat16 kernels (AVX-512 and newer; native with
    AVX512-BF16/AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # not in every build
        return False


def matmul_seconds(dtype: torch.dtype, device: str | torch.device = "cpu",
                   repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds of one matrix product shaped like a transformer layer of the
    default model at inference (4,096 tokens × 256 → 1,024) in ``dtype``."""
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(4096, 256, generator=gen, device=device).to(dtype)
    w = torch.randn(1024, 256, generator=gen, device=device).to(dtype)
    F.linear(a, w)  # first call: kernel selection
    best = math.inf
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        F.linear(a, w)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


@functools.lru_cache(maxsize=None)
def _cpu_bf16_is_faster(threads: int) -> bool:
    return matmul_seconds(torch.bfloat16) < matmul_seconds(torch.float32)


def bf16_is_faster(device: str | torch.device) -> bool:
    """Whether inference should run in bfloat16 on ``device``: CUDA GPUs that support it, and
    CPUs where it is *measured* faster than float32 (once per process and thread count, about
    20 ms).  The CPU flags alone do not say: with AVX512-BF16 one CPU ran the default model's
    sampling pass twice as fast in bfloat16 (AMD EPYC, 180 against 87 GFLOP/s) and another half
    as fast (Intel Xeon, 85 against 166 GFLOP/s)."""
    device = torch.device(device)
    if not bf16_is_native(device):
        return False
    if device.type == "cuda":
        return True
    return _cpu_bf16_is_faster(torch.get_num_threads())


class MaM(nn.Module):
    """A generative marginalization model over sequences of length ``D`` with ``K`` tokens.

    Args:
        config: network shape (``D``, ``K``, architecture, sizes).
        vocab: the token vocabulary; defaults to ``"0".."K-1"``.
        metadata: free JSON-able information (training history, data source, ...), saved with
            the checkpoint.
    """

    def __init__(self, config: NetworkConfig, vocab: Vocabulary | None = None,
                 metadata: dict | None = None):
        super().__init__()
        self.config = config
        self.vocab = vocab if vocab is not None else Vocabulary.integers(config.K)
        if self.vocab.K != config.K:
            raise ValueError(f"vocabulary has {self.vocab.K} tokens but the network expects "
                             f"K={config.K}")
        self.metadata: dict = dict(metadata or {})
        self.net = build_network(config)

    def with_marginal_pool(self, pool: str) -> "MaM":
        """A copy whose marginal head reads the trunk with ``pool`` (see ``NetworkConfig``).

        Stage 1 never trains the marginal head, so stage 2 may choose its shape: every weight
        except the marginal head's is carried over.
        """
        if pool == self.config.marginal_pool:
            return self
        cfg = NetworkConfig.from_dict({**self.config.to_dict(), "marginal_pool": pool})
        new = MaM(cfg, self.vocab, dict(self.metadata)).to(self.device)
        own = new.net.state_dict()
        kept = {
            k: v for k, v in self.net.state_dict().items() if k in own and own[k].shape == v.shape
        }
        new.net.load_state_dict(kept, strict=False)
        return new

    # ------------------------------------------------------------------ basic facts
    @property
    def D(self) -> int:  # noqa: N802
        return self.config.D

    @property
    def K(self) -> int:  # noqa: N802
        return self.config.K

    @property
    def mask_id(self) -> int:
        return self.config.K

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_input(self, x: torch.Tensor, allow_mask: bool = True) -> torch.Tensor:
        """Validate a token batch and move it to the model's device.

        Raises:
            ValueError: not 2-D, wrong length, not integer, or ids out of range.
        """
        if not torch.is_tensor(x):
            x = torch.as_tensor(x)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2:
            raise ValueError(f"expected token ids of shape (B, D={self.D}), got {tuple(x.shape)}")
        if x.shape[1] != self.D:
            raise ValueError(f"expected sequences of length D={self.D}, got length {x.shape[1]}")
        if x.dtype.is_floating_point or x.dtype == torch.bool or x.dtype.is_complex:
            raise ValueError(f"token ids must be integers, got dtype {x.dtype}")
        if x.numel():
            hi = self.mask_id if allow_mask else self.K - 1
            lo_v, hi_v = int(x.min()), int(x.max())
            if lo_v < 0 or hi_v > hi:
                what = f"0..{self.K - 1}"
                if allow_mask:
                    what += f" or the mask id {self.K}"
                raise ValueError(f"token ids must be in {what}; found values {lo_v}..{hi_v}")
        return x.to(device=self.device, dtype=torch.long)

    def empty(self, n: int = 1) -> torch.Tensor:
        """``n`` all-masked rows (the empty subset S = ∅)."""
        return torch.full((n, self.D), self.mask_id, dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ the two heads
    def log_marginal(self, x: torch.Tensor, *, check: bool = True,
                     bf16: bool = False) -> torch.Tensor:
        """``log p_θ(x_S)`` for partial inputs in ONE forward pass (one trunk pass over B + 1 rows).

        Args:
            x: ``(B, D)`` ids in ``0..K``; mask id ``K`` at unobserved positions.
            check: validate ``x`` and move it to the model's device (``False``: the fast path for
                objectives and samplers that pass already checked ``(B, D)`` long tensors).
            bf16: run the trunk in bfloat16 (the heads stay float32): about twice as fast where
                the hardware has fast bfloat16 arithmetic (:func:`bf16_is_faster`), a few hundredths
                of a nat from float32 (``bench/app_speed.py`` prints both).  For screening;
                training and evaluation use float32.
        Returns:
            ``(B,)`` log-probabilities in nats (``0`` for the all-masked input).
        """
        if check:
            x = self.check_input(x)
        g = self.net.marginal(torch.cat([x, self.empty(1)], dim=0), bf16_trunk=bf16)  # (B+1,)
        n_obs = (x != self.mask_id).sum(dim=1).to(g.dtype)  # (B,)
        return g[:-1] - g[-1] - n_obs * math.log(self.K)

    def conditional_logits(self, x: torch.Tensor, *, check: bool = True) -> torch.Tensor:
        """Logits of ``p_φ(x_i | x_S)`` for every position: ``(B, D) -> (B, D, K)``.

        Rows of observed positions are returned too (the network defines them) but carry no
        meaning; use them only at masked positions.  ``check=False`` skips the input checks (see
        :meth:`log_marginal`).
        """
        return self.net.conditional(self.check_input(x) if check else x)

    def conditional_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``log p_φ(· | x_S)``, normalised over the K tokens: ``(B, D, K)``."""
        return F.log_softmax(self.conditional_logits(x), dim=-1)

    # ------------------------------------------------------------------ what each stage trains
    def conditional_parameters(self) -> list[nn.Parameter]:
        """Parameters the conditional head uses (what stage 1 and the ARM baseline train)."""
        return self.net.conditional_parameters()

    def marginal_parameters(self) -> list[nn.Parameter]:
        """Parameters only the marginal head uses (what stage-2 distillation trains)."""
        return self.net.marginal_parameters()

    def warm_start_marginal(self) -> bool:
        """Copy the conditional trunk into the marginal trunk (start of stage 2); ``False``, doing
        nothing, when the trunk is shared."""
        return self.net.warm_start_marginal()

    def copy_marginal_from(self, other: "MaM") -> None:
        """Take ``other``'s marginal head θ (same network and vocabulary), keeping this model's
        conditionals φ.

        A distillation of an earlier stage-1 checkpoint can then continue against the final
        conditionals: θ has only their last changes left to follow, not the whole way from φ's
        trunk.
        """
        if other.config.to_dict() != self.config.to_dict() or other.K != self.K:
            raise ValueError("the marginal head comes from a model of another shape: "
                             f"{other.config.to_dict()} vs {self.config.to_dict()}")
        theirs = dict(other.net.named_parameters())
        name_of = {id(p): n for n, p in self.net.named_parameters()}
        with torch.no_grad():
            for p in self.marginal_parameters():
                p.copy_(theirs[name_of[id(p)]].to(p.device, p.dtype))

    # ------------------------------------------------------------------ slow reference + sampling
    def log_likelihood_arm(self, x: torch.Tensor, num_orders: int = 1, order=None,
                           seed: int | None = None):
        """Exact AO-ARM log-likelihood with D sequential passes; see
        :mod:`mam_core.core.likelihood`."""
        from .likelihood import log_likelihood_arm

        return log_likelihood_arm(self, x, num_orders=num_orders, order=order, seed=seed)

    def sample(self, n: int, order="random", template=None, temperature: float = 1.0,
               seed: int | None = None, **kw):
        """Any-order ancestral sampling; see :func:`mam_core.core.sampling.sample`."""
        from .sampling import sample

        return sample(self, n, order=order, template=template, temperature=temperature, seed=seed,
                      **kw)

    def censor_and_resample(self, x: torch.Tensor, k: int, order="random", seed: int | None = None,
                            **kw):
        """Block-Gibbs move; see :func:`mam_core.core.sampling.censor_and_resample`."""
        from .sampling import censor_and_resample

        return censor_and_resample(self, x, k, order=order, seed=seed, **kw)

    def extra_repr(self) -> str:
        c = self.config
        return f"D={c.D}, K={c.K}, arch={c.arch}, shared_trunk={c.shared_trunk}"
