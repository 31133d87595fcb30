"""Neural networks with the two MaM heads.

Both architectures map a partial sequence ``x`` of shape ``(B, D)`` with values in ``{0..K}``
(``K`` = mask) to

* ``g(x)``: one unconstrained scalar per row (``(B,)``) that the marginal head turns into
  ``log p_θ(x_S)`` (see :mod:`mam_core.core.model`), and
* conditional logits ``(B, D, K)`` for ``p_φ(x_i | x_S)`` at every position.

Heads either share one trunk or get one trunk each (``NetworkConfig.shared_trunk``).  The last
layer of the marginal head starts at zero so an untrained MaM is exactly the uniform
distribution, which is self-consistent at initialisation.
"""

from __future__ import annotations

import contextlib
import threading

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import NetworkConfig

__all__ = ["TransformerTrunk", "ResidualMLPTrunk", "TwoHeadNet", "build_network",
           "plain_attention"]

_plain = threading.local()


@contextlib.contextmanager
def plain_attention():
    """Within this context (in this thread), the transformer's training passes compute attention
    as two matrix products and a float32 softmax instead of PyTorch's attention kernels.

    Under bfloat16 autocast on CPU the products then run in bfloat16, where PyTorch's fused
    kernel is slow in its backward pass and its math kernel computes in float32; a stage-1 step
    is 1.8x faster than with the fused kernel (``bench/cpu_precision.py``).  The weights are
    the same; inference passes (PyTorch's fast path) are unaffected.
    """
    before = getattr(_plain, "on", False)
    _plain.on = True
    try:
        yield
    finally:
        _plain.on = before


class _EncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (same parameters and checkpoints) whose self-attention
    block follows :func:`plain_attention` when it is on."""

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        masked = attn_mask is not None or key_padding_mask is not None
        if not getattr(_plain, "on", False) or masked:
            return super()._sa_block(x, attn_mask, key_padding_mask, is_causal=is_causal)
        att = self.self_attn
        B, L, d = x.shape
        H = att.num_heads
        qkv = F.linear(x, att.in_proj_weight, att.in_proj_bias)  # (B, L, 3d)
        q, k, v = qkv.view(B, L, 3, H, d // H).permute(2, 0, 3, 1, 4)  # each (B, H, L, d/H)
        scores = (q @ k.transpose(-2, -1)) * (d // H) ** -0.5  # (B, H, L, L)
        weights = torch.softmax(scores.float(), dim=-1).to(v.dtype)
        weights = F.dropout(weights, att.dropout, self.training)
        y = (weights @ v).transpose(1, 2).reshape(B, L, d)
        return self.dropout1(F.linear(y, att.out_proj.weight, att.out_proj.bias))


class TransformerTrunk(nn.Module):
    """Bidirectional transformer over token + position embeddings, with a CLS slot for pooling.

    Returns ``(B, D + 1, d_model)``: index 0 is the CLS representation, 1..D the positions.
    """

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.tok = nn.Embedding(cfg.K + 1, cfg.d_model)  # K real tokens + mask
        self.pos = nn.Parameter(torch.zeros(1, cfg.D + 1, cfg.d_model))
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.cls, std=0.02)
        layer = _EncoderLayer(
            d_model=cfg.d_model,
            nhead=cfg.n_heads,
            dim_feedforward=4 * cfg.d_model,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.out_dim = cfg.d_model

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tok(x)  # (B, D, d)
        return torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1) + self.pos  # (B, D+1, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self._embed(x)))  # (B, D+1, d)

    def forward_at(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``forward(x)[arange(B), idx]``: ``(B, d)``.  Every layer but the last is needed at
        every slot (the last one attends to them); the last layer's attention output and
        feed-forward are computed for the one queried slot only."""
        h = self._embed(x)
        layers = self.blocks.layers
        for layer in layers[:-1]:
            h = layer(h)
        last = layers[-1]
        rows = torch.arange(h.shape[0], device=h.device)
        y = last.norm1(h)  # the encoder layers are pre-norm (norm_first)
        q = y[rows, idx].unsqueeze(1)  # (B, 1, d)
        att = last.self_attn(q, y, y, need_weights=False)[0]
        hq = h[rows, idx].unsqueeze(1) + last.dropout1(att)
        ff = last.linear2(last.dropout(last.activation(last.linear1(last.norm2(hq)))))
        return self.norm(hq + last.dropout2(ff)).squeeze(1)


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.drop(self.fc2(F.silu(self.fc1(self.norm(h)))))


class ResidualMLPTrunk(nn.Module):
    """Residual MLP on the flattened one-hot input (the paper's choice for energy-based runs).

    Returns ``(B, hidden)``.
    """

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.K = cfg.K
        self.inp = nn.Linear(cfg.D * (cfg.K + 1), cfg.hidden)
        self.blocks = nn.Sequential(*[_ResidualBlock(cfg.hidden, cfg.dropout)
                                      for _ in range(cfg.n_layers)])
        self.norm = nn.LayerNorm(cfg.hidden)
        self.out_dim = cfg.hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(x, self.K + 1).to(self.inp.weight.dtype).flatten(1)  # (B, D*(K+1))
        return F.silu(self.norm(self.blocks(self.inp(onehot))))  # (B, hidden)


