"""Cached resources shared by pages (models, devices)."""

from __future__ import annotations

import torch

from mam_core import resolve_device


def device_label() -> str:
    """Human-readable name of the device models run on (CUDA when present)."""
    dev = resolve_device("auto")
    if dev.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(dev)})"
    return f"CPU ({torch.get_num_threads()} threads)"
