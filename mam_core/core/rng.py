"""Seeded random generators on the right device, so every sampler and objective is reproducible."""

from __future__ import annotations

import torch

__all__ = ["make_generator"]


def make_generator(
    seed: int | None = None,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Generator | None:
    """Return ``generator`` if given, else a new one seeded with ``seed`` (None: global RNG)."""
    if generator is not None:
        return generator
    if seed is None:
        return None
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g