def _make_trunk(cfg: NetworkConfig) -> nn.Module:
    return TransformerTrunk(cfg) if cfg.arch == "transformer" else ResidualMLPTrunk(cfg)


class _MarginalHead(nn.Module):
    """Pooled features -> one scalar; zero-initialised output so g is constant at start."""

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(F.silu(self.fc(pooled))).squeeze(-1)  # (B,)


class _PositionSumHead(_MarginalHead):
    """Per-position scores summed over the sequence; zero-initialised like the pooled head."""

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return super().forward(feats).sum(dim=1)  # (B, D, w) -> (B, D) -> (B,)


class TwoHeadNet(nn.Module):
    """Marginal head θ and conditional head φ, on one shared trunk or two separate ones."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.cfg = cfg
        self.marginal_trunk = _make_trunk(cfg)
        self.conditional_trunk = self.marginal_trunk if cfg.shared_trunk else _make_trunk(cfg)
        width = self.marginal_trunk.out_dim
        self.marginal_head = _MarginalHead(width)
        self.position_head = (
            _PositionSumHead(width)
            if cfg.arch == "transformer" and cfg.marginal_pool == "cls+sum"
            else None
        )
        if cfg.arch == "transformer":
            self.conditional_head = nn.Linear(width, cfg.K)  # applied per position
        else:
            self.conditional_head = nn.Linear(width, cfg.D * cfg.K)

    # The trunk features are the expensive part; callers needing both heads use ``both``.
    def _pool(self, feats: torch.Tensor) -> torch.Tensor:
        return feats[:, 0] if self.cfg.arch == "transformer" else feats

    def _cond(self, feats: torch.Tensor) -> torch.Tensor:
        if self.cfg.arch == "transformer":
            return self.conditional_head(feats[:, 1:])  # (B, D, K)
        return self.conditional_head(feats).view(-1, self.cfg.D, self.cfg.K)  # (B, D, K)

    def _marginal_from(self, feats: torch.Tensor) -> torch.Tensor:
        g = self.marginal_head(self._pool(feats))
        if self.position_head is not None:
            g = g + self.position_head(feats[:, 1:])
        return g  # (B,)

    def marginal(self, x: torch.Tensor, bf16_trunk: bool = False) -> torch.Tensor:
        """Unnormalised marginal score g(x): ``(B, D) -> (B,)``.

        ``bf16_trunk`` runs the trunk under bfloat16 autocast.  The heads always run in float32,
        under an outer autocast too (``--precision bf16`` training): the trunk is nearly all the
        arithmetic, while the heads' sum over positions is where bfloat16's 8-bit mantissa
        would cost accuracy (steps of 0.25 nats at |log p| ≈ 40, coarser than the differences
        self-consistency compares).
        """
        if bf16_trunk:
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
                feats = self.marginal_trunk(x)
        else:
            feats = self.marginal_trunk(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._marginal_from(feats.float())

    def conditional(self, x: torch.Tensor) -> torch.Tensor:
        """Conditional logits: ``(B, D) -> (B, D, K)``."""
        return self._cond(self.conditional_trunk(x))

    def conditional_at(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Conditional logits at one position per row, ``conditional(x)[arange(B), pos]``:
        ``(B, D), (B,) -> (B, K)``.  What a sampler filling one position needs; the
        transformer skips the last layer's work at the other positions."""
        if self.cfg.arch != "transformer":
            return self.conditional(x)[torch.arange(x.shape[0], device=x.device), pos]
        return self.conditional_head(self.conditional_trunk.forward_at(x, pos + 1))

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g (B,), logits (B, D, K))``; one trunk pass when the trunk is shared."""
        if self.cfg.shared_trunk:
            feats = self.marginal_trunk(x)
            return self._marginal_from(feats), self._cond(feats)
        return self.marginal(x), self.conditional(x)

    def conditional_parameters(self) -> list[nn.Parameter]:
        """Parameters the conditional head uses (what stage 1 and the ARM baseline train)."""
        return list(self.conditional_trunk.parameters()) + list(self.conditional_head.parameters())

    def marginal_parameters(self) -> list[nn.Parameter]:
        """Parameters that only the marginal head uses (what stage-2 distillation trains)."""
        cond_ids = {id(p) for p in self.conditional_parameters()}
        return [p for p in self.parameters() if id(p) not in cond_ids]

    def warm_start_marginal(self) -> bool:
        """Copy the conditional trunk's weights into the marginal trunk.

        Stage 2 starts from a trained φ and an untrained θ; φ's features already describe the
        sequence well, so θ learns the marginals much faster from them than from random weights.
        Returns ``False`` (doing nothing) when the trunk is shared.
        """
        if self.cfg.shared_trunk:
            return False
        self.marginal_trunk.load_state_dict(self.conditional_trunk.state_dict())
        return True


def build_network(cfg: NetworkConfig) -> TwoHeadNet:
    return TwoHeadNet(cfg)
